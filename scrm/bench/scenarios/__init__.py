"""The registry of benchmark scenarios: `manage.py bench <name>` runs SCENARIOS[name].

A scenario is a function `(dataset, *, runs) -> list[Result]` that measures on the built data set
(scrm.bench.data.Dataset); later issues register theirs here.
"""

from collections.abc import Callable

from ..data import Dataset
from ..runner import Result
from . import contacts, events, imports, segments, sop

Scenario = Callable[..., list[Result]]

SCENARIOS: dict[str, Scenario] = {
    "contacts": contacts.run,
    "events": events.run,  # starts gunicorn and a Celery worker (see its docstring)
    "import": imports.run,  # own_data: builds its own file and contacts (see its docstring)
    "segments": segments.run,
    "sop": sop.run,
}


def run_scenario(name: str, dataset: Dataset | int, *, runs: int) -> list[Result]:
    return SCENARIOS[name](dataset, runs=runs)
