"""Two dispatchers at once on PostgreSQL (DESIGN.md, "Touchpoints are an outbox"): every touchpoint is
delivered exactly once.

Each dispatcher is a thread with its own database connection (transactional_db: the rows are committed,
so both see them), started together at a barrier, with a small batch size so both take many batches.
Celery runs eagerly (conftest): the webhook sends happen in the dispatcher's thread right after each claim
commits, against a local receiver that counts idempotency keys.

How these tests were checked to fail without the claim's locking (sop/dispatch.py `_claim`):
- with `select_for_update(skip_locked=True)` removed (a plain read of due rows), both dispatchers take
  the same rows: the task test fails (an IntegrityError on the Delivery (touchpoint, attempt) key in one
  thread, and duplicate deliveries), and the webhook receiver gets keys twice;
- with `skip_locked=True` dropped (plain FOR UPDATE) PostgreSQL still delivers once (the waiting claim
  re-checks status after the lock is released), but the dispatchers take turns instead of working side by
  side: test_a_dispatcher_passes_over_rows_another_holds then fails, its dispatcher blocking on the held
  rows until they are released.
"""

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection, transaction
from django.db.models import Count

from contacts.models import Contact
from sop.dispatch import DispatchStats, dispatch_due, idempotency_key
from sop.enrollment import enrollments_start, pairs_source
from sop.models import Delivery, Touchpoint, TouchStatus
from tests.conftest import need_service

from .helpers import make_template
from .servers import WebhookReceiver

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)  # daytime: the guards are on and let everything through
BATCH = 25

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        need_service("two dispatchers at once need PostgreSQL's row locks (SQLite locks the whole database)")


@pytest.fixture
def daytime():
    with time_machine.travel(T0, tick=True):
        yield


def due_touchpoints(owner, count: int, step: dict) -> list[int]:
    """`count` customers enrolled in a one-step template, each with one touchpoint due now."""
    contacts = Contact.objects.bulk_create(
        [Contact(name=f"客户{i:05d}", owner=owner) for i in range(count)], batch_size=1000
    )
    template = make_template(steps=[{"day": 0, "at": "00:00", **step}])
    enrollments_start(template=template, source=pairs_source([(c.pk, "manual:bench") for c in contacts]))
    ids = list(Touchpoint.objects.filter(template=template).values_list("id", flat=True))
    assert len(ids) == count
    return ids


def run_dispatchers(count: int, **kwargs) -> list[DispatchStats]:
    """`count` dispatch_due runs at once, one thread (and one connection) each; re-raises a thread's error."""
    barrier = threading.Barrier(count)
    results: list[DispatchStats | None] = [None] * count
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = dispatch_due(**kwargs)
        except BaseException as error:  # noqa: BLE001 - handed to the test below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a dispatcher did not finish"
    if errors:
        raise errors[0]
    return results


def assert_one_ok_delivery_each(ids: list[int]) -> None:
    per_touchpoint = dict(
        Delivery.objects.filter(touchpoint_id__in=ids).values_list("touchpoint_id").annotate(n=Count("id"))
    )
    assert set(per_touchpoint) == set(ids)
    assert {n for n in per_touchpoint.values()} == {1}
    assert Delivery.objects.filter(touchpoint_id__in=ids, status=Delivery.Status.OK).count() == len(ids)


def test_two_dispatchers_open_each_task_exactly_once(operator, daytime):
    ids = due_touchpoints(operator, 2000, {"channel": "task"})

    first, second = run_dispatchers(2, batch_size=BATCH)

    # Both really worked, side by side, batch after batch, and between them claimed each row once.
    assert first.batches > 5 and second.batches > 5
    assert first.claimed + second.claimed == len(ids)
    assert first.issued + second.issued == len(ids)
    assert_one_ok_delivery_each(ids)
    opened = Touchpoint.objects.filter(id__in=ids, status=TouchStatus.OPEN, attempts=1, assignee=operator)
    assert opened.count() == len(ids)
    assert not Touchpoint.objects.filter(id__in=ids).exclude(status=TouchStatus.OPEN).exists()


def test_two_dispatchers_post_each_webhook_exactly_once(operator, daytime):
    with WebhookReceiver(codes=[200]) as hook:
        config = {"url": hook.url, "secret": "a-signing-secret-of-some-length"}
        ids = due_touchpoints(operator, 240, {"channel": "webhook", "channel_config": config})

        # Each batch's posts are sent in its dispatcher's thread (eager Celery): no time budget cut-off.
        first, second = run_dispatchers(2, batch_size=10, time_budget=600)

    keys = hook.keys()
    assert len(hook.requests) == len(ids)  # no key twice
    assert set(keys) == {idempotency_key(pk) for pk in ids} and set(keys.values()) == {1}
    assert first.batches > 3 and second.batches > 3
    assert first.sending + second.sending == len(ids)
    assert_one_ok_delivery_each(ids)
    assert Touchpoint.objects.filter(id__in=ids, status=TouchStatus.DELIVERED).count() == len(ids)


def test_a_dispatcher_passes_over_rows_another_holds(operator, daytime):
    """Another dispatcher is in the middle of a batch (its rows locked, not yet committed): this one takes
    the rest without waiting, and the held rows are delivered once when they are free again."""
    ids = due_touchpoints(operator, 200, {"channel": "task"})
    result: list[DispatchStats] = []
    dispatcher = threading.Thread(target=lambda: result.extend(run_dispatchers(1, batch_size=BATCH)))
    with transaction.atomic():
        held = list(
            Touchpoint.objects.select_for_update()
            .filter(id__in=ids)
            .order_by("due_at", "id")
            .values_list("id", flat=True)[:50]
        )
        dispatcher.start()
        dispatcher.join(timeout=20)
        finished_while_held = not dispatcher.is_alive()
    dispatcher.join(timeout=60)

    assert finished_while_held, "the dispatcher waited for rows another dispatcher holds"
    assert result[0].claimed == len(ids) - len(held)
    assert set(Touchpoint.objects.filter(status=TouchStatus.SCHEDULED).values_list("id", flat=True)) == set(
        held
    )
    assert dispatch_due(batch_size=BATCH).claimed == len(held)
    assert_one_ok_delivery_each(ids)
