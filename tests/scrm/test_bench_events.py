"""The `events` bench scenario at a tiny N: its measurement against a live server, and its registration.

The full scenario starts gunicorn and a Celery worker against the configured database; the suite's
SQLite test database lives in memory, so here the same `measure` runs against pytest-django's live
server (eager Celery applies the pipeline on commit) with small batches.
"""

import pytest
from django.db import connection

from contacts.models import Event, PendingEvent
from scrm.bench.data import build_dataset
from scrm.bench.runner import BenchFailure
from scrm.bench.scenarios import SCENARIOS, events


def test_scenario_is_registered():
    assert SCENARIOS["events"] is events.run


@pytest.mark.django_db(transaction=True)
def test_measure_posts_batches_and_waits_for_the_pipeline(live_server):
    dataset = build_dataset(10)
    key = events.bench_key(dataset)
    ids = events.bench_contact_ids(dataset)
    before = Event.objects.count()
    threads = 2 if connection.vendor == "postgresql" else 1  # in-memory SQLite: one writer at a time
    results = events.measure(live_server.url, key, ids, batches=3, size=20, threads=threads)
    assert [r.name for r in results] == ["events_api", "pipeline_catch_up"]
    assert all(r.per_s and r.per_s > 0 for r in results)
    assert results[0].median_ms > 0
    new = Event.objects.filter(idempotency_key__startswith="bench-")
    assert new.count() == 3 * 20 + threads * 20  # the timed batches and the warm-up
    assert Event.objects.count() == before + new.count()
    assert not PendingEvent.objects.filter(event_id__in=new.values("id")).exists()
    assert set(new.values_list("contact_id", flat=True)) <= set(ids)


def test_batches_are_deterministic_and_well_formed(time_machine):
    time_machine.move_to("2026-01-01 00:00:00Z", tick=False)
    one = events.make_batches([1, 2, 3], batches=2, size=5, run="x")
    assert one == events.make_batches([1, 2, 3], batches=2, size=5, run="x")
    assert len(one) == 2 and one[0].count(b"idempotency_key") == 5


@pytest.mark.django_db(transaction=True)
def test_a_poster_failure_is_reported(live_server):
    poster = events.Poster(live_server.url, "scrm_00000000_nope", [b'{"events": []}'], threads=1)
    poster.run()
    assert poster.failures and poster.failures[0].startswith("401")
    assert events.wait_until_processed([10**12], timeout=0) < 1  # nothing pending in that range
    with pytest.raises(BenchFailure, match="failures"):
        events.measure(live_server.url, "scrm_00000000_nope", [1], batches=1, size=1, threads=1)
