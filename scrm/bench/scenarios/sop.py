"""Scenario `sop` (issue 5): enrolling a whole segment, the dispatcher's throughput, a trigger's latency.

- enroll_segment: every member of a segment of all contacts not opted out (nearly all) enrolled in a one-step
  template: sop.enrollment.enrollments_start with queryset_source over the segment's memberships (the
  "enroll current members" of an activated template). Each run enrolls into a fresh template.
- dispatch: sop.dispatch.dispatch_due, guards on (opt-out, quiet hours, the frequency cap; the step is not
  transactional), `task` channel, over DISPATCH_SHARE of the contacts' due touchpoints (100,000 at 1M);
  per_s is touchpoints dispatched per second on one process. Baseline: one raw UPDATE setting status and
  sent_at on the same rows. The touchpoints are enrolled and dispatched at a fixed daytime moment (noon in
  TIME_ZONE) so the wall clock's quiet hours cannot change what is measured.
- trigger_latency: a new contact matching a segment trigger, through the real path: contacts' contact_create
  (which records a ContactTouch), then scrm.touches.drain_contact_touches (segments refreshed for the touched
  contacts, the segment change consumed by the SOP trigger, the enrollment and its first touchpoint written)
  until the first touchpoint row exists. The processing time; beat runs the drain every 30 s, so the
  worst case from the edit is 30 s plus this.

Everything it makes is named "bench-sop-…" (templates, segments) or has a phone in TRIGGER_PHONES, and is
removed before and after a run, so it can run again; the shared data set is not changed. Between runs the SOP
tables are vacuumed and analysed (untimed), as autovacuum would leave them.
"""

import statistics
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from contacts.models import Contact
from contacts.services import contact_create
from scrm.touches import drain_contact_touches
from segments.models import Segment, SegmentChange, SegmentMembership
from segments.services import segment_refresh
from sop.dispatch import dispatch_due
from sop.enrollment import enrollments_start, pairs_source, queryset_source
from sop.models import Delivery, Enrollment, SopStep, SopTemplate, Touchpoint, Trigger
from sop.schedule import zone

from ..data import Dataset, delete_contacts_by_phone, ensure_actors
from ..runner import BenchFailure, Result

PREFIX = "bench-sop-"
DISPATCH_SHARE = 10  # one contact in ten has a due touchpoint (100,000 at 1M)
DISPATCH_MAX = 100_000
TRIGGER_CITY = "压测新城"  # no bench contact lives there: the trigger's segment starts empty
TRIGGER_PHONES = ("+8613990000000", "+8613990100000")  # [low, high) for the contacts trigger_latency creates


def _all(*children) -> dict:
    return {"type": "group", "match": "all", "children": list(children)}


def _execute(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _in(ids: list[int]) -> str:
    return ", ".join(["%s"] * len(ids))


def clean_up() -> None:
    """Remove the scenario's templates (with their enrollments, touchpoints and deliveries, set-based), its
    segments and the contacts trigger_latency made."""
    template_ids = list(SopTemplate.objects.filter(name__startswith=PREFIX).values_list("id", flat=True))
    if template_ids:
        touchpoint, ids = Touchpoint._meta.db_table, _in(template_ids)
        _execute(
            f"DELETE FROM {Delivery._meta.db_table} WHERE touchpoint_id IN "
            f"(SELECT id FROM {touchpoint} WHERE template_id IN ({ids}))",
            template_ids,
        )
        _execute(f"DELETE FROM {touchpoint} WHERE template_id IN ({ids})", template_ids)
        _execute(f"DELETE FROM {Enrollment._meta.db_table} WHERE template_id IN ({ids})", template_ids)
        SopTemplate.objects.filter(id__in=template_ids).delete()
        _vacuum()
    delete_contacts_by_phone(*TRIGGER_PHONES)
    segment_ids = list(Segment.objects.filter(name__startswith=PREFIX).values_list("id", flat=True))
    if segment_ids:
        for model in (SegmentMembership, SegmentChange):
            _execute(
                f"DELETE FROM {model._meta.db_table} WHERE segment_id IN ({_in(segment_ids)})", segment_ids
            )
        Segment.objects.filter(id__in=segment_ids).delete()


def _vacuum(*models, full=True) -> None:
    """What autovacuum would do in production between the runs: a run deletes what it made (a million dead
    rows) and then starts on tables whose statistics say empty; both would bend the next measurement."""
    if connection.vendor != "postgresql":
        return
    # VACUUM cannot run inside a transaction (a test's): ANALYZE alone there.
    command = "VACUUM ANALYZE" if full and not connection.in_atomic_block else "ANALYZE"
    with connection.cursor() as cursor:
        for model in models or (Enrollment, Touchpoint, Delivery):
            cursor.execute(f"{command} {model._meta.db_table}")


def _template(name: str, *, step: dict, **fields) -> SopTemplate:
    now = timezone.now()
    template = SopTemplate.objects.create(name=PREFIX + name, active=True, activated_at=now, **fields)
    SopStep.objects.create(
        template=template, position=1, name="1", content="{{ contact.name }}，您好", **step
    )
    return template


def _filled_segment(name: str, rule: dict) -> Segment:
    segment = Segment.objects.create(name=PREFIX + name, definition=rule)
    segment_refresh(segment_id=segment.pk)
    segment.refresh_from_db()
    return segment


def _drop_template_rows(template: SopTemplate) -> None:
    touchpoint = Touchpoint._meta.db_table
    _execute(
        f"DELETE FROM {Delivery._meta.db_table} WHERE touchpoint_id IN "
        f"(SELECT id FROM {touchpoint} WHERE template_id = %s)",
        [template.pk],
    )
    _execute(f"DELETE FROM {touchpoint} WHERE template_id = %s", [template.pk])
    _execute(f"DELETE FROM {Enrollment._meta.db_table} WHERE template_id = %s", [template.pk])
    template.delete()
    _vacuum()


# --- enroll_segment -------------------------------------------------------------------------------------


def enroll_segment(segment: Segment, *, runs: int) -> float:
    timings = []
    for n in range(runs):
        # Day 30: these touchpoints are never due while the scenario runs.
        template = _template(f"enroll-{n}", step={"channel": "task", "offset_days": 30})
        members = SegmentMembership.objects.filter(segment=segment).values("contact_id")
        started = time.perf_counter()
        enrolled = enrollments_start(template=template, source=queryset_source(members, "manual:bench"))
        timings.append((time.perf_counter() - started) * 1000)
        if enrolled != segment.member_count:
            raise BenchFailure(f"enrolled {enrolled} of the segment's {segment.member_count} members")
        if Touchpoint.objects.filter(template=template).count() != enrolled:
            raise BenchFailure("not every enrollment got its first touchpoint")
        _drop_template_rows(template)
    return statistics.median(timings)


# --- dispatch -------------------------------------------------------------------------------------------


def daytime() -> datetime:
    """The latest noon in TIME_ZONE: the data set's contacts live there, so no quiet hours hold anything."""
    now = timezone.now().astimezone(zone(settings.TIME_ZONE))
    noon = now.replace(hour=12, minute=0, second=0, microsecond=0)
    return noon if noon <= now else noon - timedelta(days=1)


def dispatch_once(contact_ids: list[int], n: int) -> tuple[float, float, int]:
    """Enroll, dispatch (timed) and, on the same rows, the raw UPDATE (timed); returns both in ms and how
    many touchpoints the dispatcher claimed."""
    at = daytime()
    template = _template(f"dispatch-{n}", step={"channel": "task", "offset_days": 0, "offset_time": "00:00"})
    enrollments_start(
        template=template, source=pairs_source([(cid, "manual:bench") for cid in contact_ids]), now=at
    )
    _vacuum(Enrollment, Touchpoint, full=False)  # autovacuum's analyse after the table grew
    due = Touchpoint.objects.filter(template=template, status="scheduled", due_at__lte=at).count()
    if due != len(contact_ids):
        raise BenchFailure(f"{due} touchpoints due, not {len(contact_ids)}")
    started = time.perf_counter()
    stats = dispatch_due(now=at, time_budget=3600)
    dispatch_ms = (time.perf_counter() - started) * 1000
    if stats.claimed != due or stats.issued + stats.skipped != due or stats.issued < due * 0.9:
        raise BenchFailure(f"dispatched {stats} of {due} due touchpoints")
    started = time.perf_counter()
    _execute(
        f"UPDATE {Touchpoint._meta.db_table} SET status = %s, sent_at = %s WHERE template_id = %s",
        ["delivered", connection.ops.adapt_datetimefield_value(at), template.pk],
    )
    baseline_ms = (time.perf_counter() - started) * 1000
    _drop_template_rows(template)
    return dispatch_ms, baseline_ms, stats.claimed


def dispatch(contacts: int, *, runs: int) -> Result:
    size = max(1, min(DISPATCH_MAX, contacts // DISPATCH_SHARE))
    contact_ids = list(Contact.objects.order_by("id").values_list("id", flat=True)[:size])
    measured = [dispatch_once(contact_ids, n) for n in range(runs)]
    dispatch_ms = statistics.median(m[0] for m in measured)
    return Result(
        "dispatch",
        dispatch_ms,
        baseline_ms=statistics.median(m[1] for m in measured),
        per_s=len(contact_ids) / (dispatch_ms / 1000),
    )


# --- trigger_latency ------------------------------------------------------------------------------------


def trigger_latency(admin, *, runs: int) -> float:
    segment = _filled_segment(
        "new-city", _all({"type": "field", "field": "city", "op": "equals", "value": TRIGGER_CITY})
    )
    template = _template(
        "trigger",
        step={"channel": "task", "offset_days": 0, "offset_time": "10:00"},
        trigger=Trigger.SEGMENT_ENTERED,
        trigger_segment=segment,
    )
    low = int(TRIGGER_PHONES[0].removeprefix("+"))
    timings = []
    for n in range(runs + 1):  # the first is a warm-up
        data = {"name": f"压测新客{n}", "phone": f"+{low + n}", "city": TRIGGER_CITY}
        started = time.perf_counter()
        contact = contact_create(actor=admin, data=data)
        drain_contact_touches()
        found = Touchpoint.objects.filter(template=template, contact=contact).exists()
        elapsed = (time.perf_counter() - started) * 1000
        if not found:
            raise BenchFailure("the new contact has no touchpoint after the drain")
        if n:
            timings.append(elapsed)
    return statistics.median(timings)


def run(dataset: Dataset, *, runs: int) -> list[Result]:
    actors = ensure_actors()
    clean_up()
    try:
        everyone = _filled_segment(
            "everyone", _all({"type": "field", "field": "opted_out", "op": "is_false"})
        )
        if everyone.member_count != Contact.objects.filter(opted_out=False).count():
            raise BenchFailure("the segment of everyone does not hold every contact not opted out")
        enroll_ms = enroll_segment(everyone, runs=runs)
        dispatched = dispatch(dataset.contacts, runs=runs)
        latency_ms = trigger_latency(actors.admin, runs=runs)
    finally:
        clean_up()
    return [Result("enroll_segment", enroll_ms), dispatched, Result("trigger_latency", latency_ms)]
