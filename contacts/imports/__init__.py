"""Contact and order/event import (issue 3): reading, mapping, validation, the upsert engine and the job.

Services only; the pages are contacts.import_views, the task contacts.tasks.import_run_task.
"""

from .jobs import import_create, import_preview, import_run, import_set_mapping, import_start
from .reading import ImportFileError

__all__ = [
    "ImportFileError",
    "import_create",
    "import_preview",
    "import_run",
    "import_set_mapping",
    "import_start",
]
