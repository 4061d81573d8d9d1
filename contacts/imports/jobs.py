"""Import jobs: upload -> mapping -> dry run -> run (a Celery task on `bulk`) -> result and error file.

The file is read as a stream in chunks of CHUNK_ROWS rows; each chunk is applied in its own transaction,
together with the job's progress and counts, so a row is either applied and counted or reported failed.
"""

import csv
import functools
import logging
import tempfile
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from ..custom_fields import active_fields
from ..models import EventKind, Gender, ImportJob, JobStatus, Source, Tier
from ..services import audit_record
from .event_upsert import EventImporter
from .mapping import CUSTOM_PREFIX, guess_mapping, mapping_errors
from .reading import ImportFileError, RowSource, check_size, inspect_file
from .rows import ContactRowParser, EventRowParser, RowError
from .upsert import ChunkResult, ContactUpserter

CHUNK_ROWS = 10_000
PREVIEW_ROWS = 20
logger = logging.getLogger(__name__)


@transaction.atomic
def import_create(*, actor, upload, kind: str) -> ImportJob:
    """Store an upload as a PENDING job with its headers and a guessed mapping; ImportFileError (nothing
    stored) for an empty, oversized or unreadable file."""
    check_size(upload.size)
    if kind not in ImportJob.Kind.values:
        raise ImportFileError(_("Choose what the file holds."))
    job = ImportJob(
        kind=kind, created_by=actor, original_name=Path(upload.name).name[:255],
        language=translation.get_language() or "",
    )  # fmt: skip
    job.file.save(Path(upload.name).name, upload, save=False)
    try:
        job.file_format, job.encoding = inspect_file(Path(job.file.path), job.original_name)
        source = RowSource(Path(job.file.path), job.file_format, job.encoding)
        job.headers, rows = source.header_and_rows()
        if next(rows, None) is None:
            raise ImportFileError(_("The file has a header row but no data rows."))
        job.total_rows = source.estimated_rows()
    except ImportFileError:
        job.file.delete(save=False)
        raise
    job.mapping = guess_mapping(job.headers, kind, active_fields())
    job.save()
    return job


def import_set_mapping(*, job: ImportJob, mapping: dict[str, str]) -> list[str]:
    """Save the mapping (header -> target) if it is complete; returns the problems otherwise."""
    mapping = {header: mapping.get(header, "") for header in job.headers}
    errors = mapping_errors(mapping, job.kind, active_fields())
    if not errors:
        job.mapping = mapping
        job.save(update_fields=["mapping"])
    return errors


def _tz_of(user) -> ZoneInfo:
    return ZoneInfo(getattr(user, "time_zone", "") or settings.TIME_ZONE)


def _engine(job: ImportJob, *, portable: bool = False):
    headers, mapping, actor = job.headers, job.mapping, job.created_by
    if job.kind == ImportJob.Kind.CONTACTS:
        return ContactRowParser(actor=actor, headers=headers, mapping=mapping), ContactUpserter(
            actor=actor, portable=portable
        )
    return EventRowParser(headers=headers, mapping=mapping, tz=_tz_of(actor)), EventImporter(
        actor=actor, job_id=job.pk
    )


def _parse(parser, numbered_rows) -> tuple[list, list[RowError]]:
    parsed, failed = [], []
    for line, cells in numbered_rows:
        try:
            parsed.append(parser.parse(line, cells))
        except RowError as error:
            failed.append(error)
    return parsed, failed


@dataclass
class PreviewRow:
    line: int
    cells: list[str]
    status: str  # created | updated | unchanged | failed
    reason: str = ""
    saved: dict[str, str] = field(default_factory=dict)  # mapping target -> the value as it will be saved


def _saved_values(parsed: list, kind: str, tz: ZoneInfo) -> dict[int, dict[str, str]]:
    """line -> target -> display text of what the import stores: the phone in E.164, the email lower-cased,
    choices, owners and tiers by their names, dates as dates; what a person checks before starting."""
    if kind == ImportJob.Kind.CONTACTS:
        owner_ids = {row.values["owner_id"] for row in parsed if row.values.get("owner_id")}
        owners = {user.pk: str(user) for user in get_user_model().objects.filter(pk__in=owner_ids)}
        tiers = dict(Tier.objects.values_list("pk", "name"))
        return {row.line: _contact_display(row, owners, tiers) for row in parsed}
    return {row.line: _event_display(row, tz) for row in parsed}


def _contact_display(row, owners: dict, tiers: dict) -> dict[str, str]:
    values = row.values
    shown = {name: str(values[name]) for name in ("name", "phone", "email", "external_userid", "city", "birthday")
             if values.get(name)}  # fmt: skip
    if "gender" in values:
        shown["gender"] = str(Gender(values["gender"]).label)
    if "source" in values:
        shown["source"] = str(Source(values["source"]).label)
    if values.get("owner_id"):
        shown["owner"] = owners.get(values["owner_id"], "")
    if values.get("tier_id"):
        shown["tier"] = tiers.get(values["tier_id"], "")
    if row.tags:
        shown["tags"] = "、".join(row.tags)
    for key, value in row.custom.items():
        shown[CUSTOM_PREFIX + key] = "、".join(value) if isinstance(value, list) else str(value)
    return shown


def _event_display(row, tz: ZoneInfo) -> dict[str, str]:
    shown = {name: value for name, value in row.keys}
    shown["kind"] = str(EventKind(row.kind).label)
    shown["occurred_at"] = row.occurred_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    if row.amount is not None:
        shown["amount"] = f"¥{row.amount}"
    if row.order_id:
        shown["order_id"] = row.order_id
    return shown


def import_preview(*, job: ImportJob, limit: int = PREVIEW_ROWS) -> list[PreviewRow]:
    """The first rows as the import would save them, applied in a transaction that is rolled back."""
    parser, engine = _engine(job)
    _headers, rows = RowSource(Path(job.file.path), job.file_format, job.encoding).header_and_rows()
    sample = list(islice(rows, limit))
    parsed, failed = _parse(parser, sample)
    with transaction.atomic():
        result = engine.apply(parsed) if parsed else ChunkResult()
        transaction.set_rollback(True)
    reasons = {error.line: error.reason for error in failed + result.failed}
    saved = _saved_values(
        [row for row in parsed if row.line not in reasons], job.kind, _tz_of(job.created_by)
    )
    return [
        PreviewRow(
            line,
            cells,
            "failed" if line in reasons else result.statuses.get(line, ""),
            reasons.get(line, ""),
            saved.get(line, {}),
        )  # fmt: skip
        for line, cells in sample
    ]


def import_start(*, job: ImportJob) -> bool:
    """Queue the job once (PENDING -> QUEUED) and hand it to the worker after commit."""
    with transaction.atomic():
        queued = ImportJob.objects.filter(pk=job.pk, status=JobStatus.PENDING).update(status=JobStatus.QUEUED)
        if queued:
            from ..tasks import import_run_task

            transaction.on_commit(lambda: import_run_task.delay(job.pk))
    job.refresh_from_db()
    return bool(queued)


class ErrorFile:
    """The failed rows with their original columns, the row number and the reason, as UTF-8 CSV (with a BOM,
    so Excel shows the Chinese)."""

    def __init__(self, headers: list[str]):
        self.handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 — written chunk by chunk, closed in attach()
            "w", encoding="utf-8-sig", newline="", suffix=".csv", delete=False
        )
        self.writer = csv.writer(self.handle)
        self.writer.writerow([_("Row"), *headers, _("Reason")])
        self.width = len(headers)
        self.rows = 0

    def write(self, errors: list[RowError]) -> None:
        for error in sorted(errors, key=lambda e: e.line):
            cells = (list(error.cells) + [""] * self.width)[: self.width]
            self.writer.writerow([error.line, *cells, error.reason])
            self.rows += 1

    def attach(self, job: ImportJob) -> None:
        self.handle.close()
        path = Path(self.handle.name)
        try:
            if self.rows:
                with open(path, "rb") as fh:
                    job.error_file.save(f"import-{job.pk}-errors.csv", File(fh), save=False)
        finally:
            path.unlink(missing_ok=True)


def _record_progress(job_id: int, processed: int, result: ChunkResult, *, failed_here: int) -> None:
    ImportJob.objects.filter(pk=job_id).update(
        processed_rows=F("processed_rows") + processed,
        created_count=F("created_count") + result.created,
        updated_count=F("updated_count") + result.updated,
        unchanged_count=F("unchanged_count") + result.unchanged,
        failed_count=F("failed_count") + len(result.failed) + failed_here,
    )


def import_run(*, job_id: int, chunk_rows: int = CHUNK_ROWS, portable: bool = False) -> ImportJob | None:
    """Run a QUEUED job to the end. A job that is already running or finished is left alone (the task may be
    delivered twice); a file that turns out unreadable fails the job with its message."""
    claimed = ImportJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    with translation.override(job.language or settings.LANGUAGE_CODE):
        _run_to_the_end(job, chunk_rows=chunk_rows, portable=portable)
    return job


def _run_to_the_end(job: ImportJob, *, chunk_rows: int, portable: bool) -> None:
    try:
        _run_chunks(job, chunk_rows=chunk_rows, portable=portable)
    except ImportFileError as exc:
        _finish(job, JobStatus.FAILED, str(exc))
    except Exception:
        logger.exception("import %s failed", job.pk)
        _finish(
            job,
            JobStatus.FAILED,
            _("The import stopped because of an internal error; rows counted were saved."),
        )


def _run_chunks(job: ImportJob, *, chunk_rows: int, portable: bool) -> None:
    parser, engine = _engine(job, portable=portable)
    headers, rows = RowSource(Path(job.file.path), job.file_format, job.encoding).header_and_rows()
    errors = ErrorFile(headers)
    try:
        while chunk := list(islice(rows, chunk_rows)):
            parsed, failed = _parse(parser, chunk)
            progress = functools.partial(_record_progress, job.pk, len(chunk), failed_here=len(failed))
            result = engine.apply(parsed, on_commit_progress=progress)
            errors.write(failed + result.failed)
    finally:
        errors.attach(job)
    _finish(job, JobStatus.DONE, "")


def _finish(job: ImportJob, status: str, message: str) -> None:
    fresh = ImportJob.objects.get(pk=job.pk)
    job.status, job.error_message, job.finished_at = status, message, timezone.now()
    for name in ("processed_rows", "created_count", "updated_count", "unchanged_count", "failed_count"):
        setattr(job, name, getattr(fresh, name))
    if status == JobStatus.DONE:
        job.total_rows = job.processed_rows
    job.save(update_fields=["status", "error_message", "finished_at", "total_rows", "error_file", "processed_rows",
                            "created_count", "updated_count", "unchanged_count", "failed_count"])  # fmt: skip
    audit_record(
        actor=job.created_by, action="import.finished" if status == JobStatus.DONE else "import.failed", obj=job,
        after={"file": job.original_name, "kind": job.kind, "created": job.created_count,
               "updated": job.updated_count, "unchanged": job.unchanged_count, "failed": job.failed_count,
               **({"error": message} if message else {})},
    )  # fmt: skip
