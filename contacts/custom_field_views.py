"""Settings pages for custom contact fields (admins only; anyone else gets 404, like the taxonomy pages)."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.roles import is_admin

from . import custom_field_services as services
from .custom_field_forms import CustomFieldCreateForm, CustomFieldEditForm, PurgeForm
from .models import CustomField
from .selectors import custom_field_label, custom_field_usage


def _field_for_admin(user, pk) -> CustomField:
    if not is_admin(user):
        raise Http404
    return get_object_or_404(CustomField, pk=pk)


def _require_admin(user) -> None:
    if not is_admin(user):
        raise Http404


def _contacts_url(field: CustomField, option: str = "") -> str:
    query = {"cf": field.key}
    if option:
        query["cf_value"] = option
    return f"{reverse('contact_list')}?{urlencode(query)}"


@require_GET
def custom_field_list(request):
    _require_admin(request.user)
    fields = list(CustomField.objects.all())
    for f in fields:
        f.label = custom_field_label(f)
    ctx = {
        "active": [f for f in fields if f.archived_at is None],
        "archived": [f for f in fields if f.archived_at is not None],
    }
    return render(request, "contacts/custom_field_list.html", ctx)


@require_http_methods(["GET", "POST"])
def custom_field_create(request):
    _require_admin(request.user)
    form = CustomFieldCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        field = services.custom_field_create(
            actor=request.user,
            key=data["key"],
            label_zh=data["label_zh"],
            label_en=data["label_en"],
            kind=data["kind"],
            choices=data["choices"],
            required=data["required"],
            position=data["position"],
        )
        messages.success(
            request, _("Custom field “%(label)s” created.") % {"label": custom_field_label(field)}
        )
        return redirect("custom_field_list")
    return render(
        request, "contacts/custom_field_form.html", {"form": form}, status=422 if form.errors else 200
    )


@require_http_methods(["GET", "POST"])
def custom_field_edit(request, pk):
    field = _field_for_admin(request.user, pk)
    form = CustomFieldEditForm(request.POST or None, instance=CustomField.objects.get(pk=field.pk))
    in_use = {}
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.custom_field_update(
                actor=request.user,
                field=field,
                label_zh=data["label_zh"],
                label_en=data["label_en"],
                choices=data.get("choices"),
                required=data["required"],
                position=data["position"],
            )
        except services.OptionsInUse as exc:
            in_use = {option: (total, _contacts_url(field, option)) for option, total in exc.usage.items()}
            form.add_error("choices", str(exc))
        else:
            messages.success(request, _("Saved."))
            return redirect("custom_field_list")
    ctx = {
        "form": form,
        "field": field,
        "label": custom_field_label(field),
        "usage": custom_field_usage(field),
        "in_use": in_use,
        "contacts_url": _contacts_url(field),
    }
    return render(request, "contacts/custom_field_form.html", ctx, status=422 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def custom_field_archive(request, pk):
    field = _field_for_admin(request.user, pk)
    if request.method == "POST":
        services.custom_field_archive(actor=request.user, field=field)
        messages.success(
            request,
            _("Archived “%(label)s”. Its values are kept; restore it any time.")
            % {"label": custom_field_label(field)},
        )
        return redirect("custom_field_list")
    ctx = {"field": field, "label": custom_field_label(field), "usage": custom_field_usage(field)}
    return render(request, "contacts/custom_field_archive.html", ctx)


@require_POST
def custom_field_restore(request, pk):
    field = _field_for_admin(request.user, pk)
    services.custom_field_restore(actor=request.user, field=field)
    messages.success(request, _("Restored “%(label)s”.") % {"label": custom_field_label(field)})
    return redirect("custom_field_list")


@require_http_methods(["GET", "POST"])
def custom_field_purge(request, pk):
    field = _field_for_admin(request.user, pk)
    if field.archived_at is None:
        messages.error(request, _("Only archived fields can have their values purged."))
        return redirect("custom_field_edit", pk=field.pk)
    form = PurgeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            purged = services.custom_field_purge_values(
                actor=request.user, field=field, confirm_key=form.cleaned_data["confirm_key"]
            )
        except services.CustomFieldError as exc:
            form.add_error("confirm_key", str(exc))
        else:
            messages.success(
                request,
                _("Deleted the values of “%(label)s” from %(n)d contacts.")
                % {"label": custom_field_label(field), "n": purged},
            )
            return redirect("custom_field_list")
    ctx = {
        "form": form,
        "field": field,
        "label": custom_field_label(field),
        "usage": custom_field_usage(field),
    }
    return render(request, "contacts/custom_field_purge.html", ctx, status=422 if form.errors else 200)
