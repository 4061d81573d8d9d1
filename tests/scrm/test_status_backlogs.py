"""The status page's "Work waiting" cards: the pipeline's inbox and the contacts owed a segment refresh."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from contacts.events import EventIn, events_record
from contacts.models import ContactTouch, EventKind
from contacts.touches import contacts_touched
from scrm import pipeline, selectors
from scrm.touches import drain_contact_touches

URL = reverse("system_status")
NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"


def backlog_card(html: str, name: str) -> tuple[bool, str]:
    match = re.search(
        rf'data-backlog="{name}" data-ok="(true|false)"(.*?)(?=data-backlog="|</section>)', html, re.S
    )
    assert match, f"no {name} backlog card"
    return match.group(1) == "true", match.group(2)


def waiting(html: str, name: str) -> int:
    return int(re.search(rf'data-testid="backlog-{name}">(\d+)<', html).group(1))


def problems(html: str) -> int:
    match = re.search(r"(\d+) checks? needs? attention", html)
    return int(match.group(1)) if match else 0


def record(contact, key: str):
    return events_record(events=[EventIn(contact.pk, EventKind.PURCHASE, NOW, key, Decimal("9.90"), order_id=key)],
                         source="api")  # fmt: skip


def test_nothing_waiting_is_on_time(role_client):
    html = role_client("admin").get(URL).content.decode()
    for name in ("pipeline", "segments"):
        ok, body = backlog_card(html, name)
        assert ok and waiting(html, name) == 0 and "Nothing waiting." in body


def test_waiting_work_is_counted_and_turns_late_then_clears(role_client, contact):
    client = role_client("admin")
    with time_machine.travel(NOW, tick=False) as traveller:
        record(contact, "W1")
        record(contact, "W2")
        contacts_touched([contact.pk])
        traveller.shift(timedelta(seconds=30))
        html = client.get(
            URL, headers={"HX-Request": "true"}
        ).content.decode()  # the 15-s refresh shows it too
        assert (waiting(html, "pipeline"), waiting(html, "segments")) == (2, 1)
        ok, body = backlog_card(html, "pipeline")
        assert ok and "The oldest has waited 30 seconds." in body
        on_time_problems = problems(html)  # no heartbeats in this test: worker and beat are red

        traveller.shift(timedelta(seconds=selectors.BACKLOG_LATE_SECONDS))
        html = client.get(URL).content.decode()
        for name in ("pipeline", "segments"):
            ok, body = backlog_card(html, name)
            assert not ok and "Late" in body
        assert "have not been applied" in backlog_card(html, "pipeline")[1]
        assert problems(html) == on_time_problems + 2  # late work counts in the summary

        assert pipeline.process_pending_events() == 2  # the pipeline hands the contact to the drain too
        assert ContactTouch.objects.count() == 2
        drain_contact_touches()
        html = client.get(URL).content.decode()
        assert (waiting(html, "pipeline"), waiting(html, "segments")) == (0, 0)
        assert backlog_card(html, "pipeline")[0] and backlog_card(html, "segments")[0]


def test_the_cards_are_in_chinese_for_a_chinese_admin(role_client):
    client = role_client("admin")
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "zh-hans"
    html = client.get(URL).content.decode()
    assert "等待处理的工作" in html and "没有等待的工作。" in html
