"""Reads of the SOP app that more than one place uses."""

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.db.models import Count, DateTimeField, Exists, ExpressionWrapper, Min, OuterRef, Prefetch, Q
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.roles import Role, role_of
from contacts.models import Event, EventKind, Tag

from .content import contact_contexts, render_content
from .models import (
    PENDING_STATUSES,
    Enrollment,
    ExitReason,
    SkipReason,
    SopSettings,
    SopStep,
    SopTemplate,
    Touchpoint,
    TouchStatus,
)
from .schedule import zone


def sop_settings() -> SopSettings:
    """The one settings row (made with the defaults on first use)."""
    settings_row, _created = SopSettings.objects.get_or_create(pk=1)
    return settings_row


# --- the inbox, the team view and the results (sop.work_views) ----------------------------------------------

INBOX_LIMIT = 500
TEAM_TASK_LIMIT = 500


def day_bounds(user, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The start of today and of tomorrow in the user's time zone."""
    tz = zone(getattr(user, "time_zone", "") or "")
    today = (now or timezone.now()).astimezone(tz).date()
    start = datetime.combine(today, time(0, 0), tzinfo=tz)
    return start, datetime.combine(today + timedelta(days=1), time(0, 0), tzinfo=tz)


def overdue_count(user, now: datetime | None = None) -> int:
    """The nav badge: the user's open tasks due before today (one COUNT on the sop_touch_inbox index)."""
    start, _end = day_bounds(user, now)
    return Touchpoint.objects.filter(assignee=user, status=TouchStatus.OPEN, due_at__lt=start).count()


@dataclass
class TaskGroup:
    template: SopTemplate
    step: SopStep
    tasks: list[Touchpoint] = field(default_factory=list)


def _fill_missing_text(tasks: list[Touchpoint]) -> None:
    """A task issued without its text (should not happen; the dispatcher renders it) is rendered now."""
    missing = [t for t in tasks if not t.rendered and t.contact_id]
    if not missing:
        return
    contexts = contact_contexts({t.contact_id for t in missing}, unsubscribe=sop_settings().unsubscribe_text)
    for task in missing:
        task.rendered = render_content(task.step.content, contexts.get(task.contact_id, {}))


def _group(tasks: list[Touchpoint]) -> list[TaskGroup]:
    groups: dict[tuple[int, int], TaskGroup] = {}
    for task in tasks:
        key = (task.template_id, task.step_id)
        if key not in groups:
            groups[key] = TaskGroup(task.template, task.step)
        groups[key].tasks.append(task)
    return list(groups.values())


def open_tasks():
    return Touchpoint.objects.filter(status=TouchStatus.OPEN).select_related(
        "contact__tier", "contact__owner", "template", "step", "assignee"
    )


def inbox_for(user, now: datetime | None = None) -> dict:
    """The user's open tasks due by the end of their today: {"overdue": [TaskGroup], "today": [TaskGroup],
    "overdue_count", "today_count", "truncated"}; groups ordered by template priority, then step."""
    start, end = day_bounds(user, now)
    qs = (
        open_tasks()
        .filter(assignee=user, due_at__lt=end)
        .prefetch_related(Prefetch("contact__tags", queryset=Tag.objects.select_related("group")))
        .order_by("-template__priority", "template__name", "template_id", "step__position", "due_at", "id")
    )
    tasks = list(qs[: INBOX_LIMIT + 1])
    truncated = len(tasks) > INBOX_LIMIT
    tasks = tasks[:INBOX_LIMIT]
    _fill_missing_text(tasks)
    for task in tasks:
        task.overdue = task.due_at < start
    overdue = [t for t in tasks if t.overdue]
    today = [t for t in tasks if not t.overdue]
    return {
        "overdue": _group(overdue),
        "today": _group(today),
        "overdue_count": len(overdue),
        "today_count": len(today),
        "truncated": truncated,
    }


def task_for_user(user, pk) -> Touchpoint:
    """An open-or-finished task the user may work, else 404 (another operator's task does not exist)."""
    from .work_services import touchpoints_workable_by

    qs = touchpoints_workable_by(user).select_related("contact__tier", "template", "step", "assignee")
    return get_object_or_404(qs.prefetch_related("contact__tags"), pk=pk)


@dataclass
class TeamRow:
    assignee: object  # a User, or None for tasks nobody is assigned
    open: int = 0
    overdue: int = 0
    oldest_due: datetime | None = None

    @property
    def inactive(self) -> bool:
        return self.assignee is not None and not self.assignee.is_active


def team_summary(user, now: datetime | None = None) -> list[TeamRow]:
    """Per assignee of the tasks the user may reassign: open, overdue, oldest due (one grouped query). A
    manager's operators appear even with nothing open; unassigned and deactivated assignees come first."""
    from .work_services import touchpoints_workable_by

    start, _end = day_bounds(user, now)
    counts = (
        touchpoints_workable_by(user)
        .filter(status=TouchStatus.OPEN)
        .values("assignee_id")
        .annotate(open=Count("id"), overdue=Count("id", filter=Q(due_at__lt=start)), oldest=Min("due_at"))
        .order_by()
    )
    by_id = {row["assignee_id"]: row for row in counts}
    wanted = set(by_id) - {None}
    if role_of(user) == Role.MANAGER:
        wanted |= set(get_user_model().objects.filter(manager=user).values_list("pk", flat=True))
    users = {u.pk: u for u in get_user_model().objects.filter(pk__in=wanted)}
    rows = []
    for pk in [None, *users] if None in by_id else list(users):
        row = by_id.get(pk, {})
        rows.append(TeamRow(users.get(pk), row.get("open", 0), row.get("overdue", 0), row.get("oldest")))
    rows.sort(
        key=lambda r: (
            0 if r.assignee is None else 2 if r.assignee.is_active else 1,
            -r.overdue,
            str(r.assignee),
        )
    )
    return rows


def team_tasks(user, *, overdue_only: bool = True, assignee_id: int | None = None, now=None):
    """Open tasks the user may reassign (overdue ones, or all open), oldest first, at most TEAM_TASK_LIMIT."""
    from .work_services import touchpoints_workable_by

    start, _end = day_bounds(user, now)
    qs = open_tasks().filter(
        pk__in=touchpoints_workable_by(user).filter(status=TouchStatus.OPEN).values("pk")
    )
    if overdue_only:
        qs = qs.filter(due_at__lt=start)
    if assignee_id == 0:
        qs = qs.filter(assignee__isnull=True)
    elif assignee_id:
        qs = qs.filter(assignee_id=assignee_id)
    tasks = list(qs.order_by("due_at", "id")[:TEAM_TASK_LIMIT])
    for task in tasks:
        task.overdue = task.due_at < start
    return tasks


# --- results ------------------------------------------------------------------------------------------------

REACHED = Q(status__in=(TouchStatus.DELIVERED, TouchStatus.DONE), sent_at__isnull=False)


def followed_by(kind: str, days: int) -> Exists:
    """The touch's customer had an event of `kind` within `days` after the touch's sent_at (an EXISTS on
    contacts_event's (contact, -occurred_at) index)."""
    until = ExpressionWrapper(OuterRef("sent_at") + timedelta(days=days), output_field=DateTimeField())
    return Exists(
        Event.objects.filter(
            contact_id=OuterRef("contact_id"),
            kind=kind,
            occurred_at__gte=OuterRef("sent_at"),
            occurred_at__lte=until,
        )
    )


def _touch_counts(days: int) -> dict:
    return {
        "planned": Count("id"),
        "waiting": Count("id", filter=Q(status__in=(*PENDING_STATUSES, TouchStatus.OPEN))),
        "delivered": Count("id", filter=REACHED),
        "done": Count("id", filter=Q(status=TouchStatus.DONE)),
        "skipped": Count("id", filter=Q(status=TouchStatus.SKIPPED)),
        "failed": Count("id", filter=Q(status=TouchStatus.FAILED)),
        "replied": Count("id", filter=REACHED & followed_by(EventKind.MESSAGE_IN, days)),
        "purchased": Count("id", filter=REACHED & followed_by(EventKind.PURCHASE, days)),
    }


ENROLLMENT_COUNTS = {
    "enrolled": Count("id"),
    "active": Count("id", filter=Q(status=Enrollment.Status.ACTIVE)),
    "completed": Count("id", filter=Q(status=Enrollment.Status.COMPLETED)),
    "exited": Count("id", filter=Q(status=Enrollment.Status.EXITED)),
}
TOUCH_KEYS = ("planned", "waiting", "delivered", "done", "skipped", "failed", "replied", "purchased")


def _rate(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def results_overview(templates: list[SopTemplate]) -> dict[int, dict]:
    """Headline numbers per template: enrollments by status and touches (delivered, replied, purchased …).
    One grouped query for enrollments and one per distinct results window for touches."""
    ids = [t.pk for t in templates]
    out = {pk: dict.fromkeys((*ENROLLMENT_COUNTS, *TOUCH_KEYS), 0) for pk in ids}
    for row in (
        Enrollment.objects.filter(template_id__in=ids).values("template_id").annotate(**ENROLLMENT_COUNTS)
    ):
        out[row["template_id"]].update({k: row[k] for k in ENROLLMENT_COUNTS})
    windows: dict[int, list[int]] = {}
    for t in templates:
        windows.setdefault(t.attribution_days, []).append(t.pk)
    for days, template_ids in windows.items():
        rows = (
            Touchpoint.objects.filter(template_id__in=template_ids)
            .values("template_id")
            .annotate(**_touch_counts(days))
            .order_by()
        )
        for row in rows:
            out[row["template_id"]].update({k: row[k] for k in TOUCH_KEYS})
    for numbers in out.values():
        numbers["reply_rate"] = _rate(numbers["replied"], numbers["delivered"])
        numbers["purchase_rate"] = _rate(numbers["purchased"], numbers["delivered"])
    return out


def template_results(template: SopTemplate) -> dict:
    """One template's numbers: the headline, each step's row (with skips by reason) and exits by reason."""
    headline = results_overview([template])[template.pk]
    by_step = {
        row["step_id"]: row
        for row in Touchpoint.objects.filter(template=template)
        .values("step_id")
        .annotate(**_touch_counts(template.attribution_days))
        .order_by()
    }
    skips: dict[int, dict[str, int]] = {}
    for row in (
        Touchpoint.objects.filter(template=template, status=TouchStatus.SKIPPED)
        .values("step_id", "reason")
        .annotate(n=Count("id"))
        .order_by()
    ):
        skips.setdefault(row["step_id"], {})[row["reason"]] = row["n"]
    steps = []
    for step in template.steps.order_by("position"):
        numbers = {k: by_step.get(step.pk, {}).get(k, 0) for k in TOUCH_KEYS}
        numbers["reply_rate"] = _rate(numbers["replied"], numbers["delivered"])
        numbers["purchase_rate"] = _rate(numbers["purchased"], numbers["delivered"])
        reasons = skips.get(step.pk, {})
        numbers["skipped_by"] = [
            (SkipReason(r).label if r in SkipReason.values else r or "—", n)
            for r, n in sorted(reasons.items())
        ]
        steps.append({"step": step, **numbers})
    exits = [
        (ExitReason(row["exit_reason"]).label if row["exit_reason"] in ExitReason.values else "—", row["n"])
        for row in Enrollment.objects.filter(template=template, status=Enrollment.Status.EXITED)
        .values("exit_reason")
        .annotate(n=Count("id"))
        .order_by("-n", "exit_reason")
    ]
    return {"headline": headline, "steps": steps, "exits": exits}


# --- the contact page ---------------------------------------------------------------------------------------


def contact_enrollments(contact, limit: int = 20) -> list[Enrollment]:
    """The contact's enrollments, newest first, each with `next_touch` (its open or scheduled touchpoint)."""
    enrollments = list(
        Enrollment.objects.filter(contact=contact)
        .select_related("template")
        .order_by("-enrolled_at", "-id")[:limit]
    )
    pending = {}
    for touch in (
        Touchpoint.objects.filter(
            enrollment__in=[e.pk for e in enrollments],
            status__in=(*PENDING_STATUSES, TouchStatus.OPEN),
        )
        .select_related("step")
        .order_by("due_at")
    ):
        pending.setdefault(touch.enrollment_id, touch)
    for enrollment in enrollments:
        enrollment.next_touch = pending.get(enrollment.pk)
    return enrollments


TIMELINE_STATUSES = (TouchStatus.DELIVERED, TouchStatus.DONE, TouchStatus.SKIPPED)


def contact_touchpoints(contact):
    """The contact's finished touches (delivered, done, skipped) for the timeline, by finished_at."""
    return Touchpoint.objects.filter(
        contact=contact, status__in=TIMELINE_STATUSES, finished_at__isnull=False
    ).select_related("step", "template", "finished_by")
