"""The `events` condition: the count, or the sum of amounts, of a contact's events of one kind in the last
N days, compared with a number ("≥ 3 purchases in 90 days", "spent ≥ 200 in 90 days").

    {"type": "events", "kind": "purchase", "measure": "count", "op": "gte", "value": "3", "days": 90}
    {"type": "events", "kind": "purchase", "measure": "sum", "op": "gte", "value": "200.00", "days": 90}

The window is now - N days ≤ occurred_at ≤ now; a sum adds the events' amounts (events without one add
nothing); a contact with no such events has 0, so "fewer than 1 purchase" includes contacts with none.

Compiled set-based, not as a correlated subquery per contact: one GROUP BY over the window's events,
read through the (kind, occurred_at) index, then
    id IN (contacts whose total passes)              when 0 does not pass ("≥ 3", "≥ 200");
    NOT id IN (contacts whose total fails)           when 0 passes ("< 1", "≤ 100"), so contacts
                                                     without events are in.
Measured on PostgreSQL at 200k contacts / 2M events, "spent ≥ 200 in 90 days" took 830 ms as a
correlated subquery (one index probe per contact) and 110 ms this way; with tier and tag conditions
beside it, 320 ms and 160 ms.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from operator import eq as equal
from operator import ge, gt, le, lt

from django.db.models import Count, DecimalField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Round
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from contacts.models import Event, EventKind

from .base import Condition, Params, decimal_text, integer, one_of
from .registry import register

MEASURES = ("count", "sum")
COMPARISONS = {"gte": "≥", "gt": ">", "lte": "≤", "lt": "<", "eq": "="}
_LOOKUPS = {"gte": "gte", "gt": "gt", "lte": "lte", "lt": "lt", "eq": "exact"}
_PASSES = {"gte": ge, "gt": gt, "lte": le, "lt": lt, "eq": equal}
MAX_WINDOW_DAYS = 3650


def _totals(node: dict, now: datetime, among: Sequence[int] | None) -> QuerySet:
    """contact_id and total over the window, one row per contact with at least one such event (among the
    given contacts only, when there are some: an incremental refresh must not total every contact's events)."""
    events = Event.objects.filter(
        kind=node["kind"], occurred_at__gte=now - timedelta(days=node["days"]), occurred_at__lte=now
    )
    if among is not None:
        events = events.filter(contact_id__in=list(among))
    per_contact = events.order_by().values("contact_id")
    if node["measure"] == "count":
        return per_contact.annotate(total=Count("pk"))
    # Rounded to cents: amounts have two places, and SQLite adds them as binary floats
    # (0.10 + 0.20 = 0.30000000000000004); PostgreSQL's numeric is exact either way.
    money = DecimalField(max_digits=30, decimal_places=2)
    return per_contact.annotate(
        total=Coalesce(Round(Sum("amount"), 2), Value(Decimal("0")), output_field=money)
    )


@register
class EventsCondition(Condition):
    type = "events"
    label = gettext_lazy("Events in a window")

    def validate(self, node: dict) -> dict:
        params = Params(node)
        kind = params.take("kind", lambda value: one_of(value, EventKind.values))
        measure = params.take("measure", lambda value: one_of(value, MEASURES))
        op = params.take("op", lambda value: one_of(value, COMPARISONS))
        digits, places = (9, 0) if measure == "count" else (12, 2)
        value = params.take("value", lambda v: decimal_text(v, digits=digits, places=places))
        days = params.take("days", lambda v: integer(v, low=1, high=MAX_WINDOW_DAYS))
        params.finish()
        return {"type": self.type, "kind": kind, "measure": measure, "op": op, "value": value, "days": days}

    def to_q(self, node: dict, *, now: datetime, among: Sequence[int] | None = None) -> Q:
        value = int(node["value"]) if node["measure"] == "count" else Decimal(node["value"])
        passes = {f"total__{_LOOKUPS[node['op']]}": value}
        if _PASSES[node["op"]](0, value):
            failing = _totals(node, now, among).exclude(**passes).values("contact_id")
            return ~Q(pk__in=failing)
        return Q(pk__in=_totals(node, now, among).filter(**passes).values("contact_id"))

    def describe(self, node: dict) -> str:
        days = node.get("days", 0)
        words = {
            "kind": EventKind(node["kind"]).label
            if node.get("kind") in EventKind.values
            else node.get("kind"),
            "window": ngettext("in the last %(days)s day", "in the last %(days)s days", days)
            % {"days": days},
            "op": COMPARISONS.get(node.get("op"), node.get("op")),
            "value": node.get("value"),
        }
        if node.get("measure") == "sum":
            return _("amount of “%(kind)s” events %(window)s %(op)s %(value)s") % words
        return _("number of “%(kind)s” events %(window)s %(op)s %(value)s") % words
