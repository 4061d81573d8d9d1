import socket

from celery import shared_task

from . import pipeline, touches
from .models import Heartbeat
from .services import heartbeat_record


@shared_task(ignore_result=True)
def heartbeat_task(sent_by: str = "") -> None:
    """Beat sends this every minute; a worker running it proves the worker is alive.

    `sent_by` is only read at publish time (scrm/signals.py) to record beat's freshness.
    """
    heartbeat_record(name=Heartbeat.WORKER, detail=socket.gethostname())


@shared_task(bind=True, ignore_result=True, max_retries=5, default_retry_delay=10)
def process_events_task(self, event_ids: list[int]) -> None:
    """Apply newly recorded events (handed over on commit by contacts.events)."""
    try:
        pipeline.process_events(event_ids)
    except Exception as exc:  # the batch rolled back whole; try again, then the sweep has it
        raise self.retry(exc=exc) from exc


@shared_task(ignore_result=True)
def process_pending_events_task() -> None:
    """Beat, every minute: apply events whose hand-over was lost. Bounded so one run stays short."""
    pipeline.process_pending_events(max_batches=20)


@shared_task(ignore_result=True)
def refresh_touched_contacts_task() -> None:
    """Beat, every 30 s: dynamic segments follow the contacts edits, imports and bulk actions touched."""
    touches.drain_contact_touches()
