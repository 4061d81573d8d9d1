"""Building SOP templates and enrollments for the engine's tests."""

from datetime import time

from django.utils import timezone

from sop.enrollment import enrollments_start, pairs_source
from sop.models import OffsetKind, SopStep, SopTemplate


def make_template(name="新客欢迎", steps=(), *, active=True, **fields) -> SopTemplate:
    """steps: dicts of SopStep fields; a step is "day N at HH:MM" unless it says hours=…"""
    template = SopTemplate.objects.create(
        name=name, active=active, activated_at=timezone.now() if active else None, **fields
    )
    for position, spec in enumerate(steps, start=1):
        spec = dict(spec)
        if "hours" in spec:
            spec.update(offset_kind=OffsetKind.HOURS_AFTER, offset_hours=spec.pop("hours"))
        if "day" in spec:
            spec["offset_days"] = spec.pop("day")
        if "at" in spec:
            spec["offset_time"] = time.fromisoformat(spec.pop("at"))
        spec.setdefault("name", f"step {position}")
        spec.setdefault("content", f"{{{{ contact.name }}}}，第 {position} 步")
        SopStep.objects.create(template=template, position=position, **spec)
    return template


def enroll(template, *contacts, key="manual:test") -> int:
    return enrollments_start(template=template, source=pairs_source([(c.pk, key) for c in contacts]))
