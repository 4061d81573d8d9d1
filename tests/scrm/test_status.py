"""The admins' system status page: who may see it, green and red, and never a 500 when a service is down."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import OperationalError, connection
from django.urls import reverse

from scrm import selectors
from scrm.models import Heartbeat
from tests.conftest import need_service

URL = reverse("system_status")
NOW = datetime(2025, 5, 1, 12, 0, 0, tzinfo=UTC)
CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture(autouse=True)
def english(client):
    """Assertions read the English text; zh-hans is the default language."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"


def card(html: str, name: str) -> str:
    """The HTML of one status card, from its opening tag to the next card."""
    match = re.search(
        rf'data-check="{name}" data-ok="(true|false)".*?(?=data-check="|</section>)', html, re.S
    )
    assert match, f"no {name} card"
    return match.group(0)


def card_ok(html: str, name: str) -> bool:
    return card(html, name).startswith(f'data-check="{name}" data-ok="true"')


@pytest.mark.parametrize(
    ("role", "expected"), [("anon", 302), ("operator", 404), ("other", 404), ("manager", 404), ("admin", 200)]
)
def test_only_admins_see_the_status_page(role_client, role, expected):
    response = role_client(role).get(URL)
    assert response.status_code == expected
    if role == "anon":
        assert response["Location"].startswith(reverse("login"))


def test_htmx_refresh_returns_only_the_cards(role_client):
    response = role_client("admin").get(URL, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="status-cards"')
    assert 'hx-trigger="every 15s"' in html
    assert "<html" not in html
    assert "Beat schedule" not in html


def test_htmx_refresh_is_admin_only(role_client):
    assert role_client("manager").get(URL, headers={"HX-Request": "true"}).status_code == 404


def test_page_lists_queues_and_beat_schedule(role_client):
    html = role_client("admin").get(URL).content.decode()
    for queue in ("default", "dispatch", "bulk"):
        assert f'data-queue="{queue}"' in html
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert f'data-schedule="{name}"' in html
        assert entry["task"] in html


def test_database_check_is_green_with_vendor_and_latency(db):
    check = selectors.check_database()
    assert check.ok and check.state == "ok"
    assert check.latency_ms is not None and check.latency_ms >= 0
    assert {"postgresql": "PostgreSQL", "sqlite": "SQLite"}[connection.vendor] in check.vendor


@pytest.mark.django_db
def test_database_down_makes_red_checks_not_exceptions(monkeypatch):
    def broken_cursor(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    checks = {check.name: check for check in selectors.system_checks()}
    assert not checks["database"].ok and "connection refused" in checks["database"].error
    assert not checks["worker"].ok and checks["worker"].state == "down"
    assert not checks["beat"].ok and checks["beat"].state == "down"


@time_machine.travel(NOW, tick=False)
def test_fresh_heartbeats_are_green(role_client):
    Heartbeat.objects.create(
        name=Heartbeat.WORKER, seen_at=NOW - timedelta(seconds=42), detail="worker-host-1"
    )
    Heartbeat.objects.create(name=Heartbeat.BEAT, seen_at=NOW - timedelta(seconds=5))
    html = role_client("admin").get(URL).content.decode()
    assert card_ok(html, "worker")
    assert "Last seen 42 seconds ago" in card(html, "worker")
    assert "worker-host-1" in card(html, "worker")
    assert card_ok(html, "beat")
    assert "Last seen 5 seconds ago" in card(html, "beat")


def test_heartbeat_turns_red_when_stale(role_client):
    with time_machine.travel(NOW, tick=False) as traveller:
        Heartbeat.objects.create(name=Heartbeat.WORKER, seen_at=NOW, detail="worker-host-1")
        client = role_client("admin")
        traveller.shift(timedelta(seconds=settings.HEARTBEAT_STALE_AFTER_SECONDS))
        assert card_ok(client.get(URL).content.decode(), "worker")
        traveller.shift(timedelta(seconds=1))
        html = client.get(URL).content.decode()
        assert not card_ok(html, "worker")
        assert "No heartbeat in the last" in card(html, "worker")
        traveller.shift(timedelta(hours=2))
        assert "Last seen 2\xa0hours" in card(client.get(URL).content.decode(), "worker")


@time_machine.travel(NOW, tick=False)
def test_missing_heartbeats_are_red(role_client):
    html = role_client("admin").get(URL).content.decode()
    assert not card_ok(html, "worker") and "Never seen" in card(html, "worker")
    assert not card_ok(html, "beat") and "Never seen" in card(html, "beat")
    assert "checks need attention" in html


@time_machine.travel(NOW, tick=False)
def test_times_are_shown_in_the_users_zone(role_client, admin_user):
    admin_user.time_zone = "America/New_York"
    admin_user.save(update_fields=["time_zone"])
    Heartbeat.objects.create(name=Heartbeat.WORKER, seen_at=NOW - timedelta(seconds=30), detail="h")
    html = role_client("admin").get(URL).content.decode()
    assert "2025-05-01 07:59:30" in card(html, "worker")  # 11:59:30 UTC is 07:59:30 EDT
    assert "America/New_York" in html


def test_redis_down_is_red_not_a_500(role_client, settings):
    settings.REDIS_URL = CLOSED_PORT_REDIS
    response = role_client("admin").get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert not card_ok(html, "redis")
    assert "Not reachable" in card(html, "redis")
    assert 'data-testid="redis-error"' in card(html, "redis")
    assert "127.0.0.1:1" in card(html, "redis")


def test_redis_not_configured_is_the_embedded_broker(role_client, settings):
    settings.REDIS_URL = ""
    html = role_client("admin").get(URL).content.decode()
    assert card_ok(html, "redis")
    assert "Not configured — embedded broker" in card(html, "redis")


def test_redis_up_is_green_with_latency():
    if not settings.REDIS_URL:
        need_service("REDIS_URL is not set")
    check = selectors.check_redis()
    assert check.ok, check.error
    assert check.latency_ms is not None and check.vendor.startswith("Redis")


def test_redis_password_is_not_shown():
    assert (
        selectors.redact_url("redis://:s3cret@redis.internal:6380/1") == "redis://:***@redis.internal:6380/1"
    )
    assert selectors.redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_schedule_entries_describe_intervals_crontabs_and_queues(settings):
    from celery.schedules import crontab

    settings.CELERY_TASK_ROUTES = {"churn.tasks.scan_task": {"queue": "bulk"}}
    settings.CELERY_BEAT_SCHEDULE = {
        "heartbeat": {"task": "scrm.tasks.heartbeat_task", "schedule": 60.0},
        "churn-scan": {"task": "churn.tasks.scan_task", "schedule": crontab(minute=0, hour=2)},
    }
    entries = {entry.name: entry for entry in selectors.beat_schedule_entries()}
    assert (entries["heartbeat"].every_seconds, entries["heartbeat"].queue) == (60.0, "default")
    assert (entries["churn-scan"].cron, entries["churn-scan"].queue) == ("0 2 * * *", "bulk")
    queues = {queue.name: queue for queue in selectors.celery_queues()}
    assert queues["bulk"].routed_tasks == ["churn.tasks.scan_task"] and queues["default"].is_default
