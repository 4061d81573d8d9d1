"""Export pages: start from the contact list, watch progress, download until the link expires.

Only users with contacts.export_contacts (managers, admins) reach any of these; for everyone else every
export URL is a 404. A job is seen by the user who started it (and by admins).
"""

from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.roles import is_admin

from .exporting import FORMATS, export_filename, export_is_expired, export_start, exports_of
from .models import ExportJob, JobStatus

RECENT_EXPORTS = 20


def _require_export_permission(user) -> None:
    if not user.has_perm("contacts.export_contacts"):
        raise Http404


def _export_for(user, pk) -> ExportJob:
    """The job if `user` may see it (its creator or an admin), else 404."""
    _require_export_permission(user)
    job = get_object_or_404(ExportJob.objects.select_related("created_by"), pk=pk)
    if job.created_by_id != user.pk and not is_admin(user):
        raise Http404
    return job


def _percent(job: ExportJob) -> int:
    if job.status == JobStatus.DONE:
        return 100
    if not job.total_rows:
        return 0
    return min(100, int(job.processed_rows * 100 / job.total_rows))


@require_POST
def export_create(request):
    _require_export_permission(request.user)
    file_format = request.POST.get("file_format", "")
    if file_format not in FORMATS:
        messages.error(request, _("Choose CSV or Excel for the export."))
        return redirect("contact_list")
    job = export_start(actor=request.user, file_format=file_format, query=request.POST.get("query", ""))
    return redirect("export_detail", pk=job.pk)


@require_GET
def export_detail(request, pk):
    job = _export_for(request.user, pk)
    ctx = {
        "job": job,
        "percent": _percent(job),
        "running": job.status in (JobStatus.QUEUED, JobStatus.RUNNING),
        "expired": job.status == JobStatus.DONE and export_is_expired(job),
        "filename": export_filename(job),
    }
    template = "contacts/export_detail.html"
    if request.htmx and not request.htmx.boosted:
        template += "#progress"
    return render(request, template, ctx)


@require_GET
def export_download(request, pk):
    job = _export_for(request.user, pk)
    if job.status != JobStatus.DONE:
        raise Http404
    if export_is_expired(job):
        return render(request, "contacts/export_gone.html", {"job": job}, status=410)
    try:
        handle = job.file.open("rb")
    except FileNotFoundError:
        return render(request, "contacts/export_gone.html", {"job": job}, status=410)
    return FileResponse(handle, as_attachment=True, filename=export_filename(job))


@require_GET
def export_list(request):
    _require_export_permission(request.user)
    jobs = list(exports_of(request.user)[:RECENT_EXPORTS])
    rows = [
        {
            "job": job,
            "expired": job.status == JobStatus.DONE and export_is_expired(job),
            "percent": _percent(job),
        }
        for job in jobs
    ]
    return render(request, "contacts/export_list.html", {"rows": rows})
