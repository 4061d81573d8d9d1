"""Reads for the overview (home) and the system status page.

The status checks never raise: a service that is down becomes a red check with its error,
so the page that shows the outage does not become one. The overview composes the contacts
selectors and keeps every query on an index (see `overview_for`).
"""

import logging
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import redis
from celery.schedules import crontab
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.db.models import Count, Q
from django.db.models.functions import TruncWeek
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.roles import is_admin
from contacts.models import ContactTouch, Event, PendingEvent
from contacts.selectors import contacts_visible_to, estimate_total

from .models import Heartbeat

logger = logging.getLogger(__name__)

# --- System status -----------------------------------------------------------------------------------------

CHECK_TIMEOUT_SECONDS = 2


@dataclass(frozen=True)
class ServiceCheck:
    """One card on the status page. `state` says why it is green or red."""

    name: str  # "database" | "redis" | "worker" | "beat"
    title: str
    ok: bool
    state: str  # "ok" | "down" | "not_configured" | "stale" | "never_seen"
    latency_ms: float | None = None
    vendor: str = ""
    target: str = ""  # where it points (database name, redacted Redis URL)
    error: str = ""
    seen_at: datetime | None = None
    age_seconds: int | None = None
    host: str = ""


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _error_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}".strip()[:300]


def _database_version(connection) -> str:
    if connection.vendor == "postgresql":
        major, minor = divmod(connection.pg_version, 10000)
        return f"PostgreSQL {major}.{minor}"
    if connection.vendor == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    return connection.display_name


def check_database(alias: str = "default") -> ServiceCheck:
    connection = connections[alias]
    title = _("Database")
    target = str(connection.settings_dict.get("NAME") or "")
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        latency = _elapsed_ms(started)
        vendor = _database_version(connection)
    except Exception as exc:  # any driver error: show it, never 500
        logger.warning("status: database check failed: %s", exc)
        return ServiceCheck(
            "database", title, False, "down", vendor=connection.display_name, error=_error_text(exc)
        )
    return ServiceCheck("database", title, True, "ok", latency_ms=latency, vendor=vendor, target=target)


def redact_url(url: str) -> str:
    """The URL without its password, for display."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def check_redis() -> ServiceCheck:
    url = settings.REDIS_URL
    title = _("Redis")
    if not url:
        # `make run`: the Celery broker is the filesystem and the cache is per process. Nothing to ping.
        return ServiceCheck("redis", title, True, "not_configured")
    target = redact_url(url)
    started = time.perf_counter()
    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS, socket_timeout=CHECK_TIMEOUT_SECONDS
        )
        try:
            client.ping()
            latency = _elapsed_ms(started)
            version = client.info("server").get("redis_version", "")
        finally:
            client.close()
    except Exception as exc:  # redis.RedisError, OSError, a malformed URL: show it
        logger.warning("status: redis check failed: %s", exc)
        return ServiceCheck("redis", title, False, "down", target=target, error=_error_text(exc))
    vendor = f"Redis {version}".strip()
    return ServiceCheck("redis", title, True, "ok", latency_ms=latency, vendor=vendor, target=target)


def check_heartbeat(name: str, title) -> ServiceCheck:
    """Green when the Heartbeat row `name` is younger than HEARTBEAT_STALE_AFTER_SECONDS."""
    try:
        beat = Heartbeat.objects.filter(name=name).first()
    except Exception as exc:  # the database is down: the heartbeat is unknown, so red
        return ServiceCheck(name, title, False, "down", error=_error_text(exc))
    if beat is None:
        return ServiceCheck(name, title, False, "never_seen")
    age = max(0, int((timezone.now() - beat.seen_at).total_seconds()))
    fresh = age <= settings.HEARTBEAT_STALE_AFTER_SECONDS
    return ServiceCheck(
        name,
        title,
        fresh,
        "ok" if fresh else "stale",
        seen_at=beat.seen_at,
        age_seconds=age,
        host=beat.detail,
    )


def system_checks() -> list[ServiceCheck]:
    """Database, Redis, Celery worker heartbeat and beat freshness, in that order."""
    return [
        check_database(),
        check_redis(),
        check_heartbeat(Heartbeat.WORKER, _("Celery worker")),
        check_heartbeat(Heartbeat.BEAT, _("Celery beat")),
    ]


# Beat sweeps the pipeline's inbox every minute and drains the touches every 30 s: work older than this is late.
BACKLOG_LATE_SECONDS = 120


@dataclass(frozen=True)
class Backlog:
    """Work handed over and not yet done: events owed to the pipeline, contacts owed a segment refresh."""

    name: str  # "pipeline" | "segments"
    title: str
    waiting: int
    oldest_age_seconds: int | None  # None when nothing waits

    @property
    def ok(self) -> bool:
        return self.oldest_age_seconds is None or self.oldest_age_seconds <= BACKLOG_LATE_SECONDS


def backlogs(now: datetime | None = None) -> list[Backlog]:
    """The pipeline's inbox and the touch outbox: how much waits and since when. Empty if the database cannot
    be read (its own card says so). Two counts and two primary-key lookups: cheap even with a large backlog."""
    now = now or timezone.now()
    try:
        oldest_event = PendingEvent.objects.order_by("event_id").values_list("event_id", flat=True).first()
        event_at = Event.objects.filter(pk=oldest_event).values_list("created_at", flat=True).first()
        touched_at = ContactTouch.objects.order_by("id").values_list("touched_at", flat=True).first()
        counts = (PendingEvent.objects.count(), ContactTouch.objects.count())
    except Exception:  # noqa: BLE001 — the status page never fails; the database card shows the error
        logger.warning("backlogs could not be read", exc_info=True)
        return []

    def age(at: datetime | None) -> int | None:
        return None if at is None else max(0, int((now - at).total_seconds()))

    # An inbox row whose event is gone (deleted with its contact) has no age: the next claim drops it.
    return [
        Backlog("pipeline", _("Events waiting for the pipeline"), counts[0], age(event_at)),
        Backlog("segments", _("Contacts waiting for segment refresh"), counts[1], age(touched_at)),
    ]


@dataclass(frozen=True)
class QueueInfo:
    name: str
    is_default: bool
    routed_tasks: list[str] = field(default_factory=list)


def celery_queues() -> list[QueueInfo]:
    """The queues from settings, each with the tasks routed to it."""
    default = settings.CELERY_TASK_DEFAULT_QUEUE
    routes = getattr(settings, "CELERY_TASK_ROUTES", {}) or {}
    names = getattr(settings, "CELERY_TASK_QUEUES_NAMES", (default,))
    return [
        QueueInfo(
            name=name,
            is_default=name == default,
            routed_tasks=sorted(task for task, route in routes.items() if route.get("queue") == name),
        )
        for name in names
    ]


@dataclass(frozen=True)
class ScheduleEntry:
    name: str
    task: str
    every_seconds: float | None  # an interval schedule
    cron: str  # a crontab schedule, "m h dom mon dow"
    queue: str


def _describe_schedule(schedule) -> tuple[float | None, str]:
    if isinstance(schedule, int | float):
        return float(schedule), ""
    if isinstance(schedule, timedelta):
        return schedule.total_seconds(), ""
    if isinstance(schedule, crontab):
        fields = (
            "_orig_minute",
            "_orig_hour",
            "_orig_day_of_month",
            "_orig_month_of_year",
            "_orig_day_of_week",
        )
        return None, " ".join(str(getattr(schedule, f, "*")) for f in fields)
    run_every = getattr(schedule, "run_every", None)  # celery.schedules.schedule
    if isinstance(run_every, timedelta):
        return run_every.total_seconds(), ""
    return None, str(schedule)


def beat_schedule_entries() -> list[ScheduleEntry]:
    routes = getattr(settings, "CELERY_TASK_ROUTES", {}) or {}
    entries = []
    for name, entry in sorted(settings.CELERY_BEAT_SCHEDULE.items()):
        every, cron = _describe_schedule(entry["schedule"])
        queue = (
            entry.get("options", {}).get("queue")
            or routes.get(entry["task"], {}).get("queue")
            or settings.CELERY_TASK_DEFAULT_QUEUE
        )
        entries.append(
            ScheduleEntry(name=name, task=entry["task"], every_seconds=every, cron=cron, queue=queue)
        )
    return entries


# --- Overview (home) ---------------------------------------------------------------------------------------

OVERVIEW_CACHE_SECONDS = 300
OVERVIEW_WEEKS = 12
NEW_DAYS = 7
INACTIVE_DAYS = 15


@dataclass(frozen=True)
class Figure:
    """A number on a stat card: exact, "at least" (a count stopped at the cap) or "about" (an estimate)."""

    value: int
    exact: bool = True
    at_least: bool = False

    @classmethod
    def from_total(cls, total) -> "Figure":
        capped = not total.exact and total.value <= settings.CONTACT_COUNT_CAP
        return cls(total.value, exact=total.exact, at_least=capped)


@dataclass(frozen=True)
class Overview:
    total: Figure
    new_recent: Figure
    inactive: Figure
    opted_out: Figure
    weeks: list[tuple[date, int]]  # (Monday in the user's zone, contacts joined that week), oldest first
    sources: list[tuple[str, int]]  # (Source value, contacts), largest first
    computed_at: datetime


def week_starts(now: datetime, tz, weeks: int = OVERVIEW_WEEKS) -> list[date]:
    """The Mondays (in `tz`) of the last `weeks` weeks, the current week last."""
    today = timezone.localtime(now, tz).date()
    monday = today - timedelta(days=today.weekday())
    return [monday - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]


def _weekly_new(qs, *, now: datetime, tz) -> list[tuple[date, int]]:
    mondays = week_starts(now, tz)
    start = datetime.combine(mondays[0], datetime.min.time(), tzinfo=tz)
    rows = (
        qs.filter(joined_at__gte=start)  # a range on the joined_at index
        .annotate(week=TruncWeek("joined_at", tzinfo=tz))
        .values("week")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = {timezone.localtime(row["week"], tz).date(): row["n"] for row in rows}
    return [(monday, counts.get(monday, 0)) for monday in mondays]


def _inactive(qs, total: Figure, *, since: datetime) -> Figure:
    """Inactive = no activity since `since` (or never). Counted as total minus the active ones, because
    the active ones are a short range of the last_active_at index while the inactive are most rows."""
    if total.at_least:
        stale = qs.filter(Q(last_active_at__lt=since) | Q(last_active_at__isnull=True))
        return Figure.from_total(estimate_total(stale, unfiltered=False))
    active = qs.filter(last_active_at__gte=since).count()
    return Figure(max(total.value - active, 0), exact=total.exact)


def compute_overview(user, *, tz, now: datetime | None = None) -> Overview:
    now = now or timezone.now()
    qs = contacts_visible_to(user).order_by()
    # Admins see the whole table: the planner's estimate instead of a COUNT(*) of a million rows.
    total = Figure.from_total(estimate_total(qs, unfiltered=is_admin(user)))
    sources = qs.values("source").annotate(n=Count("id")).order_by()
    return Overview(
        total=total,
        new_recent=Figure(qs.filter(joined_at__gte=now - timedelta(days=NEW_DAYS)).count()),
        inactive=_inactive(qs, total, since=now - timedelta(days=INACTIVE_DAYS)),
        opted_out=Figure(qs.filter(opted_out=True).count()),
        weeks=_weekly_new(qs, now=now, tz=tz),
        sources=sorted(((row["source"], row["n"]) for row in sources), key=lambda item: (-item[1], item[0])),
        computed_at=now,
    )


def overview_cache_key(user, tz) -> str:
    return f"scrm:overview:v1:{user.pk}:{getattr(tz, 'key', tz)}"


def overview_for(user, *, tz) -> Overview:
    """The overview of what `user` may see, cached per user (and zone) for five minutes.

    A cache outage only makes the page slower: it falls back to computing the numbers.
    """
    key = overview_cache_key(user, tz)
    try:
        cached = cache.get(key)
    except Exception as exc:
        logger.warning("overview: cache unavailable: %s", exc)
        cached = None
    if isinstance(cached, Overview):
        return cached
    overview = compute_overview(user, tz=tz)
    try:
        cache.set(key, overview, OVERVIEW_CACHE_SECONDS)
    except Exception as exc:
        logger.warning("overview: cache unavailable: %s", exc)
    return overview
