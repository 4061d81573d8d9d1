"""Celery tasks of the SOP app: take ids, call a service, safe to run twice."""

from celery import shared_task
from django.db import transaction

from . import dispatch, triggers


@shared_task(ignore_result=True)
def dispatch_due_touchpoints_task() -> None:
    """Beat, every minute, on the `dispatch` queue: send what is due (sop.dispatch)."""
    dispatch.dispatch_due()


@shared_task(ignore_result=True)
def send_touchpoints_task(touchpoint_ids: list[int]) -> None:
    """Outside channels (email, webhook) of a dispatched batch; a lost run is re-queued by the reaper."""
    dispatch.send_touchpoints(touchpoint_ids)


@shared_task(ignore_result=True)
def consume_segment_changes_task() -> None:
    """Beat, every 30 s: segment triggers for changes no pipeline batch or drain consumed (full refreshes, the
    nightly reconcile)."""
    with transaction.atomic():
        triggers.segment_changes_consume()


@shared_task(ignore_result=True)
def birthday_triggers_task() -> None:
    """Beat, hourly: birthday templates enroll the customers whose day it is N days ahead."""
    with transaction.atomic():
        triggers.birthdays_react()
