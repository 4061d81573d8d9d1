"""SOP template pages (admins configure; managers read and enroll by hand): the list, a template with its
steps, the template and step forms with a live message preview, activation, the guards' settings, and manual
enrollment of a segment or of the contact list's selection. Thin function views: access helper -> form ->
service -> redirect or partial. Operators get 403 on all of them."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent, ValidationError
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.roles import is_admin, is_manager_or_admin
from contacts.selectors import contacts_visible_to
from segments.models import SegmentMembership
from segments.static_forms import contacts_by_ids

from . import describe, services
from .content import contact_contexts, content_errors, render_content, variable_help
from .forms import EnrollSegmentForm, EnrollSelectionForm, PreviewForm, SettingsForm, StepForm, TemplateForm
from .models import Enrollment, SopStep, SopTemplate, Trigger
from .selectors import sop_settings

PREVIEW_CONTACTS = 30


def _require_admin(user) -> None:
    if not is_admin(user):
        raise PermissionDenied


def _require_viewer(user) -> None:
    if not is_manager_or_admin(user):
        raise PermissionDenied


def _template(pk) -> SopTemplate:
    related = ("trigger_tag__group", "trigger_segment", "audience", "exit_tag", "created_by")
    return get_object_or_404(SopTemplate.objects.select_related(*related), pk=pk)


def _step(template: SopTemplate, step_pk) -> SopStep:
    return get_object_or_404(SopStep, pk=step_pk, template=template)


def _detail(template: SopTemplate):
    return redirect("sop_template_detail", pk=template.pk)


def _error_text(error: ValidationError) -> str:
    return " ".join(error.messages)


def _add_errors(form, error: ValidationError) -> None:
    """The service's errors on the form's fields (any key the form has no field for goes on top)."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.error_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _count(queryset):
    """A per-template count as a subquery (no join that multiplies rows)."""
    counted = queryset.filter(template=OuterRef("pk")).order_by().values("template").annotate(n=Count("id"))
    return Coalesce(Subquery(counted.values("n"), output_field=IntegerField()), 0)


# --- list and detail ------------------------------------------------------------------------------------


@require_GET
def template_list(request):
    _require_viewer(request.user)
    templates = SopTemplate.objects.select_related("trigger_tag__group", "trigger_segment").annotate(
        step_count=_count(SopStep.objects),
        active_runs=_count(Enrollment.objects.filter(status=Enrollment.Status.ACTIVE)),
        total_runs=_count(Enrollment.objects),
    )
    rows = [{"template": t, "trigger": describe.trigger_words(t)} for t in templates]
    return render(request, "sop/template_list.html", {"rows": rows, "can_edit": is_admin(request.user)})


def _steps_rows(template: SopTemplate) -> list[dict]:
    steps = list(template.steps.select_related("action_add_tag").order_by("position"))
    return [
        {
            "step": step,
            "timing": describe.step_timing(step),
            "channel": describe.channel_label(step.channel),
            "errors": content_errors(step.content),
            "first": i == 0,
            "last": i == len(steps) - 1,
        }
        for i, step in enumerate(steps)
    ]


def _detail_context(request, template: SopTemplate) -> dict:
    runs = Enrollment.objects.filter(template=template).aggregate(
        active=Count("id", filter=Q(status=Enrollment.Status.ACTIVE)), total=Count("id")
    )
    return {
        "template": template,
        "trigger": describe.trigger_words(template),
        "reentry": describe.reentry_words(template),
        "exits": describe.exit_words(template),
        "steps": _steps_rows(template),
        "problems": services.template_problems(template),
        "runs": runs,
        "current_members": services.segment_trigger_members(template).count(),
        "is_segment_trigger": template.trigger == Trigger.SEGMENT_ENTERED,
        "can_edit": is_admin(request.user),
        "enroll_form": EnrollSegmentForm(user=request.user),
    }


@require_GET
def template_detail(request, pk):
    _require_viewer(request.user)
    template = _template(pk)
    return render(request, "sop/template_detail.html", _detail_context(request, template))


# --- template form --------------------------------------------------------------------------------------


def _template_form(request, template: SopTemplate | None):
    _require_admin(request.user)
    form = TemplateForm(request.POST or None, instance=template, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.template_save(actor=request.user, template=template, data=form.cleaned_data)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("Template “%(name)s” saved.") % {"name": saved.name})
            return _detail(saved)
    status = 400 if form.errors else 200
    return render(request, "sop/template_form.html", {"form": form, "template": template}, status=status)


@require_http_methods(["GET", "POST"])
def template_create(request):
    return _template_form(request, None)


@require_http_methods(["GET", "POST"])
def template_edit(request, pk):
    _require_admin(request.user)
    return _template_form(request, _template(pk))


@require_POST
def template_activate(request, pk):
    _require_admin(request.user)
    template = _template(pk)
    try:
        enrolled = services.template_activate(
            actor=request.user, template=template, enroll_current=request.POST.get("enroll_current") == "1"
        )
    except ValidationError as error:
        messages.error(request, _("Not activated: %(why)s") % {"why": _error_text(error)})
        return _detail(template)
    message = _("Template activated.")
    if enrolled:
        message += " " + ngettext(
            "%(n)d customer enrolled.", "%(n)d customers enrolled.", enrolled
        ) % {"n": enrolled}  # fmt: skip
    messages.success(request, message)
    return _detail(template)


@require_POST
def template_deactivate(request, pk):
    _require_admin(request.user)
    template = _template(pk)
    ended = services.template_deactivate(actor=request.user, template=template)
    messages.success(
        request,
        ngettext(
            "Template deactivated; %(n)d run stopped.", "Template deactivated; %(n)d runs stopped.", ended
        )
        % {"n": ended},
    )
    return _detail(template)


@require_POST
def template_duplicate(request, pk):
    _require_admin(request.user)
    copy = services.template_duplicate(actor=request.user, template=_template(pk))
    messages.success(request, _("Made an inactive copy: “%(name)s”.") % {"name": copy.name})
    return _detail(copy)


# --- steps ----------------------------------------------------------------------------------------------


def _preview_contacts(user, query: str = ""):
    contacts = contacts_visible_to(user).order_by("name", "id")
    if query:
        contacts = contacts.filter(Q(name__icontains=query) | Q(phone__contains=query))
    return list(contacts.values("id", "name", "phone")[:PREVIEW_CONTACTS])


def _step_page(request, template: SopTemplate, step: SopStep | None):
    form = StepForm(request.POST or None, instance=step, template=template)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.step_save(
                actor=request.user, template=template, step=step, data=form.service_data()
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("Step “%(name)s” saved.") % {"name": saved.name})
            return redirect(f"{reverse('sop_template_detail', args=[template.pk])}#step-{saved.pk}")
    ctx = {
        "form": form,
        "template": template,
        "step": step,
        "variables": variable_help(),
        "contacts": _preview_contacts(request.user),
        "preview_loading": True,
    }
    return render(request, "sop/step_form.html", ctx, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def step_create(request, pk):
    _require_admin(request.user)
    return _step_page(request, _template(pk), None)


@require_http_methods(["GET", "POST"])
def step_edit(request, pk, step_pk):
    _require_admin(request.user)
    template = _template(pk)
    return _step_page(request, template, _step(template, step_pk))


@require_http_methods(["GET", "POST"])
def step_preview(request, pk):
    """The message rendered for the chosen customer (htmx, as the admin types), or what is wrong with it."""
    _require_admin(request.user)
    template = _template(pk)
    form = PreviewForm(request.POST if request.method == "POST" else request.GET)
    ctx = {"template": template, "errors": [], "rendered": None, "preview_contact": None}
    if not form.is_valid():
        ctx["errors"] = [_("The message could not be read.")]
    else:
        content = form.cleaned_data["content"] or ""
        ctx["errors"] = content_errors(content)
        contact_id = form.cleaned_data["preview_contact"]
        visible = contacts_visible_to(request.user)
        contact = (visible.filter(pk=contact_id) if contact_id else visible.order_by("name", "id")).first()
        ctx["preview_contact"] = contact
        if contact and not ctx["errors"]:
            context = contact_contexts([contact.pk], unsubscribe=sop_settings().unsubscribe_text)[contact.pk]
            ctx["rendered"] = render_content(content, context)
    return render(request, "sop/step_form.html#preview", ctx)


@require_GET
def step_preview_contacts(request, pk):
    """The preview's customer menu, narrowed by a search (htmx)."""
    _require_admin(request.user)
    template = _template(pk)
    query = (request.GET.get("q") or "").strip()[:50]
    ctx = {"template": template, "contacts": _preview_contacts(request.user, query)}
    return render(request, "sop/step_form.html#contact_options", ctx)


@require_POST
def step_delete(request, pk, step_pk):
    _require_admin(request.user)
    template = _template(pk)
    step = _step(template, step_pk)
    try:
        services.step_delete(actor=request.user, step=step)
    except ValidationError as error:
        messages.error(request, _error_text(error))
    else:
        messages.success(request, _("Step “%(name)s” deleted.") % {"name": step.name})
    return _detail(template)


@require_POST
def step_move(request, pk, step_pk):
    _require_admin(request.user)
    template = _template(pk)
    step = _step(template, step_pk)
    try:
        services.step_move(actor=request.user, step=step, direction=request.POST.get("direction", ""))
    except ValidationError as error:
        messages.error(request, _error_text(error))
    return redirect(f"{reverse('sop_template_detail', args=[template.pk])}#step-{step.pk}")


# --- the guards' settings -------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def sop_settings_edit(request):
    _require_admin(request.user)
    row = sop_settings()
    form = SettingsForm(request.POST or None, instance=row)
    if request.method == "POST" and form.is_valid():
        try:
            services.sop_settings_update(actor=request.user, data=form.cleaned_data)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("SOP settings saved."))
            return redirect("sop_settings")
    return render(
        request, "sop/settings.html", {"form": form, "row": row}, status=400 if form.errors else 200
    )


# --- enrollment by hand ---------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def template_enroll_segment(request, pk):
    """Choose a segment -> see how many of its members you may enroll -> confirm. GET shows the count (an htmx
    fragment, or the template's page with it); POST with confirm enrolls."""
    _require_viewer(request.user)
    template = _template(pk)
    form = EnrollSegmentForm(request.POST if request.method == "POST" else request.GET, user=request.user)
    if not form.is_valid():
        if request.method == "POST":
            messages.error(request, _("Choose a segment you can see."))
            return _detail(template)
        ctx = {"template": template, "enroll_form": form, "enroll_count": None}
        return render(request, "sop/template_detail.html#enroll_confirm", ctx)
    segment = form.cleaned_data["segment"]
    members = SegmentMembership.objects.filter(segment=segment).values("contact_id")
    if request.method == "POST" and form.cleaned_data["confirm"]:
        try:
            enrolled = services.template_enroll(actor=request.user, template=template, contact_ids=members)
        except ValidationError as error:
            messages.error(request, _error_text(error))
        else:
            messages.success(request, _enrolled_message(enrolled, template))
        return _detail(template)
    ctx = {
        "template": template,
        "enroll_form": form,
        "enroll_segment": segment,
        "enroll_count": services.enrollable_count(actor=request.user, contact_ids=members),
    }
    if request.htmx:
        return render(request, "sop/template_detail.html#enroll_confirm", ctx)
    return render(request, "sop/template_detail.html", _detail_context(request, template) | ctx)


def _enrolled_message(enrolled: int, template: SopTemplate) -> str:
    return ngettext(
        "%(n)d customer enrolled in “%(name)s”.", "%(n)d customers enrolled in “%(name)s”.", enrolled
    ) % {"n": enrolled, "name": template.name}  # fmt: skip


def _safe_next(request, data) -> str:
    target = data.get("next", "") if data is not None else ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return reverse("contact_list")


@require_POST
def enroll_selection(request):
    """The contact list's bulk bar: enroll the ticked customers in a chosen active template."""
    _require_viewer(request.user)
    try:
        data = request.POST
    except (RequestDataTooBig, TooManyFieldsSent):
        data = None
    back = _safe_next(request, data)
    form = EnrollSelectionForm(data or {})
    if data is None or not form.is_valid():
        error = next(iter(form.errors.values()))[0] if data is not None else _("Too many contacts selected.")
        messages.error(request, error)
        return redirect(back)
    ids, template = form.cleaned_data["ids"], form.cleaned_data["template"]
    if contacts_by_ids(request.user, ids).count() != len(ids):
        messages.error(
            request, _("Some selected contacts are not yours (or no longer exist). Nobody was enrolled.")
        )
        return redirect(back)
    try:
        enrolled = services.template_enroll(
            actor=request.user, template=template, contact_ids=contacts_by_ids(request.user, ids).values("id")
        )
    except ValidationError as error:
        messages.error(request, _error_text(error))
        return redirect(back)
    message = _enrolled_message(enrolled, template)
    if enrolled < len(ids):
        message += " " + _("The others are in it already or may not enter again yet.")
    messages.success(request, message)
    return redirect(back)
