"""The event pipeline: totals exact after purchases and refunds, exactly once, never half-applied."""

import random
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from contacts.events import EventIn, events_record
from contacts.models import Contact, Event, EventKind, PendingEvent
from scrm import pipeline
from tests.conftest import need_service

NOW = timezone.now().replace(microsecond=0)


def purchase(contact, order, amount, days_ago=0):
    return EventIn(contact.pk, EventKind.PURCHASE, NOW - timedelta(days=days_ago), f"order:{order}",
                   Decimal(amount), order_id=order)  # fmt: skip


def refund(contact, order, amount=None, days_ago=0):
    return EventIn(contact.pk, EventKind.REFUND, NOW - timedelta(days=days_ago), f"refund:{order}",
                   None if amount is None else Decimal(amount), order_id=order)  # fmt: skip


def totals(contact):
    contact.refresh_from_db()
    return contact.order_count, contact.total_spent, contact.first_purchase_at, contact.last_purchase_at


def test_totals_after_purchases_and_a_refund_are_exact(contact):
    events_record(events=[purchase(contact, "A1", "100.10", 10), purchase(contact, "A2", "0.20", 5),
                          purchase(contact, "A3", "33.33", 1)], source="api")  # fmt: skip
    assert pipeline.process_pending_events() == 3
    assert totals(contact) == (3, Decimal("133.63"), NOW - timedelta(days=10), NOW - timedelta(days=1))
    assert contact.last_active_at == NOW - timedelta(days=1)

    events_record(events=[refund(contact, "A2")], source="api")  # no amount: the whole order
    events_record(events=[refund(contact, "A3", "3.33")], source="api")  # a partial amount
    assert pipeline.process_pending_events() == 2
    order_count, spent, *_ = totals(contact)
    assert (order_count, spent) == (2, Decimal("130.10"))  # A2 gone; A3 partly refunded stays an order


def test_purchase_and_refund_in_one_batch(contact):
    events_record(events=[purchase(contact, "B1", "50.00"), refund(contact, "B1")], source="import")
    pipeline.process_pending_events()
    assert totals(contact)[:2] == (0, Decimal("0.00"))


def test_processing_twice_changes_nothing(contact):
    (outcome,) = events_record(events=[purchase(contact, "C1", "9.99")], source="api")
    assert pipeline.process_events([outcome.event_id]) == 1
    assert pipeline.process_events([outcome.event_id]) == 0
    assert pipeline.process_pending_events() == 0
    assert totals(contact)[:2] == (1, Decimal("9.99"))


def test_replayed_key_counts_nothing_twice(contact):
    first = events_record(events=[purchase(contact, "D1", "10.00")], source="api")
    again = events_record(events=[purchase(contact, "D1", "10.00")], source="api")
    assert first[0].created and not again[0].created and again[0].event_id == first[0].event_id
    pipeline.process_pending_events()
    assert Event.objects.count() == 1 and totals(contact)[:2] == (1, Decimal("10.00"))


def test_last_active_ignores_our_own_messages_and_only_moves_forward(contact):
    Contact.objects.filter(pk=contact.pk).update(last_active_at=NOW - timedelta(days=2))
    events_record(events=[
        EventIn(contact.pk, EventKind.MESSAGE_OUT, NOW, "out-1"),
        EventIn(contact.pk, EventKind.CHECK_IN, NOW - timedelta(days=9), "old-check-in"),
    ], source="api")  # fmt: skip
    pipeline.process_pending_events()
    contact.refresh_from_db()
    assert contact.last_active_at == NOW - timedelta(days=2)


def test_a_failing_handler_leaves_the_batch_unapplied(contact, monkeypatch):
    events_record(events=[purchase(contact, "E1", "5.00")], source="api")

    def boom(ids):
        raise RuntimeError("handler failed")

    monkeypatch.setattr(pipeline, "HANDLERS", [pipeline.apply_contact_activity, boom])
    with pytest.raises(RuntimeError):
        pipeline.process_pending_events()
    assert totals(contact)[:2] == (0, Decimal("0.00"))  # the contact update rolled back with it
    assert PendingEvent.objects.count() == 1  # still owed: the claim rolled back too
    monkeypatch.setattr(pipeline, "HANDLERS", [pipeline.apply_contact_activity])
    assert pipeline.process_pending_events() == 1
    assert totals(contact)[:2] == (1, Decimal("5.00"))


def test_the_task_applies_events_on_commit(contact, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        events_record(events=[purchase(contact, "F1", "12.00")], source="api")
    assert totals(contact)[:2] == (1, Decimal("12.00"))  # eager Celery ran process_events_task
    assert not PendingEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_processing_of_one_batch_applies_it_once():
    if connection.vendor != "postgresql":
        need_service("row locks need PostgreSQL (set DATABASE_URL)")
    contact = Contact.objects.create(name="并发")
    outcomes = events_record(events=[purchase(contact, f"G{i}", "1.00") for i in range(200)], source="api")
    ids = [o.event_id for o in outcomes]
    errors = []

    def run():
        try:
            pipeline.process_events(ids)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert totals(contact)[:2] == (200, Decimal("200.00"))


def test_each_new_event_waits_in_the_inbox_until_applied_and_a_replay_adds_none(contact):
    (first,) = events_record(events=[purchase(contact, "H1", "8.00")], source="api")
    (again,) = events_record(events=[purchase(contact, "H1", "8.00")], source="api")
    assert (first.created, again.created, again.event_id) == (True, False, first.event_id)
    assert list(PendingEvent.objects.values_list("event_id", flat=True)) == [first.event_id]
    assert pipeline.process_pending_events() == 1
    assert not PendingEvent.objects.exists()
    assert totals(contact)[:2] == (1, Decimal("8.00"))


def test_an_event_deleted_before_the_pipeline_came_round_applies_nothing(contact):
    (outcome,) = events_record(events=[purchase(contact, "I1", "3.00")], source="api")
    Event.objects.filter(pk=outcome.event_id).delete()
    assert pipeline.process_pending_events() == 1  # its inbox row is claimed and gone ...
    assert not PendingEvent.objects.exists()
    assert totals(contact)[:2] == (0, Decimal("0.00"))  # ... and nothing was applied


def test_a_batch_that_changes_nothing_for_a_contact_leaves_its_row_alone(contact):
    events_record(events=[purchase(contact, "J1", "20.00", days_ago=1)], source="api")
    pipeline.process_pending_events()
    outcomes = events_record(events=[
        EventIn(contact.pk, EventKind.CONTENT_VIEW, NOW - timedelta(days=5), "old-view"),  # older than last active
        EventIn(contact.pk, EventKind.MESSAGE_OUT, NOW, "our-message"),  # not the customer's activity
    ], source="api")  # fmt: skip
    ids = [o.event_id for o in outcomes]
    assert (
        pipeline.apply_contact_activity(ids) == 0
    )  # no row rewritten (a new version costs 17 index entries)
    assert totals(contact)[:2] == (1, Decimal("20.00")) and contact.last_active_at == NOW - timedelta(days=1)

    (new_view,) = events_record(
        events=[EventIn(contact.pk, EventKind.CONTENT_VIEW, NOW, "new-view")], source="api"
    )
    assert pipeline.apply_contact_activity([new_view.event_id]) == 1
    contact.refresh_from_db()
    assert contact.last_active_at == NOW


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_over_the_same_contacts_apply_exactly_without_deadlock():
    """Production runs two workers: their batches lock shared contacts in the same (id) order."""
    if connection.vendor != "postgresql":
        need_service("row locks need PostgreSQL (set DATABASE_URL)")
    people = [Contact.objects.create(name=f"客户{i}") for i in range(40)]
    batches = []
    for b in range(4):  # every batch touches every contact, each in its own order
        order = random.Random(b).sample(people, len(people))
        outcomes = events_record(events=[purchase(p, f"K{b}-{p.pk}", "2.50") for p in order], source="api")
        batches.append([o.event_id for o in outcomes])
    errors, barrier = [], threading.Barrier(len(batches))

    def run(ids):
        try:
            barrier.wait()
            pipeline.process_events(ids)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(ids,)) for ids in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert not PendingEvent.objects.exists()
    for person in people:
        assert totals(person)[:2] == (4, Decimal("10.00"))
