"""Scenario `events` (issue 3): event ingestion through the JSON API, and the pipeline catching up.

Set-up, as in production (docker-compose.yml): gunicorn with 2 gthread workers serves the app on a free
local port against the configured database, and a Celery worker (queue `default`, the broker from
settings) applies the events: POST /events hands each request's new ids to `process_events_task` on
commit, exactly as in production. Client threads (stdlib http.client, keep-alive) post batches of 1,000
events with an API key (events:write) to existing bench contacts by contact_id; ~12% are purchases.

Results:
- `events_api`: median ms of one 1,000-event POST; per_s = events accepted per second of posting.
- `pipeline_catch_up`: ms from the last response until every posted event has left the pipeline's inbox;
  per_s = events per second from the first request until the last event was applied (pipeline included).
Target: per_s of both at least 5,000.

Bench events stay in the data set (they are few next to ~10 per contact) and carry keys "bench-<run>-<n>".
"""

import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from accounts.api_keys import api_key_create
from contacts.models import Contact, PendingEvent

from ..data import PHONE_END, PHONE_PREFIX, Dataset
from ..runner import BenchFailure, Result

BATCH_SIZE = 1000
BATCHES = 60  # 60,000 events per run
CLIENT_THREADS = 4
PURCHASE_PERCENT = 12
KINDS = ("check_in", "content_view", "message_in", "moments_like", "share")
START_TIMEOUT_S = 60
CATCH_UP_TIMEOUT_S = 600
BASE_DIR = Path(settings.BASE_DIR)
LOG_DIR = Path(tempfile.gettempdir())  # the servers' output, shown when one fails


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env() -> dict:
    # Production runs with DEBUG off (no query log); the key's requests come from 127.0.0.1.
    return {**os.environ, "DEBUG": "0", "DJANGO_SETTINGS_MODULE": "scrm.settings", "PYTHONUNBUFFERED": "1"}


@contextmanager
def background(command: list[str], name: str) -> Iterator[subprocess.Popen]:
    log = open(LOG_DIR / f"scrm-bench-{name}.log", "w+b")  # noqa: SIM115 — closed below
    process = subprocess.Popen(command, cwd=BASE_DIR, env=_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _tail(name: str) -> str:
    path = LOG_DIR / f"scrm-bench-{name}.log"
    return path.read_text(errors="replace")[-2000:] if path.exists() else ""


@contextmanager
def gunicorn(port: int) -> Iterator[str]:
    command = [
        sys.executable, "-m", "gunicorn", "scrm.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", "2", "--worker-class", "gthread", "--threads", "4", "--log-level", "warning",
    ]  # fmt: skip
    with background(command, "gunicorn") as process:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise BenchFailure(f"gunicorn exited with {process.returncode}:\n{_tail('gunicorn')}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/api/v1/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchFailure(f"gunicorn did not answer /api/v1/health:\n{_tail('gunicorn')}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"


@contextmanager
def celery_worker() -> Iterator[subprocess.Popen]:
    command = [
        sys.executable, "-m", "celery", "-A", "scrm", "worker", "-Q", "default", "--concurrency", "2",
        "--loglevel", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-n", f"bench-{uuid.uuid4().hex[:6]}@%h",
    ]  # fmt: skip
    with background(command, "celery") as process:
        yield process


def make_batches(contact_ids: list[int], *, batches: int, size: int, run: str) -> list[bytes]:
    """Request bodies, serialised up front so the clients measure the server, not json.dumps."""
    rng = random.Random(run)
    now = timezone.now()
    bodies = []
    for b in range(batches):
        events = []
        for i in range(size):
            n = b * size + i
            event = {
                "idempotency_key": f"bench-{run}-{n}",
                "contact_id": rng.choice(contact_ids),
                "occurred_at": (now - timedelta(seconds=rng.randrange(30 * 86400))).isoformat(),
                "kind": rng.choice(KINDS),
                "payload": {"bench": True},
            }
            if rng.randrange(100) < PURCHASE_PERCENT:
                event.update(kind="purchase", amount=f"{rng.uniform(9.9, 999.9):.2f}", order_id=f"B{run}-{n}")
            events.append(event)
        bodies.append(json.dumps({"events": events}).encode())
    return bodies


class Poster:
    """Client threads sharing a queue of bodies; each thread keeps one HTTP connection alive."""

    def __init__(self, base_url: str, key: str, bodies: list[bytes], threads: int):
        self.host, self.port = base_url.removeprefix("http://").split(":")
        self.key, self.bodies, self.threads = key, list(bodies), threads
        self.latencies: list[float] = []
        self.event_ids: list[int] = []
        self.failures: list[str] = []
        self.lock = threading.Lock()

    def _next(self) -> bytes | None:
        with self.lock:
            return self.bodies.pop(0) if self.bodies else None

    def _worker(self) -> None:
        conn = http.client.HTTPConnection(self.host, int(self.port), timeout=120)
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        while (body := self._next()) is not None:
            started = time.perf_counter()
            conn.request("POST", "/api/v1/events", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            elapsed = (time.perf_counter() - started) * 1000
            with self.lock:
                if response.status != 200:
                    self.failures.append(f"{response.status}: {data[:300]!r}")
                    continue
                result = json.loads(data)
                self.latencies.append(elapsed)
                self.event_ids += [r["event_id"] for r in result["results"] if r["status"] == "created"]
                self.failures += [
                    json.dumps(r["errors"]) for r in result["results"] if r["status"] == "error"
                ]
        conn.close()

    def run(self) -> float:
        threads = [threading.Thread(target=self._worker) for _ in range(self.threads)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started


def wait_until_processed(event_ids: list[int], *, timeout: float = CATCH_UP_TIMEOUT_S, worker=None) -> float:
    """Seconds until none of `event_ids` is left in the pipeline's inbox (polled every 50 ms).

    Polls the id range of the inbox (PendingEvent); the bench is the only writer, so the range holds only
    its own events."""
    started = time.perf_counter()
    pending = PendingEvent.objects.filter(event_id__gte=min(event_ids), event_id__lte=max(event_ids))
    while pending.exists():
        if worker is not None and worker.poll() is not None:
            raise BenchFailure(f"the Celery worker exited with {worker.returncode}:\n{_tail('celery')}")
        if time.perf_counter() - started > timeout:
            raise BenchFailure(f"{pending.count()} events still unprocessed after {timeout:.0f}s")
        time.sleep(0.05)
    return time.perf_counter() - started


def measure(base_url: str, key: str, contact_ids: list[int], *, batches: int = BATCHES,
            size: int = BATCH_SIZE, threads: int = CLIENT_THREADS, worker=None) -> list[Result]:  # fmt: skip
    """Post `batches` batches, then wait for the pipeline; the two results of the scenario."""
    run = uuid.uuid4().hex[:8]
    warm = make_batches(contact_ids, batches=min(threads, batches), size=min(size, 50), run=f"{run}w")
    Poster(base_url, key, warm, threads).run()  # first requests: imports, connections, plans
    bodies = make_batches(contact_ids, batches=batches, size=size, run=run)
    poster = Poster(base_url, key, bodies, threads)
    post_seconds = poster.run()
    if poster.failures:
        raise BenchFailure(f"{len(poster.failures)} failures, e.g. {poster.failures[0]}")
    expected = batches * size
    if len(poster.event_ids) != expected:
        raise BenchFailure(f"{len(poster.event_ids)} events created, expected {expected}")
    catch_up = wait_until_processed(poster.event_ids, worker=worker)
    return [
        Result("events_api", statistics.median(poster.latencies), per_s=expected / post_seconds),
        Result("pipeline_catch_up", catch_up * 1000, per_s=expected / (post_seconds + catch_up)),
    ]


def bench_contact_ids(dataset: Dataset) -> list[int]:
    qs = Contact.objects.exclude(phone="").filter(phone__gte=PHONE_PREFIX, phone__lt=PHONE_END)
    ids = list(qs.values_list("id", flat=True))
    if not ids:
        raise BenchFailure("the data set has no contacts; run with --contacts 1 or more")
    return ids


def bench_key(dataset: Dataset) -> str:
    _key, raw = api_key_create(actor=dataset.admin, name=f"bench events {timezone.now():%Y-%m-%d %H:%M}",
                               scopes=["events:write"])  # fmt: skip
    return raw


def run(dataset: Dataset, *, runs: int) -> list[Result]:
    """Rounds = min(runs, 3); each posts BATCHES batches. Reports the median round."""
    contact_ids = bench_contact_ids(dataset)
    key = bench_key(dataset)
    rounds: list[list[Result]] = []
    with celery_worker() as worker, gunicorn(free_port()) as base_url:
        for _ in range(min(runs, 3)):
            rounds.append(measure(base_url, key, contact_ids, worker=worker))
    return [
        Result(
            name=rounds[0][i].name,
            median_ms=statistics.median(r[i].median_ms for r in rounds),
            per_s=statistics.median(r[i].per_s for r in rounds),
        )
        for i in range(2)
    ]
