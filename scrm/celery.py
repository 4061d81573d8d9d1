"""The Celery app. Queues: default, dispatch (SOP touchpoints), bulk (imports, exports, refreshes).

The beat schedule lives in settings (CELERY_BEAT_SCHEDULE).
"""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scrm.settings")

app = Celery("scrm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in ("default", "dispatch", "bulk")]
app.autodiscover_tasks()
