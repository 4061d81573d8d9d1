"""The contact page: the customer's SOP enrollments in a card, delivered / done / skipped touches in the
timeline (through contacts.page_extensions), and the registry's rules."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from contacts.page_extensions import TimelineSource, register_timeline_source, timeline_sources
from contacts.selectors import contact_timeline
from sop.models import Enrollment, ExitReason, SkipReason, TouchStatus

from .factories import enroll, make_template, step, touch

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def history(db, contact, operator):
    now = timezone.now()
    welcome = make_template("新客欢迎", steps=3)
    birthday = make_template("生日关怀", steps=1)
    running = enroll(welcome, contact, at=now - timedelta(days=2))
    touch(running, step(welcome, 1), status=TouchStatus.DONE, sent_at=now - timedelta(days=2))
    done = running.touchpoints.get()
    done.finished_by = operator
    done.outcome = "客户回复了谢谢"
    done.save(update_fields=["finished_by", "outcome"])
    touch(running, step(welcome, 2), status=TouchStatus.SKIPPED, reason=SkipReason.QUIET_HOURS,
          due_at=now - timedelta(days=1))  # fmt: skip
    touch(running, step(welcome, 3), status=TouchStatus.SCHEDULED, due_at=now + timedelta(days=1))
    ended = enroll(
        birthday,
        contact,
        status=Enrollment.Status.EXITED,
        exit_reason=ExitReason.PURCHASE,
        at=now - timedelta(days=5),
    )
    touch(ended, step(birthday, 1), status=TouchStatus.DELIVERED, sent_at=now - timedelta(days=5))
    return welcome, birthday


@pytest.mark.parametrize("who", ["operator", "manager", "admin"])
def test_card_and_timeline(role_client, contact, history, who):
    response = role_client(who).get(reverse("contact_detail", args=[contact.pk]), **EN)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="sop-enrollments"' in html
    assert html.count('data-testid="sop-enrollment"') == 2
    assert "In progress" in html and "3. 第3步" in html  # the next step
    assert "Exited" in html and str(ExitReason.PURCHASE.label) in html
    assert html.count('data-testid="sop-touch"') == 3  # done, skipped, delivered; not the scheduled one
    assert "SOP message sent by hand" in html and "客户回复了谢谢" in html
    assert "SOP step skipped" in html and str(SkipReason.QUIET_HOURS.label) in html
    assert "SOP message delivered" in html


def test_other_operator_cannot_see_the_contact(role_client, contact, history):
    assert role_client("other").get(reverse("contact_detail", args=[contact.pk])).status_code == 404


def test_no_card_without_enrollments(role_client, contact):
    html = role_client("operator").get(reverse("contact_detail", args=[contact.pk])).content.decode()
    assert 'data-testid="sop-enrollments"' not in html


def test_timeline_merges_touches_by_time(contact, history):
    items, _more = contact_timeline(contact, before=None, size=20)
    kinds = [i.kind for i in items if i.kind == "sop_touch"]
    assert len(kinds) == 3
    times = [i.at for i in items]
    assert times == sorted(times, reverse=True)


def test_timeline_pagination_includes_touches(contact, history):
    first, more = contact_timeline(contact, before=None, size=2)
    rest, _ = contact_timeline(contact, before=more, size=20)
    seen = [(i.kind, i.obj.pk) for i in first + rest]
    assert len(seen) == len(set(seen))
    assert sum(1 for kind, _pk in seen if kind == "sop_touch") == 3


def test_timeline_page_renders_touches(role_client, contact, history):
    response = role_client("operator").get(reverse("contact_timeline", args=[contact.pk]), **EN)
    assert response.status_code == 200 and "SOP message sent by hand" in response.content.decode()


def test_registry_refuses_a_taken_rank():
    with pytest.raises(ValueError):
        register_timeline_source(TimelineSource("x", 3, lambda c: None, "created_at", "x.html"))
    with pytest.raises(ValueError):
        register_timeline_source(TimelineSource("y", 4, lambda c: None, "created_at", "y.html"))
    assert [s.name for s in timeline_sources()] == ["sop_touch"]
