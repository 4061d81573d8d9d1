"""What starts and ends enrollments, set-based, from the three places changes surface:

- events_react(event_ids): the event pipeline's step 3 (scrm.pipeline), in the batch's transaction: exits
  (a purchase, a reply, a goal event, after the enrollment began) and event triggers ("first purchase").
- touched_react(contact_ids): after scrm.touches drains the contact-touch outbox (edits, imports, tags, bulk
  actions): "contact added" and "tag added" triggers, and the exits on opt-out and on an exit tag.
- segment_changes_consume(): SegmentChange rows not yet consumed (claimed with SKIP LOCKED, like the
  pipeline's events): "entered / left a segment" triggers and "left the audience" exits. Called right after
  the pipeline's and the drain's segment refresh, and by beat every 30 s for full refreshes and the reconcile.
- birthdays_react(now): beat, hourly: birthday triggers.

Every trigger enrolls through sop.enrollment.enrollments_start with a trigger key, so seeing a trigger twice
enrolls once. Triggers only fire for what happened after the template was (last) activated.
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Min, Q
from django.utils import timezone

from contacts.models import Contact, ContactTag, Event, EventKind
from segments.models import SegmentChange

from .enrollment import enrollments_exit, enrollments_start, pairs_source
from .models import Enrollment, ExitReason, SopTemplate, Trigger
from .schedule import zone

# "Contact added" welcomes new customers: a contact imported with a join date older than this is history,
# not a newcomer, and starts no welcome sequence.
NEW_CONTACT_WINDOW = timedelta(days=3)
SEGMENT_CHANGES_BATCH = 5000


def _active(trigger: str | None = None):
    templates = SopTemplate.objects.filter(active=True, activated_at__isnull=False)
    return templates.filter(trigger=trigger) if trigger else templates


def _enroll(template: SopTemplate, pairs: list[tuple[int, str]], now: datetime) -> int:
    return enrollments_start(template=template, source=pairs_source(pairs), now=now) if pairs else 0


def _exit(
    template_ids: Iterable[int], contact_ids: Iterable[int], reason: str, *, after=None, now=None
) -> int:
    """End active enrollments of these templates for these contacts (those begun before `after`, if given)."""
    template_ids, contact_ids = list(template_ids), list(contact_ids)
    if not template_ids or not contact_ids:
        return 0
    enrollments = Enrollment.objects.filter(
        template_id__in=template_ids, contact_id__in=contact_ids, status=Enrollment.Status.ACTIVE
    )
    if after is not None:
        enrollments = enrollments.filter(enrolled_at__lte=after)
    return enrollments_exit(enrollments, reason=reason, now=now)


# --- events (pipeline step 3) ---------------------------------------------------------------------------


def events_react(event_ids: list[int], *, now: datetime | None = None) -> None:
    now = now or timezone.now()
    events = list(Event.objects.filter(id__in=event_ids).values("id", "contact_id", "kind", "occurred_at"))
    if not events:
        return
    _event_exits(events, now)
    _event_triggers(events, now)


def _event_exits(events: list[dict], now: datetime) -> None:
    exits = [
        (ExitReason.PURCHASE, SopTemplate.objects.filter(exit_on_purchase=True), {EventKind.PURCHASE}),
        (ExitReason.REPLY, SopTemplate.objects.filter(exit_on_reply=True), {EventKind.MESSAGE_IN}),
    ]
    for reason, templates, kinds in exits:
        _exit_on(events, reason, list(templates.values_list("id", flat=True)), kinds, now)
    for template_id, kind in SopTemplate.objects.exclude(exit_goal_kind="").values_list(
        "id", "exit_goal_kind"
    ):
        _exit_on(events, ExitReason.GOAL, [template_id], {kind}, now)


def _exit_on(
    events: list[dict], reason: str, template_ids: list[int], kinds: set[str], now: datetime
) -> None:
    if not template_ids:
        return
    # An event exits only enrollments that began before it happened (an imported old order exits nothing).
    by_contact: dict[int, datetime] = {}
    for e in events:
        if e["kind"] in kinds:
            by_contact[e["contact_id"]] = max(
                by_contact.get(e["contact_id"], e["occurred_at"]), e["occurred_at"]
            )
    if not by_contact:
        return
    enrollments = Enrollment.objects.filter(
        template_id__in=template_ids, contact_id__in=list(by_contact), status=Enrollment.Status.ACTIVE
    ).values_list("id", "contact_id", "enrolled_at")
    ending = [pk for pk, contact_id, enrolled_at in enrollments if enrolled_at <= by_contact[contact_id]]
    if ending:
        enrollments_exit(Enrollment.objects.filter(id__in=ending), reason=reason, now=now)


def _event_triggers(events: list[dict], now: datetime) -> None:
    for template in _active(Trigger.EVENT).exclude(trigger_event_kind=""):
        matching = [
            e
            for e in events
            if e["kind"] == template.trigger_event_kind and e["occurred_at"] >= template.activated_at
        ]
        if template.trigger_first_only and matching:
            matching = _first_of_kind(matching, template.trigger_event_kind)
        _enroll(template, [(e["contact_id"], f"event:{e['id']}") for e in matching], now)


def _first_of_kind(events: list[dict], kind: str) -> list[dict]:
    """The events that are their contact's first of `kind` (no earlier one exists)."""
    contact_ids = {e["contact_id"] for e in events}
    first = dict(
        Event.objects.filter(contact_id__in=contact_ids, kind=kind)
        .values("contact_id")
        .annotate(first=Min("id"))
        .values_list("contact_id", "first")
    )
    return [e for e in events if first.get(e["contact_id"]) == e["id"]]


# --- touched contacts (after the drain) -------------------------------------------------------------------


def touched_react(contact_ids: list[int], *, now: datetime | None = None) -> None:
    now = now or timezone.now()
    if not contact_ids:
        return
    _contact_added(contact_ids, now)
    _tag_added(contact_ids, now)
    _touched_exits(contact_ids, now)


def _contact_added(contact_ids: list[int], now: datetime) -> None:
    for template in _active(Trigger.CONTACT_ADDED):
        contacts = Contact.objects.filter(
            id__in=contact_ids,
            created_at__gte=template.activated_at,
            joined_at__gte=now - NEW_CONTACT_WINDOW,
        )
        if template.trigger_source:
            contacts = contacts.filter(source=template.trigger_source)
        _enroll(template, [(cid, "added") for cid in contacts.values_list("id", flat=True)], now)


def _tag_added(contact_ids: list[int], now: datetime) -> None:
    for template in _active(Trigger.TAG_ADDED).exclude(trigger_tag__isnull=True):
        rows = ContactTag.objects.filter(
            contact_id__in=contact_ids, tag_id=template.trigger_tag_id, added_at__gte=template.activated_at
        ).values_list("contact_id", "id")
        _enroll(template, [(cid, f"tag:{ct_id}") for cid, ct_id in rows], now)


def _touched_exits(contact_ids: list[int], now: datetime) -> None:
    opted_out = list(Contact.objects.filter(id__in=contact_ids, opted_out=True).values_list("id", flat=True))
    _exit(SopTemplate.objects.filter(exit_on_opt_out=True).values_list("id", flat=True), opted_out,
          ExitReason.OPTED_OUT, now=now)  # fmt: skip
    for template_id, tag_id in SopTemplate.objects.exclude(exit_tag__isnull=True).values_list(
        "id", "exit_tag_id"
    ):
        tagged = ContactTag.objects.filter(contact_id__in=contact_ids, tag_id=tag_id).values_list(
            "contact_id", flat=True
        )
        _exit([template_id], tagged, ExitReason.TAG_ADDED, now=now)


# --- segment changes --------------------------------------------------------------------------------------


_CHANGE_FIELDS = ("id", "segment_id", "contact_id", "change", "at")


def _claim_changes(contact_ids: list[int] | None, limit: int) -> list[dict]:
    changes = SegmentChange.objects.filter(consumed_at__isnull=True)
    if contact_ids is not None:
        changes = changes.filter(contact_id__in=contact_ids)
    claimable = changes.select_for_update(skip_locked=True).order_by("id").values("id")[:limit]
    if connection.vendor == "postgresql":
        # One statement instead of select, update and select again (the touch drain claims after every batch).
        sql, params = claimable.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {SegmentChange._meta.db_table} SET consumed_at = %s WHERE id IN ({sql}) "
                f"RETURNING {', '.join(_CHANGE_FIELDS)}",
                [timezone.now(), *params],
            )
            return sorted(
                (dict(zip(_CHANGE_FIELDS, row, strict=True)) for row in cursor.fetchall()),
                key=lambda c: c["id"],
            )
    ids = [row["id"] for row in claimable]
    if not ids:
        return []
    SegmentChange.objects.filter(id__in=ids).update(consumed_at=timezone.now())
    return list(SegmentChange.objects.filter(id__in=ids).order_by("id").values(*_CHANGE_FIELDS))


def segment_changes_consume(*, contact_ids: list[int] | None = None, now: datetime | None = None) -> int:
    """Act on unconsumed segment changes (all of them, or those of `contact_ids`); returns how many.
    Call it inside a transaction: the claim and the enrollments commit together."""
    now = now or timezone.now()
    consumed = 0
    while True:
        changes = _claim_changes(contact_ids, SEGMENT_CHANGES_BATCH)
        if not changes:
            return consumed
        consumed += len(changes)
        _segment_triggers(changes, now)
        _audience_exits(changes, now)
        if len(changes) < SEGMENT_CHANGES_BATCH:
            return consumed


def _segment_triggers(changes: list[dict], now: datetime) -> None:
    wanted = {
        Trigger.SEGMENT_ENTERED: SegmentChange.Change.ENTERED,
        Trigger.SEGMENT_EXITED: SegmentChange.Change.EXITED,
    }
    templates = _active().filter(trigger__in=list(wanted), trigger_segment__isnull=False)
    for template in templates:
        change_kind = wanted[template.trigger]
        pairs = [
            (c["contact_id"], f"seg:{c['id']}")
            for c in changes
            if c["segment_id"] == template.trigger_segment_id
            and c["change"] == change_kind
            and c["at"] >= template.activated_at
        ]
        _enroll(template, pairs, now)


def _audience_exits(changes: list[dict], now: datetime) -> None:
    exited_by_segment: dict[int, list[int]] = defaultdict(list)
    for c in changes:
        if c["change"] == SegmentChange.Change.EXITED:
            exited_by_segment[c["segment_id"]].append(c["contact_id"])
    if not exited_by_segment:
        return
    templates = SopTemplate.objects.filter(
        exit_on_audience_left=True, audience_id__in=list(exited_by_segment)
    )
    for template_id, audience_id in templates.values_list("id", "audience_id"):
        _exit([template_id], exited_by_segment[audience_id], ExitReason.LEFT_AUDIENCE, now=now)


# --- birthdays (beat, hourly) -----------------------------------------------------------------------------


def birthdays_react(*, now: datetime | None = None) -> int:
    """Enroll, for each active birthday template, the customers whose birthday is its N days ahead of their own
    today. Idempotent: the key "birthday:<year>" enrolls a customer once a year (re-entry permitting)."""
    now = now or timezone.now()
    enrolled = 0
    zones = list(
        Contact.objects.filter(birthday__isnull=False).values_list("time_zone", flat=True).distinct()
    )
    for template in _active(Trigger.BIRTHDAY):
        for tz_name in zones:
            target = now.astimezone(zone(tz_name)).date() + timedelta(days=template.birthday_days_before)
            contacts = _birthday_on(target).filter(time_zone=tz_name)
            pairs = [(cid, f"birthday:{target.year}") for cid in contacts.values_list("id", flat=True)]
            enrolled += _enroll(template, pairs, now)
    return enrolled


def _birthday_on(day):
    """Contacts born on day's month and day (29 February birthdays are kept on 28 February in other years)."""
    match = Q(birthday__month=day.month, birthday__day=day.day)
    if day.month == 2 and day.day == 28 and not _is_leap(day.year):
        match |= Q(birthday__month=2, birthday__day=29)
    return Contact.objects.filter(match)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
