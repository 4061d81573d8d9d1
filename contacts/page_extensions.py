"""Adding to the contact page from apps above contacts.

contacts cannot import the apps built on it, yet the contact page should show, say, the customer's SOP
enrollments and the touches they received. So such an app registers at start-up (its AppConfig.ready):

    register_timeline_source(TimelineSource(
        name="sop_touch",                 # TimelineItem.kind of its items
        rank=4,                           # tie-break at the same instant; unique, not 1-3 (audit, note, event)
        queryset=lambda contact: Touchpoint.objects.filter(contact=contact, ...),
        time_field="finished_at",         # ordered by (-time_field, -id): back it with a (contact, time) index
        template="sop/_contact_timeline_item.html",   # renders one item; gets `item` (item.obj is the row)
    ))
    register_detail_panel(DetailPanel(
        template="sop/_contact_enrollments.html",     # included in the page's side column
        context=lambda request, contact: {...} or None,   # None: nothing to show for this user/contact
    ))

contact_timeline (contacts.selectors) merges the registered sources with its own three, keyset-paginated
alike; contact_detail (contacts.views) renders each panel whose context is not None. Access is already
checked (the page only exists for a contact the user may see); a panel checks permissions of its own.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import QuerySet

BUILT_IN_RANKS = (1, 2, 3)


@dataclass(frozen=True)
class TimelineSource:
    name: str
    rank: int
    queryset: Callable[[object], QuerySet]
    time_field: str
    template: str


@dataclass(frozen=True)
class DetailPanel:
    template: str
    context: Callable[[object, object], dict | None]


_timeline_sources: dict[str, TimelineSource] = {}
_detail_panels: dict[str, DetailPanel] = {}


def register_timeline_source(source: TimelineSource) -> None:
    taken = {s.rank for s in _timeline_sources.values() if s.name != source.name}
    if source.rank in BUILT_IN_RANKS or source.rank in taken:
        raise ValueError(f"timeline rank {source.rank} is taken")
    _timeline_sources[source.name] = source


def timeline_sources() -> list[TimelineSource]:
    return list(_timeline_sources.values())


def register_detail_panel(panel: DetailPanel) -> None:
    _detail_panels[panel.template] = panel


def detail_panels(request, contact) -> list[tuple[str, dict]]:
    """(template, context) of each registered panel that has something to show."""
    shown = []
    for panel in _detail_panels.values():
        ctx = panel.context(request, contact)
        if ctx is not None:
            shown.append((panel.template, ctx))
    return shown
