"""Scenario `import` (issue 3): contact import throughput and memory, against a raw COPY of the same file.

It builds its own data (own_data): an N-row contacts CSV (name, CN mobile, email, city, tags, source) under
MEDIA_ROOT/bench/, and the contacts it imports, whose phones start +86137 (the shared bench data set uses
+86130, seed_demo neither). `import_empty` needs a database holding no other contacts, so it refuses to run
next to the shared data set or demo data: run it on a database of its own, e.g.
    DATABASE_URL=postgres://…/scrm_bench_import python manage.py migrate && … bench import --contacts 1000000
Before each round it deletes its own contacts (set-based) and nothing else.

- import_empty: the import job (scrm's import_run, the Celery task's body) into a database without contacts.
- import_again: the same file again: every row matched, nothing changed.
- copy_baseline: PostgreSQL COPY … FORMAT csv of the same file into a bare table (no parsing in Python).
per_s is rows per second; peak_rss_mb the process's peak resident memory during the import (Linux: VmHWM,
reset before each import through /proc/self/clear_refs). Each round is one full import, so there is no
warm-up round; the median is over --runs rounds.
"""

import csv
import random
import statistics
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from contacts.imports.jobs import import_run
from contacts.imports.mapping import guess_mapping
from contacts.models import Contact, ContactTag, ImportJob, JobStatus
from scrm.demo import CITIES, GIVEN_NAMES, SURNAMES

from ..data import delete_contacts_by_phone, ensure_actors
from ..runner import BenchFailure, Result

PHONE_PREFIX = "+86137"
PHONE_END = "+86138"
HEADERS = ["姓名", "手机号", "邮箱", "城市", "标签", "来源"]
TAGS = ["甜", "辣", "咸", "高", "中", "低", "护肤", "母婴", "健身", "美食", "旅行"]
SOURCES = ["好友", "社群", "公众号", "小程序", "门店"]
BASELINE_TABLE = "bench_import_copy"


def write_csv(path: Path, rows: int, *, seed: int = 7) -> None:
    """The file, streamed: name, CN mobile (137 + 8 digits), email for 30%, city, 0–3 tags, source."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADERS)
        batch = []
        for i in range(rows):
            tags = "、".join(rng.sample(TAGS, rng.randrange(4)))
            batch.append((
                rng.choice(SURNAMES) + rng.choice(GIVEN_NAMES), f"137{i:08d}",
                f"u{i}@example.com" if rng.randrange(10) < 3 else "", rng.choice(CITIES), tags, rng.choice(SOURCES),
            ))  # fmt: skip
            if len(batch) == 10_000:
                writer.writerows(batch)
                batch.clear()
        writer.writerows(batch)


def own_contacts():
    return Contact.objects.exclude(phone="").filter(phone__gte=PHONE_PREFIX, phone__lt=PHONE_END)


def check_database_is_ours() -> None:
    others = Contact.objects.count() - own_contacts().count()
    if others:
        raise BenchFailure(
            f"bench import needs a database without other contacts, and this one holds {others}: "
            "run it on a database of its own (see scrm/bench/scenarios/imports.py)"
        )


def clear_own_contacts() -> None:
    delete_contacts_by_phone(PHONE_PREFIX, PHONE_END)
    vacuum()


def vacuum() -> None:
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with connection.cursor() as cursor:
            for model in (Contact, ContactTag):
                cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_import(path: Path, actor) -> tuple[float, float | None, ImportJob]:
    job = ImportJob.objects.create(
        kind=ImportJob.Kind.CONTACTS, status=JobStatus.QUEUED, created_by=actor, original_name=path.name,
        file_format="csv", encoding="utf-8-sig", headers=HEADERS,
        mapping=guess_mapping(HEADERS, ImportJob.Kind.CONTACTS, []),
    )  # fmt: skip
    job.file.name = str(path.relative_to(settings.MEDIA_ROOT))
    job.save(update_fields=["file"])
    _reset_peak_rss()
    started = time.perf_counter()
    import_run(job_id=job.pk)
    seconds = time.perf_counter() - started
    job.refresh_from_db()
    if job.status != JobStatus.DONE or job.failed_count:
        raise BenchFailure(
            f"import {job.pk} ended {job.status} with {job.failed_count} failed rows: {job.error_message}"
        )
    return seconds, _peak_rss_mb(), job


def copy_baseline(path: Path) -> float:
    """Seconds for COPY of the file into a bare table (PostgreSQL); an executemany INSERT elsewhere."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {BASELINE_TABLE}")
        cursor.execute(
            f"CREATE TABLE {BASELINE_TABLE} ({', '.join(f'c{i} text' for i in range(len(HEADERS)))})"
        )
        started = time.perf_counter()
        if connection.vendor == "postgresql":
            with (
                open(path, "rb") as fh,
                cursor.cursor.copy(f"COPY {BASELINE_TABLE} FROM STDIN (FORMAT csv, HEADER)") as copy,
            ):
                while block := fh.read(1 << 20):
                    copy.write(block)
        else:
            with open(path, encoding="utf-8", newline="") as fh:
                reader = csv.reader(fh)
                next(reader)
                marks = ", ".join(["%s"] * len(HEADERS))
                cursor.executemany(f"INSERT INTO {BASELINE_TABLE} VALUES ({marks})", list(reader))
        seconds = time.perf_counter() - started
        cursor.execute(f"DROP TABLE {BASELINE_TABLE}")
    return seconds


def run(contacts: int, *, runs: int) -> list[Result]:
    check_database_is_ours()
    actors = ensure_actors()
    path = Path(settings.MEDIA_ROOT) / "bench" / f"import-{contacts}.csv"
    if not path.exists():
        write_csv(path, contacts)
    empty, again, baseline = [], [], []
    for _round in range(max(runs, 1)):
        clear_own_contacts()
        seconds, rss, job = timed_import(path, actors.admin)
        if job.created_count != contacts:
            raise BenchFailure(f"import into an empty database created {job.created_count}, not {contacts}")
        empty.append((seconds, rss))
        vacuum()  # as autovacuum would after a million inserts
        seconds, rss, job = timed_import(path, actors.admin)
        if job.unchanged_count != contacts:
            raise BenchFailure(f"the second import left {job.unchanged_count} rows unchanged, not {contacts}")
        again.append((seconds, rss))
        baseline.append(copy_baseline(path))
    base_ms = statistics.median(baseline) * 1000
    return [_result("import_empty", empty, contacts, base_ms), _result("import_again", again, contacts, base_ms),
            Result("copy_baseline", base_ms, per_s=contacts / (base_ms / 1000) if base_ms else None)]  # fmt: skip


def _result(name: str, rounds: list[tuple[float, float | None]], rows: int, base_ms: float) -> Result:
    seconds = statistics.median(s for s, _rss in rounds)
    peaks = [rss for _s, rss in rounds if rss is not None]
    return Result(name, seconds * 1000, baseline_ms=base_ms, per_s=rows / seconds if seconds else None,
                  peak_rss_mb=max(peaks) if peaks else None)  # fmt: skip


run.own_data = True
