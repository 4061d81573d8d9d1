"""Import pages: upload -> mapping -> dry run -> progress (htmx polling) -> result with the failed rows file.

Only users with contacts.import_data (managers, admins) reach any of these; for everyone else every import
URL is a 404. A job is seen by the user who started it (and by admins).
"""

from django import forms
from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from accounts.roles import is_admin

from .custom_fields import active_fields
from .imports import ImportFileError, import_create, import_preview, import_set_mapping, import_start
from .imports.mapping import targets_for
from .models import ImportJob, JobStatus

RECENT_IMPORTS = 20


class UploadForm(forms.Form):
    kind = forms.ChoiceField(
        label=gettext_lazy("The file holds"), choices=ImportJob.Kind.choices, initial=ImportJob.Kind.CONTACTS,
        widget=forms.RadioSelect,
    )  # fmt: skip
    file = forms.FileField(
        label=gettext_lazy("File"),
        help_text=gettext_lazy("CSV (UTF-8 or GBK) or Excel .xlsx; the first row names the columns."),
    )


def _require_import_permission(user) -> None:
    if not user.has_perm("contacts.import_data"):
        raise Http404


def _job_for(user, pk) -> ImportJob:
    """The job if `user` may see it (its creator or an admin), else 404."""
    _require_import_permission(user)
    job = get_object_or_404(ImportJob.objects.select_related("created_by"), pk=pk)
    if job.created_by_id != user.pk and not is_admin(user):
        raise Http404
    return job


def _percent(job: ImportJob) -> int:
    if job.status == JobStatus.DONE:
        return 100
    if not job.total_rows:
        return 0
    return min(99, int(job.processed_rows * 100 / job.total_rows))


@require_http_methods(["GET", "POST"])
def import_list(request):
    _require_import_permission(request.user)
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = import_create(
                actor=request.user, upload=form.cleaned_data["file"], kind=form.cleaned_data["kind"]
            )
        except ImportFileError as exc:
            form.add_error("file", str(exc))
        else:
            return redirect("import_mapping", pk=job.pk)
    jobs = ImportJob.objects.select_related("created_by")
    if not is_admin(request.user):
        jobs = jobs.filter(created_by=request.user)
    status = 400 if form.errors else 200
    ctx = {"form": form, "jobs": jobs[:RECENT_IMPORTS], "show_owner": is_admin(request.user)}
    return render(request, "contacts/import_list.html", ctx, status=status)


@require_http_methods(["GET", "POST"])
def import_mapping(request, pk):
    job = _job_for(request.user, pk)
    if job.status != JobStatus.PENDING:
        return redirect("import_detail", pk=job.pk)
    targets = [(name, label) for name, label, _aliases in targets_for(job.kind, active_fields())]
    mapping, errors = job.mapping, []
    if request.method == "POST":
        mapping = {header: request.POST.get(f"col_{i}", "") for i, header in enumerate(job.headers)}
        errors = import_set_mapping(job=job, mapping=mapping)
        if not errors:
            return redirect("import_preview", pk=job.pk)
    columns = [
        {"index": i, "header": header, "target": mapping.get(header, "")}
        for i, header in enumerate(job.headers)
    ]
    ctx = {"job": job, "columns": columns, "targets": targets, "errors": errors}
    return render(request, "contacts/import_mapping.html", ctx, status=400 if errors else 200)


@require_http_methods(["GET", "POST"])
def import_preview_page(request, pk):
    job = _job_for(request.user, pk)
    if job.status != JobStatus.PENDING:
        return redirect("import_detail", pk=job.pk)
    if request.method == "POST":
        import_start(job=job)
        messages.success(request, _("The import has started."))
        return redirect("import_detail", pk=job.pk)
    try:
        rows = import_preview(job=job)
    except ImportFileError as exc:
        messages.error(request, str(exc))
        return redirect("import_mapping", pk=job.pk)
    mapped = [
        (i, header, job.mapping[header]) for i, header in enumerate(job.headers) if job.mapping.get(header)
    ]
    labels = dict((name, label) for name, label, _aliases in targets_for(job.kind, active_fields()))
    ctx = {
        "job": job,
        "columns": [{"header": header, "label": labels.get(target, target)} for _i, header, target in mapped],
        "rows": [{"row": row, "cells": _preview_cells(row, mapped)} for row in rows],
        "failed": sum(1 for row in rows if row.status == "failed"),
    }
    return render(request, "contacts/import_preview.html", ctx)


def _preview_cells(row, mapped) -> list[dict]:
    """Per mapped column: the value as it will be saved and, when that differs, the cell as written."""
    cells = []
    for index, _header, target in mapped:
        raw = row.cells[index] if index < len(row.cells) else ""
        saved = row.saved.get(target, raw) if row.status != "failed" else raw
        cells.append({"saved": saved, "raw": raw if raw and raw != saved else ""})
    return cells


@require_GET
def import_detail(request, pk):
    job = _job_for(request.user, pk)
    if job.status == JobStatus.PENDING:
        return redirect("import_mapping", pk=job.pk)
    ctx = {
        "job": job,
        "percent": _percent(job),
        "running": job.status in (JobStatus.QUEUED, JobStatus.RUNNING),
    }
    if request.htmx:
        return render(request, "contacts/import_detail.html#progress", ctx)
    return render(request, "contacts/import_detail.html", ctx)


@require_GET
def import_errors(request, pk):
    job = _job_for(request.user, pk)
    if not job.error_file:
        raise Http404
    name = f"{job.original_name.rsplit('.', 1)[0]}-errors.csv"
    return FileResponse(job.error_file.open("rb"), as_attachment=True, filename=name, content_type="text/csv")
