"""Contact export: the contact list as filtered, written by a background task (the `bulk` queue).

The filter is the list's own query string, re-validated with ContactFilterForm for the user who started
the export and scoped by contacts_visible_to(user) — an export never shows more than the list did.
Rows are streamed in keyset chunks by id (memory stays flat at a million rows); the headers are the
ones the importer guesses, so an export imported again changes nothing.
"""

import csv
import os
import tempfile
from collections import Counter, defaultdict
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.db import transaction
from django.db.models import QuerySet
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext as _

from .custom_fields import active_fields
from .forms import ContactFilterForm
from .imports.reading import FORMULA_STARTS  # "+86…" phones and "-3" numbers are harmless
from .list_scopes import apply_list_scopes
from .models import ContactTag, ExportJob, Gender, JobStatus, Tier
from .selectors import contacts_visible_to, filter_contacts
from .services import NotAllowed, audit_record

CHUNK_SIZE = 2000
FORMATS = ("csv", "xlsx")
# The importer guesses these headers; keep them identical (an export must re-import as a no-op).
BASE_HEADERS = [
    "姓名",
    "手机号",
    "邮箱",
    "外部联系人ID",
    "性别",
    "生日",
    "城市",
    "来源",
    "归属员工",
    "等级",
    "标签",
]
ACTIVITY_HEADERS = ["订单数", "累计消费", "最近活跃"]
GENDER_LABELS = {Gender.FEMALE: "女", Gender.MALE: "男", Gender.UNKNOWN: ""}
TAG_SEPARATOR = ","
_COLUMNS = (
    "id", "name", "phone", "email", "external_userid", "gender", "birthday", "city", "source",
    "owner_id", "tier_id", "custom_fields", "order_count", "total_spent", "last_active_at",
)  # fmt: skip


# --- starting --------------------------------------------------------------------------------------


def clean_query(query: str) -> str:
    """The list's filter query string without paging (an export is the whole filtered list)."""
    params = QueryDict(query or "", mutable=True)
    for key in ("cursor", "p", "sort"):
        params.pop(key, None)
    return params.urlencode()


@transaction.atomic
def export_start(*, actor, file_format: str, query: str) -> ExportJob:
    """Create the job and enqueue it after commit. Raises NotAllowed without the export permission."""
    if not actor.has_perm("contacts.export_contacts"):
        raise NotAllowed("export_contacts")
    if file_format not in FORMATS:
        raise ValueError(file_format)
    job = ExportJob.objects.create(created_by=actor, query=clean_query(query), file_format=file_format)
    from .tasks import export_run_task  # tasks import this module

    transaction.on_commit(lambda: export_run_task.delay(job.pk))
    return job


# --- running ---------------------------------------------------------------------------------------


def export_queryset(job: ExportJob) -> QuerySet:
    """The contacts the export covers: the list filters re-validated for the job's creator."""
    user = job.created_by
    if user is None or not user.is_active or not user.has_perm("contacts.export_contacts"):
        raise NotAllowed("export_contacts")
    query = QueryDict(job.query or "")
    form = ContactFilterForm(query, user=user)
    form.is_valid()  # invalid values are dropped, exactly as on the list page
    scoped = apply_list_scopes(user, contacts_visible_to(user), query)  # e.g. a segment's members
    return filter_contacts(scoped.contacts, form.filters())


def export_headers(fields) -> list[str]:
    return [*BASE_HEADERS, *(f.label_zh for f in fields), *ACTIVITY_HEADERS]


def _owner_labels() -> dict[int, str]:
    """Owner column: the display name where it names one user, else the username (both re-import)."""
    users = list(get_user_model().objects.values_list("pk", "username", "display_name"))
    taken = Counter(name for _pk, _username, name in users if name)
    taken.update(username for _pk, username, _name in users)
    return {pk: name if name and taken[name] == 1 else username for pk, username, name in users}


def _custom_cell(value) -> str:
    if isinstance(value, list):
        return TAG_SEPARATOR.join(str(v) for v in value)
    return "" if value is None else str(value)


def _local_time(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _chunks(qs: QuerySet):
    """Keyset iteration by id: each chunk is one index range scan; nothing is held between chunks."""
    last_id = 0
    while True:
        rows = list(qs.filter(id__gt=last_id).order_by("id").values_list(*_COLUMNS)[:CHUNK_SIZE])
        if not rows:
            return
        yield rows
        last_id = rows[-1][0]


def _rows(qs: QuerySet, fields, lookups):
    for chunk in _chunks(qs):
        tags = defaultdict(list)
        for contact_id, tag_name in (
            ContactTag.objects.filter(contact_id__in=[row[0] for row in chunk])
            .order_by("contact_id", "tag__group__position", "tag__group__name", "tag__name")
            .values_list("contact_id", "tag__name")
        ):
            tags[contact_id].append(tag_name)
        yield [_row(values, tags.get(values[0], []), fields, lookups) for values in chunk]


def _row(values, tags: list[str], fields, lookups) -> list:
    owners, tiers = lookups
    (
        _pk,
        name,
        phone,
        email,
        ext,
        gender,
        birthday,
        city,
        source,
        owner_id,
        tier_id,
        custom,
        orders,
        spent,
        active,
    ) = values
    custom = custom or {}
    return [
        name, phone, email, ext, GENDER_LABELS.get(gender, ""), birthday.isoformat() if birthday else "",
        city, source, owners.get(owner_id, "") if owner_id else "", tiers.get(tier_id, "") if tier_id else "",
        TAG_SEPARATOR.join(tags),
        *(_custom_cell(custom.get(f.key)) for f in fields),
        orders, spent, _local_time(active),
    ]  # fmt: skip


def _safe_text(value):
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _CsvWriter:
    def __init__(self, path):
        # UTF-8 with BOM: Excel on Chinese Windows otherwise opens it as GBK and garbles every name.
        self.handle = open(path, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115
        self.writer = csv.writer(self.handle)

    def write(self, row):
        self.writer.writerow([_safe_text(v) for v in row])

    def close(self):
        self.handle.close()


class _XlsxWriter:
    def __init__(self, path):
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell

        self.path, self.cell_class = path, WriteOnlyCell
        self.book = Workbook(write_only=True)
        self.sheet = self.book.create_sheet("contacts")

    def _cell(self, value):
        if isinstance(value, str) and value.startswith("="):
            cell = self.cell_class(self.sheet, value=value)
            cell.data_type = "s"  # text, never a formula
            return cell
        return value

    def write(self, row):
        self.sheet.append([self._cell(v) for v in row])

    def close(self):
        self.book.save(self.path)


def _claim(export_id: int) -> ExportJob | None:
    """Move a queued job to running (a job redelivered after a lost worker restarts from scratch)."""
    claimed = ExportJob.objects.filter(pk=export_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(
        status=JobStatus.RUNNING, processed_rows=0, error_message=""
    )
    return ExportJob.objects.select_related("created_by").get(pk=export_id) if claimed else None


def export_run(*, export_id: int) -> ExportJob | None:
    """Write the file, then mark the job done and audit it. Safe to run twice: a finished job is left alone."""
    job = _claim(export_id)
    if job is None:
        return None
    fd, path = tempfile.mkstemp(suffix=f".{job.file_format}")
    os.close(fd)
    try:
        count = _write_file(job, path)
        _finish(job, path, count)
    except Exception as exc:
        message = (
            _("You no longer have permission to export contacts.")
            if isinstance(exc, NotAllowed)
            else str(exc)
        )
        ExportJob.objects.filter(pk=job.pk).update(
            status=JobStatus.FAILED,
            error_message=message[:1000] or exc.__class__.__name__,
            finished_at=timezone.now(),
        )
        if not isinstance(exc, NotAllowed):
            raise
    finally:
        if os.path.exists(path):
            os.unlink(path)
    job.refresh_from_db()
    return job


def _write_file(job: ExportJob, path: str) -> int:
    qs = export_queryset(job)
    fields = active_fields()
    ExportJob.objects.filter(pk=job.pk).update(total_rows=qs.count())
    lookups = (_owner_labels(), dict(Tier.objects.values_list("pk", "name")))
    writer = _CsvWriter(path) if job.file_format == "csv" else _XlsxWriter(path)
    count = 0
    try:
        writer.write(export_headers(fields))
        for rows in _rows(qs, fields, lookups):
            for row in rows:
                writer.write(row)
            count += len(rows)
            ExportJob.objects.filter(pk=job.pk).update(processed_rows=count)
    finally:
        writer.close()
    return count


@transaction.atomic
def _finish(job: ExportJob, path: str, count: int) -> None:
    now = timezone.now()
    with open(path, "rb") as handle:
        job.file.save(f"contacts-{job.pk}.{job.file_format}", File(handle), save=False)
    job.status, job.processed_rows, job.total_rows = JobStatus.DONE, count, count
    job.finished_at, job.expires_at = now, now + timedelta(hours=settings.EXPORT_LINK_TTL_HOURS)
    job.save(update_fields=["file", "status", "processed_rows", "total_rows", "finished_at", "expires_at"])
    audit_record(
        actor=job.created_by,
        action="contacts.exported",
        obj=job,
        after={"query": job.query, "rows": count, "format": job.file_format},
    )


# --- reading and cleaning up -------------------------------------------------------------------------


def export_filename(job: ExportJob) -> str:
    """contacts-YYYYMMDD-HHMM.csv, in the current (the user's) time zone."""
    return f"contacts-{timezone.localtime(job.created_at):%Y%m%d-%H%M}.{job.file_format}"


def export_is_expired(job: ExportJob, now=None) -> bool:
    now = now or timezone.now()
    return not job.file or (job.expires_at is not None and job.expires_at <= now)


def exports_of(user) -> QuerySet[ExportJob]:
    return ExportJob.objects.filter(created_by=user).order_by("-created_at", "-id")


def export_cleanup(*, now=None) -> int:
    """Delete the files of expired exports (the rows stay as history). Returns how many files went."""
    now = now or timezone.now()
    removed = 0
    for job in ExportJob.objects.filter(expires_at__lte=now).exclude(file="").iterator(chunk_size=500):
        job.file.delete(save=False)
        ExportJob.objects.filter(pk=job.pk).update(file="")
        removed += 1
    return removed
