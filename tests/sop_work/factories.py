"""SOP rows made directly with the ORM, in whatever state a test needs (the dispatcher is not involved)."""

from datetime import datetime, timedelta

from django.utils import timezone

from sop.models import Enrollment, SopStep, SopTemplate, Touchpoint, TouchStatus


def make_template(
    name: str = "新客欢迎", *, steps: int = 2, attribution_days: int = 7, **extra
) -> SopTemplate:
    template = SopTemplate.objects.create(name=name, active=True, attribution_days=attribution_days, **extra)
    for position in range(1, steps + 1):
        SopStep.objects.create(
            template=template,
            position=position,
            name=f"第{position}步",
            content=f"{{{{ contact.name }}}}您好，这是第{position}条消息",
        )
    return template


def step(template: SopTemplate, position: int = 1) -> SopStep:
    return template.steps.get(position=position)


def enroll(template: SopTemplate, contact, *, status=Enrollment.Status.ACTIVE, exit_reason="", at=None):
    at = at or timezone.now() - timedelta(days=1)
    ended = None if status == Enrollment.Status.ACTIVE else at + timedelta(hours=1)
    return Enrollment.objects.create(
        template=template,
        contact=contact,
        status=status,
        trigger_key=f"test:{Enrollment.objects.count()}",
        enrolled_at=at,
        ended_at=ended,
        exit_reason=exit_reason,
    )


def touch(
    enrollment: Enrollment,
    sop_step: SopStep,
    *,
    status: str = TouchStatus.OPEN,
    due_at: datetime | None = None,
    assignee=None,
    sent_at: datetime | None = None,
    reason: str = "",
    rendered: str = "",
    finished_at: datetime | None = None,
) -> Touchpoint:
    due_at = due_at or timezone.now()
    if sent_at is None and status in (TouchStatus.OPEN, TouchStatus.DELIVERED, TouchStatus.DONE):
        sent_at = due_at
    finished = status in (TouchStatus.DELIVERED, TouchStatus.DONE, TouchStatus.SKIPPED, TouchStatus.FAILED)
    if finished and finished_at is None:
        finished_at = sent_at or due_at
    return Touchpoint.objects.create(
        enrollment=enrollment,
        step=sop_step,
        contact=enrollment.contact,
        template=enrollment.template,
        status=status,
        due_at=due_at,
        planned_at=due_at,
        assignee=assignee if assignee is not None else getattr(enrollment.contact, "owner", None),
        rendered=rendered,
        sent_at=sent_at,
        reason=reason,
        finished_at=finished_at,
    )


def open_task(template, contact, *, position: int = 1, due_at=None, assignee=None, rendered="") -> Touchpoint:
    """An open task in the inbox of `assignee` (default: the contact's owner)."""
    enrollment = Enrollment.objects.filter(template=template, contact=contact).first() or enroll(
        template, contact
    )
    return touch(enrollment, step(template, position), due_at=due_at, assignee=assignee, rendered=rendered)
