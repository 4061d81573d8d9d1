"""Reads of segments that views, the API and other apps reuse: who may see or change which segment, its
members as a user sees them, and its size history."""

from datetime import date, datetime, timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.roles import Role, is_manager_or_admin, role_of
from contacts.models import Contact
from contacts.selectors import contacts_visible_to, sees_every_contact

from .models import Segment, SegmentMembership, SegmentSize
from .rules import compile_tree, count_alone


def segments_visible_to(user) -> QuerySet[Segment]:
    """Managers and admins see every segment; an operator the ones they made and the ones shared with them.
    Seeing a segment never widens the contacts a user sees: members are always scoped (segment_members)."""
    role = role_of(user)
    if role in (Role.MANAGER, Role.ADMIN):
        return Segment.objects.all()
    if role == Role.OPERATOR:
        shared = Segment.shared_with.through.objects.filter(segment_id=OuterRef("pk"), user_id=user.pk)
        return Segment.objects.filter(Q(created_by=user) | Q(Exists(shared)))
    return Segment.objects.none()


def segment_for_user(user, pk) -> Segment:
    """The segment if `user` may see it, else 404."""
    return get_object_or_404(segments_visible_to(user).select_related("created_by"), pk=pk)


def can_change_segment(user, segment: Segment) -> bool:
    """Managers and admins change any segment; an operator the ones they made (not ones shared with them)."""
    return is_manager_or_admin(user) or (
        segment.created_by_id is not None and segment.created_by_id == user.pk
    )


def segment_for_change(user, pk) -> Segment:
    """The segment if `user` may change it, else 404 (a shared segment is read-only to its operators)."""
    segment = segment_for_user(user, pk)
    if not can_change_segment(user, segment):
        raise Http404
    return segment


def rule_count(user, definition, *, now: datetime | None = None) -> int:
    """How many of the contacts `user` sees the rule selects: the builder's live count (and what `bench
    segments` measures). Validates like compile_tree (RuleError).

    For a user who sees every contact and a rule that is one condition able to count itself without the
    contacts table (rules.count_alone: "spent ≥ 200 in 90 days" counts the window's events grouped by
    contact), that count; otherwise the compiled rule's. Both are the same number (tests/segments/
    test_rule_count.py); the first skips the semi-join that probes the contacts' primary key once per member
    (docs/benchmarks.md, segments)."""
    now = timezone.now() if now is None else now
    if sees_every_contact(user):
        alone = count_alone(definition, now=now)
        if alone is not None:
            return alone.count()
    return contacts_visible_to(user).filter(compile_tree(definition, now=now)).count()


def segment_members(user, segment: Segment) -> QuerySet[Contact]:
    """The segment's members that `user` may see (an operator: only their own, even in a shared segment)."""
    membership = SegmentMembership.objects.filter(segment_id=segment.pk, contact_id=OuterRef("pk"))
    return contacts_visible_to(user).filter(Exists(membership))


def local_today() -> date:
    return timezone.localdate()


def size_history(
    segment_ids: list[int], days: int = 30, today: date | None = None
) -> dict[int, list[int | None]]:
    """segment id -> its size on each of the last `days` days (oldest first). A day without a row carries the
    previous day's size forward (a size is written only when it changes); days before the first row are None."""
    today = today or local_today()
    first = today - timedelta(days=days - 1)
    rows = SegmentSize.objects.filter(segment_id__in=segment_ids, day__lte=today)
    # The last size before the window starts seeds the carry-forward (one query, a subquery per segment).
    latest_before = SegmentSize.objects.filter(segment_id=OuterRef("pk"), day__lt=first).order_by("-day")
    before = dict(
        Segment.objects.filter(pk__in=segment_ids)
        .annotate(size_before=Subquery(latest_before.values("size")[:1]))
        .values_list("pk", "size_before")
    )
    by_day: dict[int, dict[date, int]] = {pk: {} for pk in segment_ids}
    for row in rows.filter(day__gte=first):
        by_day[row.segment_id][row.day] = row.size
    history = {}
    for pk in segment_ids:
        last, series = before.get(pk), []
        for offset in range(days):
            last = by_day[pk].get(first + timedelta(days=offset), last)
            series.append(last)
        history[pk] = series
    return history


def narrow_to_segment(user, contacts: QuerySet[Contact], raw: str) -> tuple[QuerySet[Contact], str]:
    """The contact list scope "?segment=<id>" (registered in SegmentsConfig.ready)."""
    from contacts.list_scopes import ScopeRejected

    segment = (
        segments_visible_to(user).filter(pk=int(raw)).first() if raw.isdigit() and len(raw) < 19 else None
    )
    if segment is None:
        raise ScopeRejected(_("Ignored the segment filter: no such segment."))
    membership = SegmentMembership.objects.filter(segment_id=segment.pk, contact_id=OuterRef("pk"))
    return contacts.filter(Exists(membership)), _("In segment “%(name)s”") % {"name": segment.name}
