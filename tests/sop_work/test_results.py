"""SOP results against hand-computed numbers: enrollments by status, per step planned / waiting / delivered /
done / skipped by reason / failed, replies and purchases inside and outside the results window; the pages."""

import json
from datetime import timedelta
from itertools import count

import pytest
from django.urls import reverse
from django.utils import timezone

from contacts.models import Contact, Event, EventKind, EventSource
from sop.models import Enrollment, ExitReason, SkipReason, TouchStatus
from sop.selectors import results_overview, template_results

from .factories import enroll, make_template, step, touch

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
_keys = count()


def event(contact, kind, at):
    return Event.objects.create(
        contact=contact, kind=kind, occurred_at=at, source=EventSource.API, idempotency_key=f"k{next(_keys)}"
    )


@pytest.fixture
def t0():
    return timezone.now() - timedelta(days=10)


@pytest.fixture
def world(db, operator, t0):
    """Step 1: A done (replied day 2; bought day 8, outside 7 days), B delivered (bought day 6; a message the
    hour before the touch), C skipped by the cap, D skipped (opted out), E issued then skipped by the operator
    (replied right after). Step 2: A open, B delivered on day 3 (B's day-6 purchase is 3 days later), C
    scheduled, D failed."""
    template = make_template("新客欢迎", steps=2, attribution_days=7)
    s1, s2 = step(template, 1), step(template, 2)
    people = {name: Contact.objects.create(name=name, owner=operator) for name in "ABCDE"}
    e = {
        "A": enroll(template, people["A"]),
        "B": enroll(template, people["B"], status=Enrollment.Status.COMPLETED),
        "C": enroll(template, people["C"], status=Enrollment.Status.EXITED, exit_reason=ExitReason.PURCHASE),
        "D": enroll(template, people["D"], status=Enrollment.Status.EXITED, exit_reason=ExitReason.REPLY),
        "E": enroll(template, people["E"]),
    }
    touch(e["A"], s1, status=TouchStatus.DONE, sent_at=t0)
    touch(e["B"], s1, status=TouchStatus.DELIVERED, sent_at=t0)
    touch(e["C"], s1, status=TouchStatus.SKIPPED, reason=SkipReason.CAP, due_at=t0)
    touch(e["D"], s1, status=TouchStatus.SKIPPED, reason=SkipReason.OPTED_OUT, due_at=t0)
    touch(e["E"], s1, status=TouchStatus.SKIPPED, reason=SkipReason.OPERATOR, sent_at=t0)
    touch(e["A"], s2, status=TouchStatus.OPEN, sent_at=t0 + timedelta(days=1))
    touch(e["B"], s2, status=TouchStatus.DELIVERED, sent_at=t0 + timedelta(days=3))
    touch(e["C"], s2, status=TouchStatus.SCHEDULED, due_at=t0 + timedelta(days=20))
    touch(e["D"], s2, status=TouchStatus.FAILED, due_at=t0 + timedelta(days=1))
    event(people["A"], EventKind.MESSAGE_IN, t0 + timedelta(days=2))
    event(people["A"], EventKind.PURCHASE, t0 + timedelta(days=8))
    event(people["B"], EventKind.PURCHASE, t0 + timedelta(days=6))
    event(people["B"], EventKind.MESSAGE_IN, t0 - timedelta(hours=1))
    event(people["C"], EventKind.PURCHASE, t0 + timedelta(days=1))  # never reached: not the touch's result
    event(people["E"], EventKind.MESSAGE_IN, t0 + timedelta(hours=1))  # skipped touch: not counted
    return template


def test_headline(world):
    h = results_overview([world])[world.pk]
    assert (h["enrolled"], h["active"], h["completed"], h["exited"]) == (5, 2, 1, 2)
    assert (h["planned"], h["waiting"], h["delivered"], h["done"]) == (9, 2, 3, 1)
    assert (h["skipped"], h["failed"], h["replied"], h["purchased"]) == (3, 1, 1, 2)
    assert h["reply_rate"] == 33.3 and h["purchase_rate"] == 66.7


def test_per_step(world):
    data = template_results(world)
    first, second = data["steps"]
    assert {k: first[k] for k in ("planned", "waiting", "delivered", "done", "skipped", "failed")} == {
        "planned": 5, "waiting": 0, "delivered": 2, "done": 1, "skipped": 3, "failed": 0}  # fmt: skip
    assert (first["replied"], first["purchased"]) == (1, 1)
    assert sorted((str(label), n) for label, n in first["skipped_by"]) == sorted(
        [
            (str(SkipReason.CAP.label), 1),
            (str(SkipReason.OPTED_OUT.label), 1),
            (str(SkipReason.OPERATOR.label), 1),
        ]
    )
    assert {k: second[k] for k in ("planned", "waiting", "delivered", "done", "skipped", "failed")} == {
        "planned": 4, "waiting": 2, "delivered": 1, "done": 0, "skipped": 0, "failed": 1}  # fmt: skip
    assert (second["replied"], second["purchased"]) == (0, 1)
    assert sorted((str(label), n) for label, n in data["exits"]) == sorted(
        [(str(ExitReason.PURCHASE.label), 1), (str(ExitReason.REPLY.label), 1)]
    )


def test_window_edges(db, operator, t0):
    """A reply exactly N days after counts; a second later does not; each template uses its own window."""
    wide = make_template("七天", steps=1, attribution_days=7)
    narrow = make_template("一天", steps=1, attribution_days=1)
    people = [Contact.objects.create(name=f"c{i}", owner=operator) for i in range(3)]
    for template in (wide, narrow):
        for person in people:
            touch(enroll(template, person), step(template), status=TouchStatus.DELIVERED, sent_at=t0)
    event(people[0], EventKind.MESSAGE_IN, t0 + timedelta(days=7))
    event(people[1], EventKind.MESSAGE_IN, t0 + timedelta(days=7, seconds=1))
    event(people[2], EventKind.MESSAGE_IN, t0 + timedelta(hours=23))
    numbers = results_overview([wide, narrow])
    assert numbers[wide.pk]["replied"] == 2
    assert numbers[narrow.pk]["replied"] == 1


def test_empty_template(db):
    template = make_template("空", steps=1)
    h = results_overview([template])[template.pk]
    assert h["enrolled"] == 0 and h["reply_rate"] is None
    assert template_results(template)["steps"][0]["planned"] == 0


# --- pages ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["operator", "other"])
def test_operators_get_404(role_client, world, who):
    client = role_client(who)
    assert client.get(reverse("sop_results")).status_code == 404
    assert client.get(reverse("sop_results_detail", args=[world.pk])).status_code == 404


@pytest.mark.parametrize("who", ["manager", "admin"])
def test_results_list(role_client, world, who):
    response = role_client(who).get(reverse("sop_results"), **EN)
    assert response.status_code == 200
    html = response.content.decode()
    assert "新客欢迎" in html and reverse("sop_results_detail", args=[world.pk]) in html
    assert "7 days" in html


@pytest.mark.parametrize("who", ["manager", "admin"])
def test_results_detail(role_client, world, who):
    response = role_client(who).get(reverse("sop_results_detail", args=[world.pk]), **EN)
    assert response.status_code == 200
    html = response.content.decode()
    assert "within 7 days after the touch" in html
    assert 'data-chart="sop_funnel"' in html and "echarts.min.js" in html
    chart = response.context["chart"]
    assert [p["value"] for p in chart["funnel"]] == [5, 2, 1]
    assert json.dumps(chart["funnel"][0]["name"]) in html or "sop-funnel-data" in html
    assert str(SkipReason.CAP.label) in html and str(ExitReason.PURCHASE.label) in html


def test_unknown_template_is_404(role_client, db):
    assert role_client("manager").get(reverse("sop_results_detail", args=[999999])).status_code == 404
