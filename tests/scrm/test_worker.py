"""A real Celery worker and a real beat, as separate processes, against Redis and the test database.

Needs REDIS_URL and PostgreSQL (a worker process cannot share SQLite's in-transaction test data):
skipped locally without them, failed under SCRM_REQUIRE_SERVICES=1 (CI).

This module is also imported by the beat subprocess (for `DueNowScheduler`, via `-S`), so its top level
imports nothing that needs Django to be set up.
"""

import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from celery.beat import Scheduler
from django.conf import settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))
WAIT_SECONDS = 30


class DueNowScheduler(Scheduler):
    """Beat's in-memory scheduler with every entry due at start-up, so the test need not wait a minute."""

    def setup_schedule(self):
        super().setup_schedule()
        for entry in self.schedule.values():
            entry.last_run_at = entry.default_now() - timedelta(days=1)


def database_url(db: dict) -> str:
    user = quote(db.get("USER") or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{db.get('HOST') or ''}{port}/{quote(db['NAME'], safe='')}"


def require_services():
    from django.db import connection

    from tests.conftest import need_service

    if not settings.REDIS_URL:
        need_service("REDIS_URL is not set: a real Celery worker needs Redis")
    if connection.vendor != "postgresql":
        need_service("a real worker needs PostgreSQL (it cannot see SQLite test data)")


def child_env() -> dict:
    """The test database (pytest-django has renamed it by now) and Redis, for the child processes."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CELERY_")}
    env |= {
        "DATABASE_URL": database_url(settings.DATABASES["default"]),
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "scrm.settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
        "DB_CONN_MAX_AGE": "0",
    }
    return env


class Process:
    """A child process whose output goes to a temporary log (shown when an assertion fails)."""

    def __init__(self, args: list[str]):
        self.log = tempfile.NamedTemporaryFile(prefix="scrm-celery-", suffix=".log", delete=False)  # noqa: SIM115
        self.popen = subprocess.Popen(
            args, cwd=PROJECT_ROOT, env=child_env(), stdout=self.log, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


@pytest.fixture
def start():
    """start(args) -> Process; every process started is stopped after the test, whatever happens."""
    started: list[Process] = []

    def _start(args: list[str]) -> Process:
        process = Process(args)
        started.append(process)
        return process

    yield _start
    for process in reversed(started):
        process.stop()


def worker_args() -> list[str]:
    name = f"test-{uuid.uuid4().hex[:8]}@%h"
    return [CELERY, "-A", "scrm", "worker", "-Q", "default,dispatch,bulk", "--pool", "solo", "-l", "info",
            "-n", name, "--without-gossip", "--without-mingle"]  # fmt: skip


def beat_args() -> list[str]:
    return [CELERY, "-A", "scrm", "beat", "-l", "info", "-S", f"{__name__}:DueNowScheduler"]


def wait_for_heartbeat(name: str, processes: list[Process], *, after=None):
    """The Heartbeat row `name` (newer than `after`), polled for up to WAIT_SECONDS; fails with the logs."""
    from scrm.models import Heartbeat

    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        row = Heartbeat.objects.filter(name=name).first()
        if row and (after is None or row.seen_at > after):
            return row
        for process in processes:
            assert process.popen.poll() is None, f"{process.popen.args[3]} exited:\n{process.output()}"
        time.sleep(0.25)
    logs = "\n\n".join(f"--- {p.popen.args[3]} ---\n{p.output()}" for p in processes)
    pytest.fail(f"no '{name}' heartbeat within {WAIT_SECONDS}s\n{logs}")


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_real_worker_runs_the_heartbeat_task(start):
    import socket

    from scrm.celery import app as celery_app
    from scrm.models import Heartbeat
    from scrm.tasks import heartbeat_task

    require_services()
    worker = start(worker_args())
    celery_app.conf.task_always_eager = False  # conftest's eager_celery fixture restores it
    heartbeat_task.delay()
    row = wait_for_heartbeat(Heartbeat.WORKER, [worker])
    assert row.detail == socket.gethostname()
    assert not Heartbeat.objects.filter(name=Heartbeat.BEAT).exists()  # a manual send is not beat


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_real_beat_publishes_the_heartbeat_and_records_it(start):
    """Beat publishes the heartbeat (scrm/signals.py records it in the beat process); a worker runs it."""
    from scrm.models import Heartbeat

    require_services()
    assert not Heartbeat.objects.exists()
    worker = start(worker_args())
    beat = start(beat_args())
    beat_row = wait_for_heartbeat(Heartbeat.BEAT, [worker, beat])
    wait_for_heartbeat(Heartbeat.WORKER, [worker, beat], after=beat_row.seen_at - timedelta(seconds=1))


@pytest.mark.django_db
def test_beat_publish_path_records_beat_freshness():
    """Runs everywhere: beat's scheduler applies the settings' heartbeat entry and the publish is recorded."""
    from scrm.celery import app as celery_app
    from scrm.models import Heartbeat

    celery_app.conf.task_always_eager = False  # conftest's eager_celery fixture restores it
    scheduler = DueNowScheduler(app=celery_app, lazy=False)
    entry = scheduler.schedule["heartbeat"]
    assert entry.task == "scrm.tasks.heartbeat_task"
    with celery_app.connection_for_write("memory://") as conn, conn.Producer() as producer:
        scheduler.apply_async(entry, producer=producer)
    assert Heartbeat.objects.filter(name=Heartbeat.BEAT).exists()
    assert not Heartbeat.objects.filter(name=Heartbeat.WORKER).exists()
