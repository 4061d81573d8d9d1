"""The people who work SOP tasks and watch results: the inbox (everyone with sop.work_touchpoints), the team's
tasks with reassignment (managers, admins) and the results per template and step. Thin function views:
access helper -> form -> service -> redirect or partial."""

import json

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from . import work_services as services
from .models import SopTemplate
from .selectors import (
    day_bounds,
    inbox_for,
    overdue_count,
    results_overview,
    task_for_user,
    team_summary,
    team_tasks,
    template_results,
)


def _require(user, perm: str) -> None:
    if not user.has_perm(perm):
        raise Http404


def _toast(response: HttpResponse, message: str, level: str = "success", **events) -> HttpResponse:
    response["HX-Trigger"] = json.dumps({"toast": {"message": str(message), "level": level}, **events})
    return response


class OutcomeForm(forms.Form):
    outcome = forms.CharField(
        label=gettext_lazy("Outcome"), max_length=services.OUTCOME_MAX, required=False, strip=True
    )


class ReassignForm(forms.Form):
    ids = forms.TypedMultipleChoiceField(coerce=int, choices=[], error_messages={"required": ""})
    assignee = forms.TypedChoiceField(coerce=int, choices=[], label=gettext_lazy("Give to"))

    def __init__(self, *args, task_ids, assignees, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["ids"].choices = [(pk, pk) for pk in task_ids]
        self.fields["ids"].error_messages["required"] = _("Select at least one task.")
        self.fields["ids"].error_messages["invalid_choice"] = _("Some selected tasks cannot be reassigned.")
        self.fields["assignee"].choices = [(u.pk, str(u)) for u in assignees]
        self.fields["assignee"].error_messages["invalid_choice"] = _("Choose someone of your team.")


# --- the inbox ------------------------------------------------------------------------------------------


@require_GET
def inbox(request):
    _require(request.user, "sop.work_touchpoints")
    ctx = inbox_for(request.user)
    ctx["can_see_team"] = request.user.has_perm("sop.reassign_touchpoints")
    return render(request, "sop/inbox.html", ctx)


def _work(request, pk, service):
    _require(request.user, "sop.work_touchpoints")
    task = task_for_user(request.user, pk)
    form = OutcomeForm(request.POST)
    if not form.is_valid():
        message = " ".join(str(e) for errs in form.errors.values() for e in errs)
        if not request.htmx:
            messages.error(request, message)
            return redirect("sop_inbox")
        return _toast(HttpResponse(status=422), message, "danger")
    try:
        result = service(actor=request.user, touchpoint=task, outcome=form.cleaned_data["outcome"])
    except services.NotAllowed:
        raise Http404 from None
    level = "success" if result.changed else "warning"
    if not request.htmx:
        getattr(messages, level)(request, result.message)
        return redirect("sop_inbox")
    task = task_for_user(request.user, pk)
    task.overdue = task.due_at < day_bounds(request.user)[0]
    response = render(request, "sop/inbox.html#task", {"task": task})
    return _toast(response, result.message, level, **{"sop-task-changed": True})


@require_POST
def task_done(request, pk):
    return _work(request, pk, services.touchpoint_mark_done)


@require_POST
def task_skip(request, pk):
    return _work(request, pk, services.touchpoint_skip)


@require_GET
def inbox_badge(request):
    """The nav badge, refreshed after a task is worked (htmx)."""
    _require(request.user, "sop.work_touchpoints")
    return render(request, "sop/inbox_badge.html", {"sop_overdue_count": overdue_count(request.user)})


# --- the team's tasks --------------------------------------------------------------------------------------


def _team_filters(params, prefix: str = "") -> tuple[bool, int | None, str]:
    show_all = params.get(f"{prefix}show") == "open"
    raw = (params.get(f"{prefix}assignee") or "").strip()
    assignee_id = 0 if raw == "none" else int(raw) if raw.isdigit() else None
    return not show_all, assignee_id, raw if assignee_id is not None else ""


@require_GET
def team(request):
    _require(request.user, "sop.reassign_touchpoints")
    overdue_only, assignee_id, assignee_raw = _team_filters(request.GET)
    tasks = team_tasks(request.user, overdue_only=overdue_only, assignee_id=assignee_id)
    ctx = {
        "summary": team_summary(request.user),
        "tasks": tasks,
        "assignees": services.assignees_for(request.user),
        "overdue_only": overdue_only,
        "assignee_filter": assignee_raw,
        "back": request.get_full_path(),
        "limit_reached": len(tasks) >= 500,
    }
    return render(request, "sop/team.html", ctx)


@require_POST
def team_reassign(request):
    _require(request.user, "sop.reassign_touchpoints")
    overdue_only, assignee_id, assignee_raw = _team_filters(request.POST, prefix="filter_")
    back = reverse("sop_team")
    query = {k: v for k, v in (("show", "" if overdue_only else "open"), ("assignee", assignee_raw)) if v}
    if query:
        back += "?" + urlencode(query)
    requested = [int(v) for v in request.POST.getlist("ids") if v.isdigit()]
    assignees = list(services.assignees_for(request.user))
    form = ReassignForm(request.POST, task_ids=requested, assignees=assignees)
    if not form.is_valid() or len(requested) != len(request.POST.getlist("ids")):
        errors = [str(e) for errs in form.errors.values() for e in errs if str(e)]
        messages.error(request, " ".join(errors) or _("Some selected tasks cannot be reassigned."))
        return redirect(back)
    assignee = next(u for u in assignees if u.pk == form.cleaned_data["assignee"])
    try:
        moved = services.touchpoints_reassign(
            actor=request.user, touchpoint_ids=form.cleaned_data["ids"], assignee=assignee
        )
    except services.NotAllowed:
        messages.error(request, _("Some selected tasks are not yours to reassign. Nothing was changed."))
        return redirect(back)
    messages.success(
        request,
        _("%(moved)d of %(selected)d tasks given to %(name)s.")
        % {"moved": moved, "selected": len(form.cleaned_data["ids"]), "name": assignee},
    )
    return redirect(back)


# --- results -------------------------------------------------------------------------------------------------


@require_GET
def results(request):
    _require(request.user, "sop.view_sop_results")
    templates = list(SopTemplate.objects.all())
    overview = results_overview(templates)
    rows = [{"template": t, **overview[t.pk]} for t in templates]
    return render(request, "sop/results.html", {"rows": rows})


@require_GET
def results_detail(request, pk):
    _require(request.user, "sop.view_sop_results")
    template = get_object_or_404(SopTemplate, pk=pk)
    numbers = template_results(template)
    funnel = [{"name": _("Enrolled"), "value": numbers["headline"]["enrolled"]}]
    funnel += [
        {"name": f"{row['step'].position}. {row['step'].name}", "value": row["delivered"]}
        for row in numbers["steps"]
    ]
    chart = {
        "funnel": funnel,
        "series": _("Customers reached"),
        "empty": _("Nobody enrolled yet"),
    }
    return render(request, "sop/results_detail.html", {"template": template, "chart": chart, **numbers})
