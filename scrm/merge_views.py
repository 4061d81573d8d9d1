"""Duplicates and merge pages (in scrm, because the merge runs every app's handlers via scrm.merge).

Everyone works within contacts_visible_to: an operator sees and merges duplicates among their own
contacts, managers within their team and the unassigned pool, admins everywhere.
"""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from contacts.merging import DUPLICATE, REASONS, SURVIVOR, MergeError, duplicate_groups, merge_preview
from contacts.selectors import contact_for_user
from contacts.services import NotAllowed

from .merge import merge_contacts

GROUPS_PER_PAGE = 20


@require_GET
def duplicate_list(request):
    reason = request.GET.get("reason", "email")
    if reason not in REASONS:
        reason = "email"
    groups, next_cursor = duplicate_groups(
        request.user, reason=reason, cursor=request.GET.get("cursor") or None, size=GROUPS_PER_PAGE
    )
    ctx = {
        "groups": groups,
        "reason": reason,
        "reasons": REASONS.items(),
        "next_cursor": next_cursor,
        "is_first_page": not request.GET.get("cursor"),
    }
    return render(request, "scrm/duplicates.html", ctx)


@require_http_methods(["GET", "POST"])
def contact_merge(request, survivor, duplicate):
    if survivor == duplicate:
        messages.error(request, _("A contact cannot be merged with itself."))
        return redirect("duplicate_list")
    survivor_contact = contact_for_user(request.user, survivor)
    duplicate_contact = contact_for_user(request.user, duplicate)
    preview = merge_preview(survivor_contact, duplicate_contact)
    error = ""
    if request.method == "POST":
        choices = {row.key: request.POST.get(f"choice-{row.key}", row.default) for row in preview.rows}
        try:
            merged = merge_contacts(
                actor=request.user,
                survivor=survivor_contact,
                duplicate=duplicate_contact,
                field_choices=choices,
            )
        except MergeError as exc:
            error = str(exc)
        except NotAllowed:
            error = _("One of these contacts is no longer yours to change; nothing was merged.")
        else:
            messages.success(
                request,
                _("Merged “%(duplicate)s” into “%(survivor)s”.")
                % {"duplicate": duplicate_contact.name, "survivor": merged.name},
            )
            return redirect("contact_detail", pk=merged.pk)
    ctx = {
        "survivor": survivor_contact,
        "duplicate": duplicate_contact,
        "preview": preview,
        "error": error,
        "SURVIVOR": SURVIVOR,
        "DUPLICATE": DUPLICATE,
    }
    return render(request, "scrm/merge.html", ctx, status=422 if error else 200)
