"""Contact pages. Thin function views: access helper -> form -> service -> redirect or partial."""

import json
from datetime import datetime

from django.contrib import messages
from django.db.models import ProtectedError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import services
from .event_views import blank_record_form
from .forms import (
    BulkActionForm,
    ContactForm,
    ContactTagsForm,
    NoteForm,
    QuickUpdateForm,
    TagForm,
    TagGroupForm,
    TierForm,
)  # fmt: skip
from .list_page import contact_list_context
from .merging import probable_duplicates_of
from .models import Tag, TagGroup, Tier
from .page_extensions import detail_panels
from .selectors import (
    contact_custom_values,
    contact_for_user,
    contact_timeline,
    contacts_visible_to,
    owners_assignable_by,
)

TIMELINE_PAGE = 20


def _toast(response: HttpResponse, message: str, level: str = "success", *events: str) -> HttpResponse:
    triggers = {"toast": {"message": str(message), "level": level}}
    triggers.update({event: True for event in events})
    response["HX-Trigger"] = json.dumps(triggers)
    return response


def _require_taxonomy_admin(user) -> None:
    if not user.has_perm("contacts.manage_taxonomy"):
        raise Http404


# --- the list -----------------------------------------------------------------------------------


@require_GET
def contact_list(request):
    ctx = contact_list_context(request, contacts_visible_to(request.user), list_path=reverse("contact_list"))
    template = "contacts/contact_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#results"
    response = render(request, template, ctx)
    if ctx["page"].next_cursor:
        response["X-Next-Cursor"] = ctx["page"].next_cursor
    return response


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


@require_POST
def contact_bulk(request):
    form = BulkActionForm(request.POST, user=request.user)
    back = _safe_next(request, reverse("contact_list"))
    if not form.is_valid():
        errors = "; ".join(str(e) for errs in form.errors.values() for e in errs)
        messages.error(request, _("Bulk action not applied: %(errors)s") % {"errors": errors})
        return redirect(back)
    data = form.cleaned_data
    try:
        if data["action"] in ("add_tag", "remove_tag"):
            changed = services.contacts_bulk_tag(
                actor=request.user, contact_ids=data["ids"], tag=data["tag"], add=data["action"] == "add_tag"
            )
        else:
            field, value = (
                ("tier", data["tier_obj"]) if data["action"] == "set_tier" else ("owner", data["owner_obj"])
            )
            changed = services.contacts_bulk_update(
                actor=request.user, contact_ids=data["ids"], field=field, value=value
            )
    except services.NotAllowed:
        messages.error(
            request,
            _("Bulk action rejected: some selected contacts are not yours to change. Nothing was changed."),
        )
        return redirect(back)
    messages.success(
        request,
        _("%(changed)d of %(selected)d selected contacts changed.")
        % {"changed": changed, "selected": len(data["ids"])},
    )
    return redirect(back)


# --- one contact ----------------------------------------------------------------------------------


def _timeline_ctx(contact, before=None) -> dict:
    items, next_before = contact_timeline(contact, before=before, size=TIMELINE_PAGE)
    more = ""
    if next_before:
        at, rank, pk = next_before
        more = urlencode({"before": f"{at.isoformat()}|{rank}|{pk}"})
    return {"timeline": items, "timeline_more": more}


def _parse_before(raw: str):
    try:
        at, rank, pk = raw.split("|")
        return datetime.fromisoformat(at), int(rank), int(pk)
    except ValueError:
        return None


def _detail_ctx(request, contact, **extra) -> dict:
    tags = list(contact.tags.select_related("group"))
    custom_rows, archived_custom_rows = contact_custom_values(contact)
    return {
        "contact": contact,
        "custom_rows": custom_rows,
        "archived_custom_rows": archived_custom_rows,
        "tags": tags,
        "tag_ids": {t.pk for t in tags},
        "tag_groups": TagGroup.objects.prefetch_related("tags"),
        "tiers": Tier.objects.all(),
        "owners": owners_assignable_by(request.user)
        if request.user.has_perm("contacts.assign_owner")
        else [],
        "can_assign": request.user.has_perm("contacts.assign_owner"),
        "note_form": NoteForm(),
        "record_form": blank_record_form() if request.user.has_perm("contacts.add_event") else None,
        "duplicates": probable_duplicates_of(request.user, contact),
        "extra_panels": detail_panels(request, contact),
        **_timeline_ctx(contact),
        **extra,
    }


@require_GET
def contact_detail(request, pk):
    contact = contact_for_user(request.user, pk)
    return render(request, "contacts/contact_detail.html", _detail_ctx(request, contact))


@require_GET
def contact_timeline_page(request, pk):
    contact = contact_for_user(request.user, pk)
    before = _parse_before(request.GET.get("before", ""))
    ctx = {"contact": contact, **_timeline_ctx(contact, before)}
    partial = "#timeline-items" if before else "#timeline"
    return render(request, f"contacts/contact_detail.html{partial}", ctx)


@require_POST
def contact_tags(request, pk):
    contact = contact_for_user(request.user, pk)
    form = ContactTagsForm(request.POST)
    if not form.is_valid():
        return _toast(HttpResponse(status=422), _("Unknown tag."), "danger")
    added, removed = services.contact_tags_set(
        actor=request.user, contact=contact, tags=form.cleaned_data["tags"]
    )
    if not request.htmx:
        return redirect("contact_detail", pk=contact.pk)
    response = render(request, "contacts/contact_detail.html#tags", _detail_ctx(request, contact))
    return _toast(
        response,
        _("Tags saved (+%(a)d / −%(r)d).") % {"a": len(added), "r": len(removed)},
        "success",
        "timeline-changed",
    )


@require_POST
def contact_quick_update(request, pk):
    contact = contact_for_user(request.user, pk)
    form = QuickUpdateForm(request.POST, user=request.user)
    if not form.is_valid():
        message = " ".join(str(e) for errs in form.errors.values() for e in errs)
        if not request.htmx:
            messages.error(request, message)
            return redirect("contact_detail", pk=contact.pk)
        return _toast(HttpResponse(status=422), message, "danger")
    services.contact_update(actor=request.user, contact=contact, changes=form.changes())
    if not request.htmx:
        messages.success(request, _("Saved."))
        return redirect("contact_detail", pk=contact.pk)
    response = render(request, "contacts/contact_detail.html#quick", _detail_ctx(request, contact))
    return _toast(response, _("Saved."), "success", "timeline-changed")


@require_POST
def contact_note_add(request, pk):
    contact = contact_for_user(request.user, pk)
    form = NoteForm(request.POST)
    if not form.is_valid():
        if not request.htmx:
            return render(
                request,
                "contacts/contact_detail.html",
                _detail_ctx(request, contact, note_form=form),
                status=422,
            )
        # htmx swaps only 2xx responses by default; the errors are in the fragment.
        return render(
            request, "contacts/contact_detail.html#note-form", {"contact": contact, "note_form": form}
        )
    services.note_add(actor=request.user, contact=contact, body=form.cleaned_data["body"])
    if not request.htmx:
        return redirect("contact_detail", pk=contact.pk)
    response = render(
        request, "contacts/contact_detail.html#note-form", {"contact": contact, "note_form": NoteForm()}
    )
    return _toast(response, _("Note added."), "success", "timeline-changed")


@require_http_methods(["GET", "POST"])
def contact_create(request):
    form = ContactForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.contact_data()
        if "owner" not in form.fields:
            data["owner"] = request.user  # an operator's new contact is their own
        contact = services.contact_create(actor=request.user, data=data)
        messages.success(request, _("Contact “%(name)s” created.") % {"name": contact.name})
        return redirect("contact_detail", pk=contact.pk)
    return render(request, "contacts/contact_form.html", {"form": form}, status=422 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def contact_edit(request, pk):
    contact = contact_for_user(request.user, pk)
    form = ContactForm(request.POST or None, instance=contact, user=request.user)
    if request.method == "POST" and form.is_valid():
        changes = form.contact_data()
        contact = contact_for_user(request.user, pk)  # fresh copy: the form mutated the instance
        services.contact_update(actor=request.user, contact=contact, changes=changes)
        messages.success(request, _("Contact saved."))
        return redirect("contact_detail", pk=contact.pk)
    return render(
        request,
        "contacts/contact_form.html",
        {"form": form, "contact": contact},
        status=422 if form.errors else 200,
    )


# --- settings: tag groups, tags, tiers -----------------------------------------------------------


@require_GET
def taxonomy(request):
    _require_taxonomy_admin(request.user)
    groups = TagGroup.objects.prefetch_related("tags")
    return render(request, "contacts/taxonomy.html", {"groups": groups, "tiers": Tier.objects.all()})


TAXONOMY = {"tag-group": (TagGroup, TagGroupForm), "tag": (Tag, TagForm), "tier": (Tier, TierForm)}


def _taxonomy_edit(request, kind: str, pk=None):
    _require_taxonomy_admin(request.user)
    model, form_class = TAXONOMY[kind]
    obj = get_object_or_404(model, pk=pk) if pk else None
    form = form_class(request.POST or None, instance=obj, initial={"group": request.GET.get("group")})
    if request.method == "POST" and form.is_valid():
        services.taxonomy_save(actor=request.user, obj=form.save(commit=False), created=obj is None)
        messages.success(request, _("Saved."))
        return redirect("taxonomy")
    ctx = {"form": form, "obj": obj, "kind": kind, "model_name": model._meta.verbose_name}
    return render(request, "contacts/taxonomy_form.html", ctx, status=422 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def tag_group_edit(request, pk=None):
    return _taxonomy_edit(request, "tag-group", pk)


@require_http_methods(["GET", "POST"])
def tag_edit(request, pk=None):
    return _taxonomy_edit(request, "tag", pk)


@require_http_methods(["GET", "POST"])
def tier_edit(request, pk=None):
    return _taxonomy_edit(request, "tier", pk)


@require_POST
def taxonomy_delete(request, kind, pk):
    _require_taxonomy_admin(request.user)
    if kind not in TAXONOMY:
        raise Http404
    obj = get_object_or_404(TAXONOMY[kind][0], pk=pk)
    try:
        services.taxonomy_delete(actor=request.user, obj=obj)
    except ProtectedError:
        messages.error(request, _("“%(name)s” still has tags; delete or move them first.") % {"name": obj})
    else:
        messages.success(request, _("Deleted “%(name)s”.") % {"name": obj})
    return redirect("taxonomy")
