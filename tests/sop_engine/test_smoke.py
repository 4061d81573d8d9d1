from datetime import datetime
from zoneinfo import ZoneInfo

import time_machine

from sop.dispatch import dispatch_due
from sop.models import Delivery, Enrollment, Touchpoint, TouchStatus

from .helpers import enroll, make_template

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_a_task_opens_in_the_owners_inbox_at_its_time(contact, operator):
    with time_machine.travel(datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI), tick=False):
        template = make_template(steps=[{"day": 0, "at": "10:00"}, {"day": 1, "at": "10:00"}])
        assert enroll(template, contact) == 1
        first = Touchpoint.objects.get()
        assert first.due_at == datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
        assert dispatch_due().claimed == 0
    with time_machine.travel(datetime(2026, 12, 1, 10, 0, 30, tzinfo=SHANGHAI), tick=False):
        stats = dispatch_due()
    assert stats.issued == 1
    first.refresh_from_db()
    assert first.status == TouchStatus.OPEN and first.assignee == operator
    assert first.rendered == f"{contact.name}，第 1 步"
    assert Delivery.objects.filter(touchpoint=first, status="ok").count() == 1
    second = Touchpoint.objects.exclude(pk=first.pk).get()
    assert second.due_at == datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI)
    with time_machine.travel(datetime(2026, 12, 2, 10, 1, tzinfo=SHANGHAI), tick=False):
        assert dispatch_due().issued == 1
    assert Enrollment.objects.get().status == Enrollment.Status.COMPLETED
