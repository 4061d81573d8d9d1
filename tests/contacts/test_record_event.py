"""Recording an order, refund or visit from the contact page (the browser's door into the pipeline)."""

from decimal import Decimal

import pytest

from contacts.models import Event
from scrm.pipeline import process_pending_events

WHEN = "2026-03-01T10:30"


def post(client, contact, key="k1", **data):
    payload = {
        "kind": "purchase",
        "occurred_at": WHEN,
        "amount": "88.80",
        "order_id": "M-1",
        "key": key,
        **data,
    }
    return client.post(f"/contacts/{contact.pk}/events/", payload, HTTP_HX_REQUEST="true")


@pytest.mark.parametrize("role", ["operator", "manager", "admin"])
def test_roles_that_see_the_contact_record_a_purchase(role_client, contact, role):
    response = post(role_client(role), contact)
    assert response.status_code == 200 and "timeline-changed" in response["HX-Trigger"]
    event = Event.objects.get()
    assert (event.kind, event.amount, event.order_id, event.source) == (
        "purchase",
        Decimal("88.80"),
        "M-1",
        "ui",
    )
    process_pending_events()
    contact.refresh_from_db()
    assert (contact.order_count, contact.total_spent) == (1, Decimal("88.80"))


def test_other_operator_gets_404_and_anonymous_goes_to_login(role_client, contact):
    assert post(role_client("other"), contact).status_code == 404
    assert post(role_client("anon"), contact).status_code == 302
    assert not Event.objects.exists()


def test_a_double_submit_records_once(role_client, contact):
    c = role_client("operator")
    post(c, contact, key="same")
    post(c, contact, key="same")
    assert Event.objects.count() == 1


@pytest.mark.parametrize(
    "data, message",
    [
        ({"amount": ""}, "必须填写金额"),
        ({"amount": "-5"}, "不能为负"),
        ({"kind": "refund", "order_id": "NOPE", "amount": ""}, "NOPE"),
        ({"occurred_at": "2099-01-01T00:00"}, "不能晚于当前时间"),
    ],
)
def test_bad_input_is_explained_and_nothing_recorded(role_client, contact, data, message):
    response = post(role_client("operator"), contact, **data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Event.objects.exists()


def test_the_form_is_on_the_contact_page(role_client, contact):
    body = role_client("operator").get(f"/contacts/{contact.pk}/").content.decode()
    assert 'id="record-event"' in body and 'name="key"' in body
