"""The contact list's page context: filters, scopes, one keyset page, totals and the bulk bar. Shared by the
contact list and by other apps' pages that show a list of contacts with the same table (a segment's
members), so the table, its filters and its bulk actions stay one thing."""

from django.conf import settings
from django.db.models import Prefetch, QuerySet, prefetch_related_objects
from django.utils.translation import gettext as _

from .forms import BulkActionForm, ContactFilterForm, tag_choices
from .list_scopes import apply_list_scopes, bulk_templates
from .models import Tag, Tier
from .pagination import SORTS, BadCursor, keyset_page
from .selectors import estimate_total, filter_contacts, owners_assignable_by


def _query(request, **extra) -> str:
    params = request.GET.copy()
    for key in ("cursor", "p"):
        params.pop(key, None)
    for key, value in extra.items():
        params[key] = value
    return params.urlencode()


def contact_list_context(request, contacts: QuerySet, *, list_path: str) -> dict:
    """Everything contacts/_contact_filters.html and contacts/_contact_results.html need, for `contacts`
    (already scoped to what the user may see) filtered by the request's query string."""
    user = request.user
    form = ContactFilterForm(request.GET, user=user)
    form.is_valid()
    scoped = apply_list_scopes(user, contacts, request.GET)
    ignored = [*form.ignored(), *scoped.rejected]
    filters = form.filters()
    qs = filter_contacts(scoped.contacts, filters).select_related("owner", "tier")
    sort = SORTS[form.sort_key()][0]
    try:
        page = keyset_page(qs, sort, form.value("cursor") or None, settings.CONTACT_PAGE_SIZE)
    except BadCursor:
        ignored.append(_("The page link was not valid; showing the first page."))
        page = keyset_page(qs, sort, None, settings.CONTACT_PAGE_SIZE)
    prefetch_related_objects(page.rows, Prefetch("tags", queryset=Tag.objects.select_related("group")))
    unfiltered = filters == type(filters)() and not scoped.active and contacts.query.where.children == []
    page_number = int(request.GET["p"]) if request.GET.get("p", "").isdigit() else 1
    can_assign = user.has_perm("contacts.assign_owner")
    return {
        "form": form,
        "page": page,
        "ignored": ignored,
        "scopes": scoped.active,
        "total": estimate_total(qs, unfiltered=unfiltered),
        "page_number": page_number,
        "next_url": f"{list_path}?{_query(request, cursor=page.next_cursor, p=page_number + 1)}"
        if page.next_cursor
        else "",
        "first_url": f"{list_path}?{_query(request)}",
        "list_action": list_path,
        "list_url": request.get_full_path(),
        "bulk": BulkActionForm(user=user),
        "tag_groups": tag_choices(),
        "tiers": Tier.objects.all(),
        "owners": owners_assignable_by(user) if can_assign else [],
        "can_assign": can_assign,
        "bulk_templates": bulk_templates(),
    }
