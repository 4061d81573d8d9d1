"""POST /events: one or a batch, idempotency keys, per-item results, limits, bad input."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from contacts.models import Contact, Event
from scrm.pipeline import process_pending_events
from tests.conftest import need_service

from .conftest import ApiClient


def event(key, contact=None, **extra):
    body = {"idempotency_key": key, "kind": "check_in", "occurred_at": "2024-05-01T10:00:00+08:00"}
    if contact is not None:
        body["contact_id"] = contact.pk
    return {**body, **extra}


def test_one_event_created_then_replayed(api, contact):
    first = api.post("/events", event("k1", contact))
    assert first.status_code == 201
    result = first.json()["results"][0]
    assert result["status"] == "created" and result["errors"] == {}
    again = api.post("/events", event("k1", contact, kind="purchase", amount="99"))
    assert again.status_code == 200
    assert again.json()["results"][0] == {**result, "status": "duplicate"}
    assert Event.objects.count() == 1
    assert Event.objects.get().source == "api"


def test_batch_results_in_order(api, contact, other_contact):
    contact.external_userid = "wm_zs"
    contact.save()
    future = (timezone.now() + timedelta(days=30)).isoformat()
    batch = [
        event("ok-id", contact),
        event("ok-ext", external_userid="wm_zs"),
        event("ok-phone", phone="139 0013 9000"),
        event("bad-kind", contact, kind="teleport"),
        event("future", contact, occurred_at=future),
        event("nobody", external_userid="wm_nobody"),
        event("bad-phone", phone="12"),
        event("no-contact"),
        event("ok-id", contact),  # the same key again in the batch
        event("refund", contact, kind="refund", order_id="NO-SUCH-ORDER"),
    ]
    response = api.post("/events", {"events": batch})
    assert response.status_code == 200
    body = response.json()
    statuses = [(r["idempotency_key"], r["status"]) for r in body["results"]]
    assert statuses == [
        ("ok-id", "created"), ("ok-ext", "created"), ("ok-phone", "created"), ("bad-kind", "error"),
        ("future", "error"), ("nobody", "error"), ("bad-phone", "error"), ("no-contact", "error"),
        ("ok-id", "duplicate"), ("refund", "error"),
    ]  # fmt: skip
    errors = [r["errors"] for r in body["results"]]
    assert (
        set(errors[3]) == {"kind"}
        and set(errors[4]) == {"occurred_at"}
        and set(errors[5]) == {"external_userid"}
    )
    assert set(errors[6]) == {"phone"} and set(errors[7]) == {"contact_id"} and set(errors[9]) == {"order_id"}
    assert body["results"][8]["event_id"] == body["results"][0]["event_id"]
    assert (body["created"], body["duplicates"], body["errors"]) == (3, 1, 6)
    assert Event.objects.filter(contact=contact).count() == 2
    assert Event.objects.filter(contact=other_contact).count() == 1


def test_single_event_errors_are_422_with_field_paths(api, contact):
    future = (timezone.now() + timedelta(days=2)).isoformat()
    response = api.post("/events", event("x", contact, kind="teleport", occurred_at=future))
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["detail"]} == {"kind", "occurred_at"}
    assert not Event.objects.exists()


def test_wrong_types_and_malformed_json(api, contact):
    response = api.post("/events", {"events": [event("a", contact), event("b", contact, amount="lots")]})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["detail"]] == ["events.1.amount"]
    response = api.post("/events", {"events": [{"kind": 3}]})
    assert {"events.0.kind", "events.0.idempotency_key", "events.0.occurred_at"} <= {
        e["field"] for e in response.json()["detail"]
    }
    malformed = api.post("/events", '{"idempotency_key": ', raw=True)
    assert malformed.status_code == 400
    assert "not valid JSON" in malformed.json()["detail"][0]["msg"]
    assert api.post("/events", [1, 2]).status_code == 422
    assert api.post("/events", event("", contact)).status_code == 422  # empty key
    assert api.post("/events", event("k" * 129, contact)).status_code == 422
    assert not Event.objects.exists()


def test_batch_over_the_limit_is_413(api, contact, settings):
    batch = [event(f"k{i}", contact) for i in range(settings.API_EVENTS_BATCH_LIMIT + 1)]
    response = api.post("/events", {"events": batch})
    assert response.status_code == 413
    assert str(settings.API_EVENTS_BATCH_LIMIT) in response.json()["detail"]
    assert not Event.objects.exists()
    assert api.post("/events", {"events": batch[:-1]}).json()["created"] == settings.API_EVENTS_BATCH_LIMIT


def test_naive_times_are_read_in_the_server_time_zone(api, contact):
    api.post("/events", event("naive", contact, occurred_at="2024-05-01T10:00:00"))
    assert Event.objects.get().occurred_at == datetime(2024, 5, 1, 2, 0, tzinfo=UTC)  # read as Asia/Shanghai


def test_purchases_and_refund_reach_the_totals_once(api, contact):
    batch = [
        event("p1", contact, kind="purchase", amount="100.00", order_id="A1"),
        event("p2", contact, kind="purchase", amount="50.50", order_id="A2"),
    ]
    api.post("/events", {"events": batch})
    api.post("/events", {"events": batch})  # replay: nothing twice
    api.post("/events", event("r1", contact, kind="refund", order_id="A2"))
    process_pending_events()
    contact.refresh_from_db()
    assert contact.order_count == 1
    assert contact.total_spent == Decimal("100.00")


def _post_from_thread(live_key: str, body: dict, results: list, barrier: threading.Barrier):
    client = ApiClient(Client(), live_key)
    barrier.wait()
    try:
        results.append(client.post("/events", body).json()["results"][0])
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_same_key_posted_concurrently_makes_one_event(admin_user, contact):
    if connection.vendor != "postgresql":
        need_service("concurrent idempotency needs PostgreSQL (set DATABASE_URL)")
    from accounts.api_keys import api_key_create

    _key, raw = api_key_create(actor=admin_user, name="race", scopes=["events:write"])
    for round_ in range(5):
        body = event(f"race-{round_}", contact, kind="purchase", amount="10", order_id=f"R{round_}")
        results: list = []
        barrier = threading.Barrier(2)
        threads = [
            threading.Thread(target=_post_from_thread, args=(raw, body, results, barrier)) for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(r["status"] for r in results) == ["created", "duplicate"]
        assert results[0]["event_id"] == results[1]["event_id"]
        assert Event.objects.filter(idempotency_key=f"race-{round_}").count() == 1
    process_pending_events()
    assert Contact.objects.get(pk=contact.pk).order_count == 5
