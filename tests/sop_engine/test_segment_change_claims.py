"""Segment changes are consumed exactly once, even by two consumers at once (the touch drain and the 30-s sweep).

sop.triggers._claim_changes claims with FOR UPDATE SKIP LOCKED and stamps consumed_at in one statement on
PostgreSQL (UPDATE … WHERE id IN (SELECT … SKIP LOCKED) RETURNING). Two threads with their own connections
consume the same 60 "entered" changes in small batches: every change is consumed by exactly one of them, and a
segment-triggered template enrolls each customer once. Checked to fail without the lock: with the
select_for_update removed, the two consumers reported 67 changes for 60.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from contacts.models import Contact
from segments.models import Segment, SegmentChange
from sop import triggers
from sop.models import Enrollment, Trigger
from tests.conftest import need_service

from .helpers import make_template

CUSTOMERS = 60


@pytest.mark.django_db(transaction=True)
def test_two_consumers_take_each_change_once(monkeypatch):
    if connection.vendor != "postgresql":
        need_service("row locks need PostgreSQL (set DATABASE_URL)")
    monkeypatch.setattr(triggers, "SEGMENT_CHANGES_BATCH", 7)
    segment = Segment.objects.create(
        name="常客", definition={"type": "group", "match": "all", "children": []}
    )
    template = make_template(
        trigger=Trigger.SEGMENT_ENTERED, trigger_segment=segment, steps=[{"day": 0, "at": "10:00"}]
    )
    later = timezone.now() + timedelta(seconds=1)  # after the template's activation
    people = Contact.objects.bulk_create([Contact(name=f"客户{i}") for i in range(CUSTOMERS)])
    SegmentChange.objects.bulk_create(
        [
            SegmentChange(segment=segment, contact=p, change=SegmentChange.Change.ENTERED, at=later)
            for p in people
        ]
    )
    consumed, errors, barrier = [], [], threading.Barrier(2)

    def consume():
        try:
            barrier.wait()
            with transaction.atomic():
                consumed.append(triggers.segment_changes_consume())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=consume) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(consumed) == CUSTOMERS
    assert not SegmentChange.objects.filter(consumed_at__isnull=True).exists()
    assert Enrollment.objects.filter(template=template).count() == CUSTOMERS
    with transaction.atomic():
        assert triggers.segment_changes_consume() == 0  # nothing left for a third run
