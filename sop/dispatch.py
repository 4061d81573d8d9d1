"""The dispatcher: due touchpoints out, exactly once (DESIGN.md, "Touchpoints are an outbox").

Every minute beat sends dispatch_due_touchpoints_task to the `dispatch` queue. A run claims batches of due
rows with SELECT … FOR UPDATE SKIP LOCKED, ordered by due time, and decides each one inside the claiming
transaction:

- the guards: a deleted customer or an ended enrollment is skipped; an opted-out customer gets only
  transactional steps; quiet hours (in the customer's zone) defer to their end; the per-customer frequency
  cap across all templates defers (to the first allowed day) or skips, as the template says. Transactional
  steps ignore the cap and quiet hours. A wait-for-reply step whose customer replied skips or jumps;
- the `task` channel (no outside I/O) is delivered in the same transaction: the task opens in the owner's
  inbox with its message and a Delivery row is written; the claim, the status and the record commit together,
  so a killed worker rolls all of it back and the next run does it once;
- outside channels (email, webhook) are marked `sending` in the transaction and sent after it commits
  (send_touchpoints), each attempt recorded, the status moved by a conditional UPDATE; a worker lost mid-send
  leaves the row `sending` and the reaper re-queues it, sent again with the same idempotency key.

The next step's touchpoint is written when a step is delivered or skipped, so "N hours after the previous
step" counts from the real send. Nothing here uses a Celery ETA.
"""

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import DateTimeField, Max
from django.utils import timezone

from contacts.models import Contact, EventKind
from contacts.models import Event as ContactEvent

from .actions import step_actions_apply
from .channels import get_channel
from .channels.base import Message
from .content import contact_contexts, render_content
from .models import (
    CapPolicy,
    Delivery,
    Enrollment,
    ExitReason,
    ReplyBranch,
    SkipReason,
    SopStep,
    Touchpoint,
    TouchStatus,
)
from .schedule import cap_allows_at, quiet_until, step_due
from .selectors import sop_settings

CAP_LOOKBACK = timedelta(days=8)
# Stored on the task (shown to whoever works it); the pages translate it by this exact text.
OWNER_DEACTIVATED_NOTE = "owner_deactivated"


@dataclass
class DispatchStats:
    claimed: int = 0
    issued: int = 0  # tasks opened in an inbox, or inline deliveries
    sending: int = 0  # handed to an outside channel
    deferred: int = 0
    skipped: int = 0
    failed: int = 0
    batches: int = 0

    def add(self, other: "DispatchStats") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _Batch:
    """What one claimed batch decided, written back in a few set-based statements."""

    now: datetime
    skipped: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    deferred: list[Touchpoint] = field(default_factory=list)
    issued: list[Touchpoint] = field(default_factory=list)
    sending: list[Touchpoint] = field(default_factory=list)
    failed: list[Touchpoint] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    next_touchpoints: list[Touchpoint] = field(default_factory=list)
    completed_enrollments: list[int] = field(default_factory=list)
    exited_enrollments: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    actions_for: list[int] = field(default_factory=list)


def idempotency_key(touchpoint_id: int) -> str:
    return f"scrm-touchpoint-{touchpoint_id}"


# --- claiming ---------------------------------------------------------------------------------------------


def _claim(now: datetime, size: int) -> list[Touchpoint]:
    ids = list(
        Touchpoint.objects.select_for_update(skip_locked=True)
        .filter(status=TouchStatus.SCHEDULED, due_at__lte=now)
        .order_by("due_at", "id")
        .values_list("id", flat=True)[:size]
    )
    return list(Touchpoint.objects.filter(id__in=ids).select_related("enrollment").order_by("due_at", "id"))


def reap_stale_sending(now: datetime) -> int:
    """Touchpoints left `sending` by a worker that died mid-send go back to the queue (sent again with the
    same idempotency key: a receiver that saw it drops the copy)."""
    stale = now - timedelta(minutes=settings.SOP_SENDING_STALE_MINUTES)
    return Touchpoint.objects.filter(status=TouchStatus.SENDING, claimed_at__lt=stale).update(
        status=TouchStatus.SCHEDULED, due_at=now
    )


# --- deciding ---------------------------------------------------------------------------------------------


class _Context:
    """Everything a batch's decisions read, loaded with one query per kind of row."""

    def __init__(self, touchpoints: list[Touchpoint], now: datetime):
        contact_ids = {t.contact_id for t in touchpoints if t.contact_id}
        template_ids = {t.template_id for t in touchpoints}
        self.steps: dict[int, SopStep] = {}
        self.steps_of: dict[int, list[SopStep]] = defaultdict(list)
        for step in SopStep.objects.filter(template_id__in=template_ids).select_related("template"):
            self.steps[step.pk] = step
            self.steps_of[step.template_id].append(step)
        for steps in self.steps_of.values():
            steps.sort(key=lambda s: s.position)
        self.contacts = {
            row["id"]: row
            for row in Contact.objects.filter(id__in=contact_ids).values(
                "id",
                "name",
                "email",
                "external_userid",
                "opted_out",
                "time_zone",
                "owner_id",
                "owner__is_active",
                "owner__manager",
                "owner__manager__is_active",
            )
        }
        self.recent: dict[int, list[datetime]] = defaultdict(list)
        for contact_id, sent_at in Touchpoint.objects.filter(
            contact_id__in=contact_ids, transactional=False, sent_at__gte=now - CAP_LOOKBACK
        ).values_list("contact_id", "sent_at"):
            self.recent[contact_id].append(sent_at)
        self.settings = sop_settings()
        self.replied = self._replied(touchpoints)
        self._texts: dict[int, dict] | None = None

    def _replied(self, touchpoints: list[Touchpoint]) -> set[int]:
        """Touchpoints of wait-for-reply steps whose customer wrote since the enrollment's last send."""
        branching = [t for t in touchpoints if t.contact_id and self.steps[t.step_id].reply_branch]
        if not branching:
            return set()
        enrollment_ids = [t.enrollment_id for t in branching]
        last_sent = dict(
            Touchpoint.objects.filter(enrollment_id__in=enrollment_ids, sent_at__isnull=False)
            .values("enrollment_id")
            .annotate(last=Max("sent_at"))
            .values_list("enrollment_id", "last")
        )
        latest_reply = dict(
            ContactEvent.objects.filter(
                contact_id__in={t.contact_id for t in branching}, kind=EventKind.MESSAGE_IN
            )
            .values("contact_id")
            .annotate(last=Max("occurred_at"))
            .values_list("contact_id", "last")
        )
        replied = set()
        for t in branching:
            since = last_sent.get(t.enrollment_id) or t.enrollment.enrolled_at
            reply = latest_reply.get(t.contact_id)
            if reply and reply > since:
                replied.add(t.pk)
        return replied

    def texts(self, contact_ids) -> dict[int, dict]:
        if self._texts is None:
            self._texts = contact_contexts(contact_ids, unsubscribe=self.settings.unsubscribe_text)
        return self._texts


def _next_step(ctx: _Context, step: SopStep, *, jump: bool) -> SopStep | None:
    steps = ctx.steps_of[step.template_id]
    if jump and step.jump_to is not None:
        return next((s for s in steps if s.position == step.jump_to), None)
    return next((s for s in steps if s.position > step.position), None)


def _continue(batch: _Batch, ctx: _Context, touchpoint: Touchpoint, *, sent_at: datetime | None, jump=False):
    """Write the next step's touchpoint, or complete the enrollment after its last step."""
    step = ctx.steps[touchpoint.step_id]
    following = _next_step(ctx, step, jump=jump)
    if following is None:
        batch.completed_enrollments.append(touchpoint.enrollment_id)
        return
    tz_name = ctx.contacts[touchpoint.contact_id]["time_zone"]
    due = step_due(
        following,
        enrolled_at=touchpoint.enrollment.enrolled_at,
        previous_sent_at=sent_at or batch.now,
        tz_name=tz_name,
    )
    batch.next_touchpoints.append(
        Touchpoint(
            enrollment_id=touchpoint.enrollment_id,
            step=following,
            contact_id=touchpoint.contact_id,
            template_id=touchpoint.template_id,
            due_at=due,
            planned_at=due,
            transactional=following.transactional,
        )
    )


def _skip(batch: _Batch, ctx: _Context, touchpoint: Touchpoint, reason: str, *, go_on=True, jump=False):
    batch.skipped[reason].append(touchpoint.pk)
    if go_on:
        _continue(batch, ctx, touchpoint, sent_at=None, jump=jump)


def _defer(batch: _Batch, touchpoint: Touchpoint, until: datetime, reason: str) -> None:
    touchpoint.due_at, touchpoint.reason = until, reason
    touchpoint.deferrals += 1
    batch.deferred.append(touchpoint)


def _message(ctx: _Context, touchpoint: Touchpoint, text: str) -> Message:
    contact, step = ctx.contacts[touchpoint.contact_id], ctx.steps[touchpoint.step_id]
    return Message(
        touchpoint_id=touchpoint.pk,
        contact_id=contact["id"],
        contact_name=contact["name"],
        email=contact["email"],
        external_userid=contact["external_userid"],
        template_name=step.template.name,
        step_name=step.name,
        text=text,
        config=step.channel_config,
        idempotency_key=idempotency_key(touchpoint.pk),
    )


def _assignee(contact: dict) -> tuple[int | None, str]:
    """Who works the task: the customer's owner; if the owner was deactivated, their manager (or nobody: the
    team view lists unassigned tasks for managers to hand out), with the reason recorded on the task."""
    if contact["owner_id"] is None or contact["owner__is_active"]:
        return contact["owner_id"], ""
    if contact["owner__manager"] and contact["owner__manager__is_active"]:
        return contact["owner__manager"], OWNER_DEACTIVATED_NOTE
    return None, OWNER_DEACTIVATED_NOTE


def reassign_from_deactivated(now: datetime) -> int:
    """Open tasks of users deactivated since they were issued go to those users' managers (or to nobody),
    with the reason noted; run by every dispatch."""
    moved = 0
    stranded = Touchpoint.objects.filter(status=TouchStatus.OPEN, assignee__is_active=False)
    for manager_id, manager_active in stranded.values_list(
        "assignee__manager_id", "assignee__manager__is_active"
    ).distinct():
        target = manager_id if manager_active else None
        moved += stranded.filter(assignee__manager_id=manager_id).update(
            assignee_id=target, note=OWNER_DEACTIVATED_NOTE
        )
    return moved


def _guard_time(batch: _Batch, ctx: _Context, touchpoint: Touchpoint, contact: dict) -> bool:
    """Quiet hours and the frequency cap; True when the touchpoint may go now."""
    s, now, tz_name = ctx.settings, batch.now, contact["time_zone"]
    quiet_end = quiet_until(now, start=s.quiet_start, end=s.quiet_end, tz_name=tz_name)
    if quiet_end:
        _defer(batch, touchpoint, quiet_end, SkipReason.QUIET_HOURS)
        return False
    allowed_at = cap_allows_at(
        now, ctx.recent[contact["id"]], per_day=s.cap_per_day, per_week=s.cap_per_week, tz_name=tz_name
    )
    if allowed_at is None:
        return True
    if ctx.steps[touchpoint.step_id].template.cap_policy == CapPolicy.SKIP:
        _skip(batch, ctx, touchpoint, SkipReason.CAP)
    else:
        later = quiet_until(allowed_at, start=s.quiet_start, end=s.quiet_end, tz_name=tz_name)
        _defer(batch, touchpoint, later or allowed_at, SkipReason.CAP)
    return False


def _decide(batch: _Batch, ctx: _Context, touchpoint: Touchpoint) -> None:
    now = batch.now
    if touchpoint.contact_id is None or touchpoint.contact_id not in ctx.contacts:
        _skip(batch, ctx, touchpoint, SkipReason.CONTACT_DELETED, go_on=False)
        batch.exited_enrollments[ExitReason.CONTACT_DELETED].append(touchpoint.enrollment_id)
        return
    if touchpoint.enrollment.status != Enrollment.Status.ACTIVE:
        _skip(batch, ctx, touchpoint, SkipReason.EXITED, go_on=False)
        return
    step, contact = ctx.steps[touchpoint.step_id], ctx.contacts[touchpoint.contact_id]
    if touchpoint.pk in ctx.replied:
        _skip(batch, ctx, touchpoint, SkipReason.REPLIED, jump=step.reply_branch == ReplyBranch.JUMP)
        return
    if not step.transactional:
        if contact["opted_out"]:
            _skip(batch, ctx, touchpoint, SkipReason.OPTED_OUT)
            return
        if not _guard_time(batch, ctx, touchpoint, contact):
            return
    channel = get_channel(step.channel)
    if channel is None:
        touchpoint.error = f"unknown channel {step.channel!r}"
        batch.failed.append(touchpoint)
        _continue(batch, ctx, touchpoint, sent_at=None)
        return
    text = render_content(step.content, ctx.texts(list(ctx.contacts))[contact["id"]])
    message = _message(ctx, touchpoint, text)
    if channel.address_missing(message):
        _skip(batch, ctx, touchpoint, SkipReason.NO_ADDRESS)
        return
    touchpoint.rendered, touchpoint.attempts = text, touchpoint.attempts + 1
    if not step.transactional:
        ctx.recent[contact["id"]].append(now)  # the next touch in this batch sees this one
    if not channel.inline:
        touchpoint.status, touchpoint.claimed_at = TouchStatus.SENDING, now
        batch.sending.append(touchpoint)
        return
    result = channel.send(message)
    batch.deliveries.append(
        Delivery(
            touchpoint_id=touchpoint.pk,
            attempt=touchpoint.attempts,
            channel=channel.name,
            status=Delivery.Status.OK if result.ok else Delivery.Status.FAILED,
            idempotency_key=message.idempotency_key,
            error=result.error,
            created_at=now,
        )
    )
    touchpoint.sent_at = now
    if channel.needs_operator:
        touchpoint.status = TouchStatus.OPEN
        touchpoint.assignee_id, touchpoint.note = _assignee(contact)
    else:
        touchpoint.status, touchpoint.finished_at = TouchStatus.DELIVERED, now
        batch.actions_for.append(touchpoint.pk)
    batch.issued.append(touchpoint)
    _continue(batch, ctx, touchpoint, sent_at=now)


# --- writing ----------------------------------------------------------------------------------------------


def _prepared(model, objs: list, names: list[str]) -> tuple[list, list[str], list[list]]:
    """The fields, their columns, and one list of values per field. Only datetimes need adapting (SQLite
    stores text); Field.get_db_prep_value on every value cost 20 µs each, a second per batch."""
    fields = [model._meta.get_field(name) for name in names]
    columns = [f.column for f in fields]
    adapt = connection.ops.adapt_datetimefield_value
    values = []
    for f in fields:
        column = [getattr(o, f.attname) for o in objs]
        if isinstance(f, DateTimeField):
            column = [adapt(v) if v is not None else None for v in column]
        values.append(column)
    return fields, columns, values


def _update_rows(rows: list[Touchpoint], names: list[str]) -> None:
    """UPDATE each row's `names` to its own values in one statement (PostgreSQL: a join to unnested arrays;
    SQLite: executemany). Django's bulk_update builds a CASE per field and row in Python: ~8 ms a row."""
    if not rows:
        return
    fields, columns, values = _prepared(Touchpoint, rows, names)
    table = Touchpoint._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            types = ["bigint"] + [f.db_type(connection) for f in fields]
            unnest = ", ".join(f"%s::{t}[]" for t in types)
            assign = ", ".join(f"{c} = v.{c}" for c in columns)
            cursor.execute(
                f"UPDATE {table} AS t SET {assign} FROM unnest({unnest}) AS v(id, {', '.join(columns)}) "
                f"WHERE t.id = v.id",
                [[r.pk for r in rows], *values],
            )
        else:
            assign = ", ".join(f"{c} = %s" for c in columns)
            cursor.executemany(
                f"UPDATE {table} SET {assign} WHERE id = %s",
                [[*v, r.pk] for *v, r in zip(*values, rows, strict=True)],
            )


def _insert_rows(model, objs: list, names: list[str], *, skip_conflicts: bool = False) -> None:
    """INSERT the objects' `names` in one statement (PostgreSQL: unnested arrays; SQLite: executemany), a
    tenth of bulk_create's Python time for a dispatch batch. Conflicts are skipped when asked."""
    if not objs:
        return
    fields, columns, values = _prepared(model, objs, names)
    table, cols = model._meta.db_table, ", ".join(columns)
    conflict = " ON CONFLICT DO NOTHING" if skip_conflicts else ""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            unnest = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
            cursor.execute(f"INSERT INTO {table} ({cols}) SELECT * FROM unnest({unnest}){conflict}", values)
        else:
            marks = ", ".join("%s" for _ in columns)
            cursor.executemany(
                f"INSERT INTO {table} ({cols}) VALUES ({marks}){conflict}", list(zip(*values, strict=True))
            )


DELIVERY_COLUMNS = ["touchpoint", "attempt", "channel", "status", "idempotency_key", "response_code", "error",
                    "duration_ms", "created_at"]  # fmt: skip
TOUCHPOINT_COLUMNS = ["enrollment", "step", "contact", "template", "status", "due_at", "planned_at", "transactional",
                      "assignee", "rendered", "attempts", "deferrals", "reason", "error", "sent_at", "finished_at",
                      "finished_by", "outcome", "note", "claimed_at"]  # fmt: skip


def _write(batch: _Batch) -> None:
    now = batch.now
    for reason, ids in batch.skipped.items():
        Touchpoint.objects.filter(id__in=ids).update(
            status=TouchStatus.SKIPPED, reason=reason, finished_at=now
        )
    _update_rows(batch.deferred, ["due_at", "reason", "deferrals"])
    _update_rows(
        batch.issued, ["status", "rendered", "attempts", "sent_at", "finished_at", "assignee", "note"]
    )
    _update_rows(batch.sending, ["status", "rendered", "attempts", "claimed_at"])
    for t in batch.failed:
        t.status, t.finished_at = TouchStatus.FAILED, now
    _update_rows(batch.failed, ["status", "finished_at", "error"])
    _insert_rows(Delivery, batch.deliveries, DELIVERY_COLUMNS)
    _insert_rows(Touchpoint, batch.next_touchpoints, TOUCHPOINT_COLUMNS, skip_conflicts=True)
    if batch.completed_enrollments:
        Enrollment.objects.filter(id__in=batch.completed_enrollments, status=Enrollment.Status.ACTIVE).update(
            status=Enrollment.Status.COMPLETED, ended_at=now
        )
    for reason, ids in batch.exited_enrollments.items():
        Enrollment.objects.filter(id__in=ids, status=Enrollment.Status.ACTIVE).update(
            status=Enrollment.Status.EXITED, exit_reason=reason, ended_at=now
        )
    if batch.actions_for:
        step_actions_apply(touchpoint_ids=batch.actions_for)


def _dispatch_batch(now: datetime, size: int) -> tuple[DispatchStats, list[int]]:
    """Claim, decide and write one batch in one transaction; returns its stats and the ids to send."""
    stats = DispatchStats()
    with transaction.atomic():
        touchpoints = _claim(now, size)
        if not touchpoints:
            return stats, []
        ctx = _Context(touchpoints, now)
        batch = _Batch(now=now)
        # Per customer, higher-priority templates first: they win a contested frequency-cap slot.
        ordered = sorted(
            touchpoints,
            key=lambda t: (t.contact_id or 0, -ctx.steps[t.step_id].template.priority, t.due_at, t.pk),
        )
        for touchpoint in ordered:
            _decide(batch, ctx, touchpoint)
        _write(batch)
    stats.claimed, stats.batches = len(touchpoints), 1
    stats.issued, stats.sending, stats.failed = len(batch.issued), len(batch.sending), len(batch.failed)
    stats.deferred, stats.skipped = len(batch.deferred), sum(len(ids) for ids in batch.skipped.values())
    return stats, [t.pk for t in batch.sending]


def dispatch_due(
    *, now: datetime | None = None, batch_size: int | None = None, time_budget: float | None = None
) -> DispatchStats:
    """Dispatch every touchpoint due by `now`, batch by batch, until none is left or the time is up."""
    from .tasks import send_touchpoints_task  # the task module imports this one

    size = batch_size or settings.SOP_DISPATCH_BATCH_SIZE
    budget = settings.SOP_DISPATCH_TIME_BUDGET_SECONDS if time_budget is None else time_budget
    started = time.monotonic()
    total = DispatchStats()
    reap_stale_sending(now or timezone.now())
    reassign_from_deactivated(now or timezone.now())
    while time.monotonic() - started < budget:
        stats, to_send = _dispatch_batch(now or timezone.now(), size)
        total.add(stats)
        if to_send:
            send_touchpoints_task.delay(touchpoint_ids=to_send)
        if stats.claimed < size:
            break
    return total


# --- outside channels -------------------------------------------------------------------------------------


def send_touchpoints(touchpoint_ids: list[int]) -> None:
    """Send claimed (`sending`) touchpoints through their outside channel, one by one, each attempt recorded
    and its outcome written by a conditional UPDATE (a row the reaper took back meanwhile is left alone)."""
    for touchpoint in Touchpoint.objects.filter(
        id__in=touchpoint_ids, status=TouchStatus.SENDING
    ).select_related("enrollment", "step__template"):
        _send_one(touchpoint)


def _send_one(touchpoint: Touchpoint) -> None:
    ctx = _Context([touchpoint], timezone.now())
    if touchpoint.contact_id not in ctx.contacts:
        Touchpoint.objects.filter(pk=touchpoint.pk, status=TouchStatus.SENDING).update(
            status=TouchStatus.SKIPPED, reason=SkipReason.CONTACT_DELETED, finished_at=timezone.now()
        )
        return
    channel = get_channel(touchpoint.step.channel)
    message = _message(ctx, touchpoint, touchpoint.rendered)
    started = time.monotonic()
    result = channel.send(message)
    duration_ms = int((time.monotonic() - started) * 1000)
    now = timezone.now()
    attempt = touchpoint.attempts
    retry = not result.ok and result.retryable and attempt < channel.max_attempts
    with transaction.atomic():
        Delivery.objects.bulk_create(
            [
                Delivery(
                    touchpoint_id=touchpoint.pk,
                    attempt=attempt,
                    channel=channel.name,
                    status=Delivery.Status.OK
                    if result.ok
                    else (Delivery.Status.RETRY if retry else Delivery.Status.FAILED),
                    idempotency_key=message.idempotency_key,
                    response_code=result.response_code,
                    error=result.error[:500],
                    duration_ms=duration_ms,
                    created_at=now,
                )
            ],
            ignore_conflicts=True,
        )
        mine = Touchpoint.objects.filter(pk=touchpoint.pk, status=TouchStatus.SENDING, attempts=attempt)
        if result.ok:
            moved = mine.update(status=TouchStatus.DELIVERED, sent_at=now, finished_at=now, error="")
        elif retry:
            backoff = timedelta(seconds=channel.retry_base_seconds * 2 ** (attempt - 1))
            moved = mine.update(status=TouchStatus.SCHEDULED, due_at=now + backoff, error=result.error[:500])
        else:
            moved = mine.update(status=TouchStatus.FAILED, finished_at=now, error=result.error[:500])
        if not moved or retry:
            return
        batch = _Batch(now=now)
        if result.ok:
            batch.actions_for.append(touchpoint.pk)
        _continue(batch, ctx, touchpoint, sent_at=now if result.ok else None)
        Touchpoint.objects.bulk_create(batch.next_touchpoints, ignore_conflicts=True)
        if batch.completed_enrollments:
            Enrollment.objects.filter(
                id__in=batch.completed_enrollments, status=Enrollment.Status.ACTIVE
            ).update(status=Enrollment.Status.COMPLETED, ended_at=now)
        if batch.actions_for:
            step_actions_apply(touchpoint_ids=batch.actions_for)
