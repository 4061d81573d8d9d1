"""Timing and reporting for `manage.py bench` (DESIGN.md, Benchmarks)."""

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path


class BenchFailure(Exception):
    """A measurement could not be taken as specified (e.g. a request did not answer 200)."""


@dataclass
class Result:
    name: str
    median_ms: float
    baseline_ms: float | None = None  # a hand-written SQL statement doing the same work, where one exists
    per_s: float | None = None  # a throughput, where the measurement has one
    peak_rss_mb: float | None = None  # peak resident memory of the measured work, where it is reported

    @property
    def ratio(self) -> float | None:
        """How many times the baseline's time the measured code takes."""
        return self.median_ms / self.baseline_ms if self.baseline_ms else None


def median_ms(actions: dict[str, Callable[[], object]], *, runs: int, warmups: int = 1) -> dict[str, float]:
    """Median wall time in ms of each action over `runs` calls, after `warmups` untimed ones (cold
    caches, first-use imports and plans would otherwise decide the result).

    The actions take turns, one call each per round, so a burst of load from elsewhere on the machine
    slows every measurement a little instead of one measurement a lot."""
    for _ in range(warmups):
        for action in actions.values():
            action()
    timings: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(max(runs, 1)):
        for name, action in actions.items():
            started = time.perf_counter()
            action()
            timings[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in timings.items()}


def _cell(value: float | None, width: int) -> str:
    return f"{value:>{width}.2f}" if value is not None else " " * width


def format_table(results: list[Result]) -> str:
    """One row per measurement: name, median ms, baseline ms, ratio (and per s, when any has one)."""
    with_rate = any(result.per_s is not None for result in results)
    with_rss = any(result.peak_rss_mb is not None for result in results)
    name_width = max([len("name"), *(len(result.name) for result in results)])
    header = f"{'name':<{name_width}}  {'median ms':>10}  {'baseline ms':>11}  {'ratio':>6}"
    header += f"  {'per s':>10}" if with_rate else ""
    header += f"  {'peak MB':>8}" if with_rss else ""
    lines = [header, "-" * len(header)]
    for result in results:
        line = f"{result.name:<{name_width}}  {_cell(result.median_ms, 10)}  {_cell(result.baseline_ms, 11)}"
        line += f"  {_cell(result.ratio, 6)}"
        line += f"  {_cell(result.per_s, 10)}" if with_rate else ""
        line += f"  {_cell(result.peak_rss_mb, 8)}" if with_rss else ""
        lines.append(line.rstrip())
    return "\n".join(lines)


def report(scenario: str, contacts: int, results: list[Result]) -> dict:
    """The --json document: {"scenario", "contacts", "results": [{name, median_ms, baseline_ms, per_s}]}."""
    rows = [{key: _rounded(value) for key, value in asdict(result).items()} for result in results]
    for row in rows:  # peak_rss_mb only where a scenario measures it (the import scenario)
        if row["peak_rss_mb"] is None:
            del row["peak_rss_mb"]
    return {"scenario": scenario, "contacts": contacts, "results": rows}


def _rounded(value):
    # Microseconds are plenty: timer noise is larger than that.
    return round(value, 3) if isinstance(value, float) else value


def write_json(path: str | Path, scenario: str, contacts: int, results: list[Result]) -> None:
    Path(path).write_text(json.dumps(report(scenario, contacts, results), indent=2) + "\n", encoding="utf-8")
