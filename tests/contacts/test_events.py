"""Recording events: validation, idempotency (also under concurrency), refunds naming their order."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from contacts.events import EventIn, events_record, validate_event_fields
from contacts.models import Contact, Event, EventKind
from tests.conftest import need_service

NOW = timezone.now()


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"kind": "teleport", "amount": None}, "kind"),
        ({"kind": "purchase", "amount": None}, "amount"),
        ({"kind": "purchase", "amount": Decimal("-1")}, "amount"),
        ({"kind": "purchase", "amount": Decimal("1.234")}, "amount"),
        ({"kind": "purchase", "amount": Decimal("1e11")}, "amount"),
        ({"kind": "check_in", "amount": None, "occurred_at": NOW + timedelta(days=30)}, "occurred_at"),
        ({"kind": "check_in", "amount": None, "occurred_at": None}, "occurred_at"),
        ({"kind": "refund", "amount": None}, "order_id"),
    ],
)
def test_validation_names_the_field(kwargs, field):
    kwargs = {"occurred_at": NOW, "order_id": "", **kwargs}
    errors = validate_event_fields(**kwargs)
    assert field in errors and errors[field]


def test_a_valid_event_has_no_errors():
    assert (
        validate_event_fields(kind="purchase", occurred_at=NOW, amount=Decimal("19.90"), order_id="X1") == {}
    )


def test_outcomes_come_back_in_order_with_replays_and_errors(contact):
    events = [
        EventIn(contact.pk, EventKind.PURCHASE, NOW, "k1", Decimal("1.00"), order_id="O1"),
        EventIn(contact.pk, EventKind.REFUND, NOW, "k2", order_id="NOPE"),
        EventIn(contact.pk, EventKind.CHECK_IN, NOW, "k3"),
        EventIn(contact.pk, EventKind.CHECK_IN, NOW, "k3"),  # the same key twice in one batch
        EventIn(contact.pk, EventKind.PURCHASE, NOW, "k4", Decimal("2.00"), order_id="O1"),  # order reused
    ]
    out = events_record(events=events, source="api")
    assert [o.key for o in out] == ["k1", "k2", "k3", "k3", "k4"]
    assert out[0].created and out[2].created and not out[3].created
    assert out[3].event_id == out[2].event_id
    assert "NOPE" in out[1].error and out[1].event_id is None
    assert "O1" in out[4].error and out[4].event_id is None
    assert Event.objects.count() == 2


def test_refund_of_someone_elses_order_is_refused(contact, other_contact):
    events_record(
        events=[EventIn(contact.pk, "purchase", NOW, "p", Decimal("5"), order_id="Z9")], source="api"
    )
    (out,) = events_record(
        events=[EventIn(other_contact.pk, "refund", NOW, "r", order_id="Z9")], source="api"
    )
    assert out.error and not Event.objects.filter(kind="refund").exists()
    (out,) = events_record(
        events=[EventIn(contact.pk, "refund", NOW, "r", Decimal("6"), order_id="Z9")], source="api"
    )
    assert "5" in out.error  # more than the order


def test_payload_keeps_chinese_text(contact):
    events_record(
        events=[EventIn(contact.pk, "content_view", NOW, "cv", payload={"title": "春季新品"})], source="api"
    )
    assert Event.objects.get().payload == {"title": "春季新品"}


@pytest.mark.django_db(transaction=True)
def test_the_same_key_from_two_threads_makes_one_event():
    if connection.vendor != "postgresql":
        need_service("concurrent inserts need PostgreSQL (set DATABASE_URL)")
    contact = Contact.objects.create(name="并发")
    barrier = threading.Barrier(2)
    results = []

    def post():
        try:
            barrier.wait()
            results.extend(events_record(
                events=[EventIn(contact.pk, "purchase", NOW, "same-key", Decimal("8.80"), order_id="S1")],
                source="api",
            ))  # fmt: skip
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Event.objects.filter(idempotency_key="same-key").count() == 1
    assert sorted(r.created for r in results) == [False, True]
    assert len({r.event_id for r in results}) == 1
