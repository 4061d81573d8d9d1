"""A real Celery worker killed (SIGKILL) in the middle of a dispatch run: restarted, the deliveries equal the
expected set, with no touchpoint delivered twice (DESIGN.md: a killed worker delays delivery; it never loses
or doubles one).

The worker is a separate process on the `dispatch` queue, against Redis and the test database (the pattern
of tests/scrm/test_worker.py); a small SOP_DISPATCH_BATCH_SIZE in its environment makes one run take many
short transactions, so the kill lands between and inside them. Needs PostgreSQL and Redis: skipped locally
without them, failed under SCRM_REQUIRE_SERVICES=1.
"""

import time

import pytest
from django.db.models import Count

from contacts.models import Contact
from scrm.celery import app as celery_app
from sop.enrollment import enrollments_start, pairs_source
from sop.models import Delivery, Touchpoint, TouchStatus
from tests.scrm.test_worker import require_services, start, worker_args  # noqa: F401 - start is a fixture

from .helpers import make_template

TOUCHPOINTS = 3000
BATCH_SIZE = "10"
KILL_AFTER = 150  # deliveries seen before the kill
WAIT_SECONDS = 120


def dispatch_worker_args() -> list[str]:
    args = worker_args()
    args[args.index("-Q") + 1] = "dispatch"
    return args


def due_tasks(owner, count: int) -> set[int]:
    """`count` customers, each with one task touchpoint due now (transactional: the real clock's quiet hours
    and the cap cannot hold any back, so "all delivered" is the expected end)."""
    contacts = Contact.objects.bulk_create(
        [Contact(name=f"客户{i:05d}", owner=owner) for i in range(count)], batch_size=1000
    )
    template = make_template(steps=[{"day": 0, "at": "00:00", "channel": "task", "transactional": True}])
    enrollments_start(template=template, source=pairs_source([(c.pk, "manual:kill") for c in contacts]))
    return set(Touchpoint.objects.filter(template=template).values_list("id", flat=True))


def wait_until(condition, processes, what: str, *, seconds: float = WAIT_SECONDS):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        for process in processes:
            assert process.popen.poll() is None, f"the worker exited:\n{process.output()}"
        time.sleep(0.05)
    logs = "\n\n".join(process.output() for process in processes)
    pytest.fail(f"{what} not within {seconds}s\n{logs}")


def forget_unacked_messages() -> None:
    """The killed worker's task stays unacknowledged in Redis (acks_late) and would be redelivered after the
    visibility timeout into some later test; this test sends its own second run instead."""
    with celery_app.connection_for_write() as conn:
        client = conn.default_channel.client
        client.delete("unacked", "unacked_index")


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_dispatch_neither_loses_nor_doubles_a_touchpoint(start, operator, monkeypatch):  # noqa: F811
    from sop.tasks import dispatch_due_touchpoints_task

    require_services()
    expected = due_tasks(operator, TOUCHPOINTS)
    celery_app.conf.task_always_eager = False  # conftest's eager_celery fixture restores it
    celery_app.control.purge()
    monkeypatch.setenv("SOP_DISPATCH_BATCH_SIZE", BATCH_SIZE)
    delivered = Delivery.objects.filter(touchpoint_id__in=expected)

    first = start(dispatch_worker_args())
    dispatch_due_touchpoints_task.delay()
    wait_until(lambda: delivered.count() >= KILL_AFTER, [first], f"{KILL_AFTER} deliveries")
    first.popen.kill()  # SIGKILL: no shutdown, no ack, the open batch transaction dies with the connection
    first.popen.wait(timeout=10)
    at_kill = delivered.count()
    time.sleep(1)
    assert delivered.count() == at_kill, "deliveries went on after the kill"
    assert KILL_AFTER <= at_kill < len(expected), "the kill came after the run had finished"

    second = start(dispatch_worker_args())
    dispatch_due_touchpoints_task.delay()
    wait_until(lambda: delivered.count() >= len(expected), [second], "every delivery")
    time.sleep(0.5)  # a duplicate written just after the last expected one would show now
    forget_unacked_messages()

    ok = delivered.filter(status=Delivery.Status.OK)
    assert set(ok.values_list("touchpoint_id", flat=True)) == expected
    assert not ok.values("touchpoint_id").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert delivered.count() == len(expected)
    opened = Touchpoint.objects.filter(id__in=expected, status=TouchStatus.OPEN, attempts=1)
    assert set(opened.values_list("id", flat=True)) == expected
