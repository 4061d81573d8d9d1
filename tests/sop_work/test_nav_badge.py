"""The SOP dropdown in the navigation and its overdue badge (one COUNT, none for anonymous users)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from sop.selectors import day_bounds, overdue_count

from .factories import make_template, open_task


@pytest.fixture
def tasks(db, contact, other_contact, operator):
    template = make_template()
    start, _end = day_bounds(operator)
    open_task(template, contact, position=1, due_at=start - timedelta(days=2))
    open_task(template, contact, position=2, due_at=start - timedelta(minutes=5))
    open_task(template, other_contact, position=1, due_at=start - timedelta(days=1))  # the other's
    third = make_template("生日关怀", steps=1)
    open_task(third, contact, due_at=start + timedelta(minutes=5))  # today: not overdue
    return template


def test_overdue_count(tasks, operator, other_operator, manager):
    assert overdue_count(operator) == 2
    assert overdue_count(other_operator) == 1
    assert overdue_count(manager) == 0


def test_badge_in_the_nav(role_client, tasks):
    html = role_client("operator").get(reverse("home")).content.decode()
    assert 'data-testid="nav-sop"' in html and 'data-testid="nav-sop-inbox"' in html
    assert 'data-testid="sop-badge">2</span>' in html
    assert 'data-testid="nav-sop-team"' not in html and 'data-testid="nav-sop-results"' not in html


def test_badge_is_one_query(client, tasks, operator):
    client.force_login(operator)
    from sop.context_processors import sop_nav

    class Request:
        user = operator

    badge = sop_nav(Request())["sop_overdue_count"]
    with CaptureQueriesContext(connection) as queries:
        assert badge() == 2 and badge() == 2
    assert len(queries) == 1


def test_anonymous_gets_no_count(rf, db):
    from django.contrib.auth.models import AnonymousUser

    from sop.context_processors import sop_nav

    request = rf.get("/")
    request.user = AnonymousUser()
    assert sop_nav(request) == {"sop_overdue_count": 0}


@pytest.mark.parametrize("who", ["manager", "admin"])
def test_managers_see_team_and_results(role_client, db, who):
    html = role_client(who).get(reverse("home")).content.decode()
    assert 'data-testid="nav-sop-team"' in html and 'data-testid="nav-sop-results"' in html


def test_badge_partial(role_client, tasks):
    response = role_client("operator").get(reverse("sop_inbox_badge"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and ">2</span>" in response.content.decode()


def test_badge_partial_zero_is_hidden(role_client, db):
    html = role_client("admin").get(reverse("sop_inbox_badge")).content.decode()
    assert "d-none" in html
