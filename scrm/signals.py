"""Beat freshness. Beat itself runs no task code, so the moment it publishes the heartbeat task
is recorded here, in the beat process. This is infrastructure, not domain flow (DESIGN.md keeps
domain reactions in scrm/pipeline.py)."""

from contextlib import suppress

from celery.signals import before_task_publish
from django.db import DatabaseError

HEARTBEAT_TASK = "scrm.tasks.heartbeat_task"


def _sent_by_beat(body) -> bool:
    # Message protocol 2: body is (args, kwargs, embed). Beat's schedule entry passes sent_by="beat",
    # so a manual heartbeat_task.delay() does not make a dead beat look alive.
    task_kwargs = body[1] if isinstance(body, list | tuple) and len(body) > 1 else {}
    return isinstance(task_kwargs, dict) and task_kwargs.get("sent_by") == "beat"


@before_task_publish.connect
def record_beat_publish(sender=None, body=None, **kwargs):
    if sender != HEARTBEAT_TASK or not _sent_by_beat(body):
        return
    from .models import Heartbeat
    from .services import heartbeat_record

    # A database outage must not stop beat from publishing; the status page will show it.
    with suppress(DatabaseError):
        heartbeat_record(name=Heartbeat.BEAT)
