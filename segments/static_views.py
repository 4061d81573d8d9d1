"""Static segment pages: a new fixed list from a pasted or uploaded list of phones / external ids (with a
check step first), from the contact list's selection, adding to and removing from a list, and a snapshot of
any segment. Thin function views: access helper -> form -> service -> redirect or partial.

A user only ever puts contacts they may see into a list: the selection is checked against
contacts_visible_to (an id they may not see rejects the whole request), and a pasted list is matched among
those contacts only (static_forms)."""

from django.contrib import messages
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from .models import Segment, SegmentKind
from .selectors import segment_for_change, segment_for_user
from .services import segment_snapshot, static_segment_add, static_segment_create, static_segment_remove
from .static_forms import (
    ContactIdsForm,
    ListInputForm,
    NewStaticListForm,
    SelectionForm,
    SnapshotForm,
    contacts_by_ids,
    match_entries,
    max_lines,
    max_paste_bytes,
    max_upload_bytes,
)

TEMPLATE = "segments/static_form.html"


def _require(user, perm: str) -> None:
    if not user.has_perm(perm):
        raise Http404


def _static_for_change(user, pk) -> Segment:
    """A static segment `user` may change, else 404 (a dynamic segment's members come from its rule)."""
    segment = segment_for_change(user, pk)
    if segment.kind != SegmentKind.STATIC:
        raise Http404
    return segment


def _detail_url(segment: Segment) -> str:
    return reverse("segment_detail", args=[segment.pk])


def _safe_next(request, data, fallback: str) -> str:
    target = data.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


def _post(request):
    """request.POST, or None when Django refuses to read the body (too big, too many fields)."""
    try:
        return request.POST
    except (RequestDataTooBig, TooManyFieldsSent):
        return None


def _list_form(request, form_class):
    if request.method != "POST":
        return form_class()
    try:
        return form_class(request.POST, request.FILES)
    except (RequestDataTooBig, TooManyFieldsSent):
        return form_class({}, {}, too_big=True)


def _first_error(form) -> str:
    return next(str(error) for errors in form.errors.values() for error in errors)


# --- a list from a paste or a file ---------------------------------------------------------------------


def _render_list_page(request, form, result, segment: Segment | None):
    ctx = {
        "form": form,
        "result": result,
        "segment": segment,
        "errors": [str(error) for errors in form.errors.values() for error in errors],
        "back_url": _detail_url(segment) if segment else reverse("segment_list"),
        "max_upload": max_upload_bytes(),
        "max_lines": max_lines(),
        "max_paste_bytes": max_paste_bytes(),
    }
    if request.htmx:  # the check step: only the result card (htmx swaps a 200 only)
        return render(request, f"{TEMPLATE}#check", ctx)
    return render(request, TEMPLATE, ctx, status=400 if form.errors else 200)


def _checked(request, form, segment: Segment | None = None):
    """The match of a valid form's list, or None."""
    if request.method != "POST" or not form.is_valid():
        return None
    data = form.cleaned_data
    return match_entries(request.user, data["entries_read"], header=data.get("header", ""), segment=segment)


def _is_check(request) -> bool:
    return request.POST.get("preview") == "1"


def _nothing_found(form) -> None:
    form.add_error(None, _("No line matched a customer of yours: nothing was saved."))


@require_http_methods(["GET", "POST"])
def static_segment_new(request):
    _require(request.user, "segments.add_segment")
    form = _list_form(request, NewStaticListForm)
    result = _checked(request, form)
    if result is not None and not _is_check(request):
        if not result.contact_ids:
            _nothing_found(form)
        else:
            try:
                segment = static_segment_create(
                    actor=request.user,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    contacts=contacts_by_ids(request.user, result.contact_ids),
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, _created_message(segment, result))
                return redirect(_detail_url(segment))
    return _render_list_page(request, form, result, None)


def _created_message(segment: Segment, result) -> str:
    message = ngettext(
        "List “%(name)s” created with %(n)d contact.",
        "List “%(name)s” created with %(n)d contacts.",
        result.found,
    ) % {"name": segment.name, "n": result.found}
    if result.not_found:
        message += " " + ngettext(
            "%(n)d entry was not found.", "%(n)d entries were not found.", result.not_found
        ) % {"n": result.not_found}
    return message


@require_http_methods(["GET", "POST"])
def static_segment_add_members(request, pk):
    _require(request.user, "segments.change_segment")
    segment = _static_for_change(request.user, pk)
    form = _list_form(request, ListInputForm)
    result = _checked(request, form, segment)
    if result is not None and not _is_check(request):
        if not result.contact_ids:
            _nothing_found(form)
        else:
            added = static_segment_add(
                actor=request.user,
                segment=segment,
                contacts=contacts_by_ids(request.user, result.contact_ids),
            )
            messages.success(
                request,
                ngettext(
                    "%(n)d contact added to “%(name)s”.", "%(n)d contacts added to “%(name)s”.", added
                ) % {"n": added, "name": segment.name},
            )  # fmt: skip
            return redirect(_detail_url(segment))
    return _render_list_page(request, form, result, segment)


# --- a list from the contact list's selection, removing members, snapshots -----------------------------


def _reject_invisible(request, ids: list[int], nothing_done: str) -> bool:
    """True (with a message) when some of `ids` are contacts the user may not see, or do not exist."""
    if contacts_by_ids(request.user, ids).count() == len(ids):
        return False
    messages.error(
        request, _("Some selected contacts are not yours (or no longer exist).") + " " + nothing_done
    )
    return True


@require_POST
def static_segment_from_selection(request):
    _require(request.user, "segments.add_segment")
    data = _post(request)
    back = _safe_next(request, data or {}, reverse("contact_list"))
    form = SelectionForm(data or {})
    if data is None or not form.is_valid():
        messages.error(request, _first_error(form) if data is not None else _("Too many contacts selected."))
        return redirect(back)
    ids = form.cleaned_data["ids"]
    if _reject_invisible(request, ids, _("No list was created.")):
        return redirect(back)
    segment = static_segment_create(
        actor=request.user, name=form.cleaned_data["name"], contacts=contacts_by_ids(request.user, ids)
    )
    messages.success(
        request,
        ngettext(
            "List “%(name)s” created with %(n)d contact.", "List “%(name)s” created with %(n)d contacts.", len(ids)
        ) % {"name": segment.name, "n": len(ids)},
    )  # fmt: skip
    return redirect(_detail_url(segment))


@require_POST
def static_segment_remove_members(request, pk):
    _require(request.user, "segments.change_segment")
    segment = _static_for_change(request.user, pk)
    data = _post(request)
    back = _safe_next(request, data or {}, _detail_url(segment))
    form = ContactIdsForm(data or {})
    if data is None or not form.is_valid():
        messages.error(request, _first_error(form) if data is not None else _("Too many contacts selected."))
        return redirect(back)
    ids = form.cleaned_data["ids"]
    if _reject_invisible(request, ids, _("Nothing was removed.")):
        return redirect(back)
    removed = static_segment_remove(actor=request.user, segment=segment, contact_ids=ids)
    messages.success(
        request,
        ngettext(
            "%(n)d contact removed from “%(name)s”.", "%(n)d contacts removed from “%(name)s”.", removed
        ) % {"n": removed, "name": segment.name},
    )  # fmt: skip
    return redirect(back)


@require_POST
def segment_snapshot_create(request, pk):
    """Anyone who sees a segment may keep its members as they are now, as a list of their own."""
    _require(request.user, "segments.add_segment")
    segment = segment_for_user(request.user, pk)
    form = SnapshotForm(_post(request) or {})
    if not form.is_valid():
        messages.error(request, _first_error(form))
        return redirect(_detail_url(segment))
    copy = segment_snapshot(actor=request.user, segment=segment, name=form.cleaned_data["name"].strip())
    messages.success(request, _("Saved today's members as the list “%(name)s”.") % {"name": copy.name})
    return redirect(_detail_url(copy))
