"""The overview: every role gets it, each sees only its own scope's numbers, the weekly chart is right."""

import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from contacts.models import Contact, Source
from scrm import selectors

URL = reverse("home")
# A Thursday. In Asia/Shanghai (UTC+8) its week starts Monday 2025-04-28.
NOW = datetime(2025, 5, 1, 4, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def english_and_fresh_cache(client):
    """English text for assertions; no overview cached by an earlier test (or an earlier run, with Redis)."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    cache.clear()
    yield
    cache.clear()


def chart_data(response) -> dict:
    match = re.search(
        r'<script id="overview-chart-data" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    assert match, "no chart data"
    return json.loads(match.group(1))


def figures(response) -> dict[str, int]:
    return {card["key"]: card["figure"].value for card in response.context["stat_cards"]}


def add(name, owner, **fields) -> Contact:
    return Contact.objects.create(name=name, owner=owner, **fields)


@pytest.fixture
def scoped_contacts(operator, other_operator, manager, admin_user):
    """Operator owns 2, the other operator 3, the manager 1, the admin (not in the team) 1, the pool 1."""
    now = timezone.now()
    add("o1", operator, joined_at=now - timedelta(days=2), last_active_at=now - timedelta(days=1))
    add("o2", operator, joined_at=now - timedelta(days=40), opted_out=True, opted_out_at=now)
    add("x1", other_operator, joined_at=now - timedelta(days=1))
    add("x2", other_operator, joined_at=now - timedelta(days=3), last_active_at=now - timedelta(days=20))
    add("x3", other_operator, joined_at=now - timedelta(days=90), last_active_at=now - timedelta(days=2))
    add("m1", manager, source=Source.STORE)
    add("a1", admin_user, source=Source.STORE)
    add("pool", None, source=Source.API, opted_out=True, opted_out_at=now)


@pytest.mark.parametrize("role", ["operator", "other", "manager", "admin"])
def test_every_role_gets_the_overview(role_client, role):
    response = role_client(role).get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Overview" in html
    assert "vendor/echarts/echarts.min.js" in html and "js/charts.js" in html
    assert f'href="{reverse("contact_list")}?inactive_days=15"' in html
    assert f'href="{reverse("contact_create")}"' in html


def test_anonymous_is_sent_to_login(role_client):
    response = role_client("anon").get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        # total, new in 7 days, inactive > 15 days (or never active), opted out
        ("operator", {"total": 2, "new": 1, "inactive": 1, "opted_out": 1}),
        ("other", {"total": 3, "new": 2, "inactive": 2, "opted_out": 0}),
        # The team (both operators and the manager) and the unassigned pool, not the admin's contact.
        ("manager", {"total": 7, "new": 5, "inactive": 5, "opted_out": 2}),
        ("admin", {"total": 8, "new": 6, "inactive": 6, "opted_out": 2}),
    ],
)
def test_each_role_sees_its_own_scope(role_client, scoped_contacts, role, expected):
    response = role_client(role).get(URL)
    assert figures(response) == expected


def test_operator_sources_exclude_other_operators_contacts(role_client, scoped_contacts):
    items = chart_data(role_client("operator").get(URL))["sources"]["items"]
    assert [(item["code"], item["count"]) for item in items] == [("friend", 2)]
    assert items[0]["url"] == f"{reverse('contact_list')}?source=friend"
    admin_items = chart_data(role_client("admin").get(URL))["sources"]["items"]
    assert [(item["code"], item["count"]) for item in admin_items] == [
        ("friend", 5),
        ("store", 2),
        ("api", 1),
    ]


def test_cards_show_numbers_and_link_to_filtered_lists(role_client, scoped_contacts):
    html = role_client("admin").get(URL).content.decode()
    assert re.search(r'data-stat="total".*?data-value="8"', html, re.S)
    assert f"{reverse('contact_list')}?opted_out=yes" in html


@time_machine.travel(NOW, tick=False)
def test_weekly_chart_counts_by_week_in_the_users_zone(role_client, operator):
    # Monday 2025-04-28 00:00 in Shanghai is Sunday 2025-04-27 16:00 UTC.
    joined = [
        datetime(2025, 4, 27, 15, 59, tzinfo=UTC),  # Sunday 23:59 Shanghai: week of 04-21
        datetime(2025, 4, 27, 16, 0, tzinfo=UTC),  # Monday 00:00 Shanghai: week of 04-28
        datetime(2025, 4, 30, 9, 0, tzinfo=UTC),  # week of 04-28
        datetime(2025, 2, 10, 1, 0, tzinfo=UTC),  # Monday 09:00 Shanghai: the oldest week shown
        datetime(2025, 2, 9, 15, 0, tzinfo=UTC),  # Sunday 23:00 Shanghai: before the 12 weeks
    ]
    for n, at in enumerate(joined):
        add(f"c{n}", operator, joined_at=at)
    weeks = chart_data(role_client("operator").get(URL))["weekly"]["weeks"]
    assert len(weeks) == 12
    assert weeks[0]["start"] == "2025-02-10" and weeks[-1]["start"] == "2025-04-28"
    counts = {week["start"]: week["count"] for week in weeks}
    assert counts["2025-02-10"] == 1
    assert counts["2025-04-21"] == 1
    assert counts["2025-04-28"] == 2
    assert sum(counts.values()) == 4
    assert [week["start"] for week in weeks] == [
        (date(2025, 2, 10) + timedelta(weeks=n)).isoformat() for n in range(12)
    ]


@time_machine.travel(NOW, tick=False)
def test_weeks_follow_another_users_zone(role_client, operator):
    operator.time_zone = "America/Los_Angeles"  # UTC-7 in spring
    operator.save(update_fields=["time_zone"])
    add("late-sunday", operator, joined_at=datetime(2025, 4, 28, 5, 0, tzinfo=UTC))  # Sunday 22:00 in LA
    weeks = chart_data(role_client("operator").get(URL))["weekly"]["weeks"]
    counts = {week["start"]: week["count"] for week in weeks}
    assert weeks[-1]["start"] == "2025-04-28"  # Wednesday 2025-04-30 21:00 in LA
    assert counts["2025-04-21"] == 1 and counts["2025-04-28"] == 0


def test_chart_data_carries_labels_in_the_users_language(role_client):
    client = role_client("operator")
    english = chart_data(client.get(URL))
    chinese = chart_data(client.get(URL, headers={"Accept-Language": "zh-hans"}))
    assert english["weekly"]["series"] == "New contacts"
    assert set(english) == set(chinese) == {"weekly", "sources"}


def test_overview_is_cached_per_user(role_client, operator, other_operator, scoped_contacts):
    client = role_client("operator")
    assert figures(client.get(URL))["total"] == 2
    add("o3", operator)
    assert figures(client.get(URL))["total"] == 2  # cached for five minutes
    with CaptureQueriesContext(connection) as queries:
        client.get(URL)
    assert not any('"contacts_contact"' in q["sql"] for q in queries.captured_queries)
    assert figures(role_client("other").get(URL))["total"] == 3  # a different user, a different entry
    cache.clear()
    assert figures(role_client("operator").get(URL))["total"] == 3


def test_counts_above_the_cap_say_at_least(operator, settings):
    settings.CONTACT_COUNT_CAP = 3
    for n in range(5):
        add(f"c{n}", operator)
    overview = selectors.compute_overview(operator, tz=timezone.get_current_timezone())
    assert overview.total == selectors.Figure(3, exact=False, at_least=True)
    assert overview.inactive == selectors.Figure(3, exact=False, at_least=True)
    assert overview.new_recent.value == 5


def test_an_admin_total_is_the_planner_estimate_on_postgresql(admin_user, settings):
    if connection.vendor != "postgresql":
        pytest.skip("the planner estimate is PostgreSQL's")
    settings.CONTACT_COUNT_CAP = 3
    for n in range(6):
        add(f"c{n}", None, last_active_at=timezone.now())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE contacts_contact")
    overview = selectors.compute_overview(admin_user, tz=timezone.get_current_timezone())
    assert overview.total == selectors.Figure(6, exact=False, at_least=False)  # shown as "≈ 6"
    assert overview.inactive == selectors.Figure(0, exact=False, at_least=False)


def test_a_user_without_a_role_sees_zeros(client, django_user_model, scoped_contacts):
    user = django_user_model.objects.create_user(username="nobody", password="pw-for-tests-1")
    client.force_login(user)
    response = client.get(URL)
    assert response.status_code == 200
    assert figures(response) == {"total": 0, "new": 0, "inactive": 0, "opted_out": 0}
    assert chart_data(response)["sources"]["items"] == []
