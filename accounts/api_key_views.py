"""API key pages for admins (permission accounts.manage_api_keys): list, create (the key shown once), revoke.

Thin function views: access check -> form -> accounts.api_keys service -> redirect or page.
"""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from .api_keys import api_key_create, api_key_revoke
from .models import ApiKey, ApiScope


def require_key_admin(user) -> None:
    """Like the other settings pages: without the permission the pages do not exist (404)."""
    if not user.has_perm("accounts.manage_api_keys"):
        raise Http404


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=100,
        help_text=gettext_lazy("Who uses the key, e.g. “Shop orders” or “Mini program”."),
    )
    scopes = forms.MultipleChoiceField(
        label=gettext_lazy("Scopes"),
        choices=ApiScope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("Give a key only what its integration needs."),
    )


@require_GET
def api_key_list(request):
    require_key_admin(request.user)
    keys = ApiKey.objects.select_related("created_by").order_by("revoked_at", "-created_at", "-id")
    labels = dict(ApiScope.choices)
    rows = [(key, [(scope, labels.get(scope, scope)) for scope in key.scopes]) for key in keys]
    return render(request, "accounts/api_key_list.html", {"rows": rows})


@never_cache
@require_http_methods(["GET", "POST"])
def api_key_new(request):
    """On success the page shows the full key, once: it is not stored, so a reload cannot show it again."""
    require_key_admin(request.user)
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            key, raw = api_key_create(actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return render(request, "accounts/api_key_created.html", {"key": key, "raw_key": raw})
    return render(request, "accounts/api_key_form.html", {"form": form})


@require_http_methods(["GET", "POST"])
def api_key_revoke_view(request, pk: int):
    require_key_admin(request.user)
    key = get_object_or_404(ApiKey, pk=pk)
    if request.method == "POST":
        api_key_revoke(actor=request.user, key=key)
        messages.success(request, _("API key “%(name)s” has been revoked.") % {"name": key.name})
        return redirect("api_key_list")
    return render(request, "accounts/api_key_revoke.html", {"key": key})
