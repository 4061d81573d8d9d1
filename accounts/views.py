"""Profile and user administration. Thin function views: access helper -> form -> service -> redirect.

Login, logout and password change are Django's own views (accounts/urls.py) with our templates.
"""

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from . import services
from .forms import ProfileForm, UserFilterForm, UserForm
from .models import User
from .roles import Role, is_admin, role_of
from .selectors import UserFilters, attach_roles, team_of
from .selectors import user_list as select_users

USERS_PER_PAGE = 50


def require_admin(user) -> None:
    """Users and roles are for admins; everyone else sees nothing there (404)."""
    if not is_admin(user):
        raise Http404


def user_for_admin(request, pk: int) -> User:
    require_admin(request.user)
    return get_object_or_404(User, pk=pk)


def _apply(form, service, **kwargs):
    """Runs the service with the form's data; rule violations become field errors. None on failure."""
    try:
        return service(**kwargs)
    except ValidationError as exc:
        form.add_error(None, exc)
        return None


@require_http_methods(["GET", "POST"])
def profile(request):
    user = request.user
    form = ProfileForm(request.POST or None, user=user)
    saved = (
        request.method == "POST"
        and form.is_valid()
        and _apply(form, services.user_profile_update, user=user, **form.cleaned_data)
    )
    if saved:
        messages.success(request, _("Your profile has been saved."))
        return redirect("profile")
    role = role_of(user)
    ctx = {"form": form, "role": role, "team": team_of(user) if role == Role.MANAGER else None}
    return render(request, "accounts/profile.html", ctx)


@require_GET
def user_list(request):
    require_admin(request.user)
    form = UserFilterForm(request.GET)
    filters = UserFilters(role=form.value("role"), status=form.value("status"), q=form.value("q").strip())
    page = Paginator(select_users(filters), USERS_PER_PAGE).get_page(request.GET.get("page"))
    attach_roles(page.object_list)
    query = request.GET.copy()
    query.pop("page", None)
    ctx = {"form": form, "page": page, "query": query.urlencode(), "filtered": filters != UserFilters()}
    fragment = request.htmx and not request.htmx.history_restore_request
    template = "accounts/user_list.html#results" if fragment else "accounts/user_list.html"
    return render(request, template, ctx)


@require_http_methods(["GET", "POST"])
def user_create(request):
    require_admin(request.user)
    form = UserForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = _apply(form, services.user_create, actor=request.user, **form.service_kwargs())
        if user:
            messages.success(request, _("User “%(name)s” has been created.") % {"name": user})
            _warn_without_manager(request, user)
            return redirect("user_list")
    return render(request, "accounts/user_form.html", {"form": form, "target": None})


@require_http_methods(["GET", "POST"])
def user_edit(request, pk: int):
    target = user_for_admin(request, pk)
    form = UserForm(request.POST or None, target=target)
    if request.method == "POST" and form.is_valid():
        kwargs = form.service_kwargs()
        if _apply(form, services.user_update, actor=request.user, user=target, **kwargs):
            if kwargs["password"] and target.pk == request.user.pk:
                update_session_auth_hash(request, target)  # stay signed in after changing one's own password
            messages.success(request, _("User “%(name)s” has been saved.") % {"name": target})
            _warn_without_manager(request, target)
            return redirect("user_list")
    ctx = {"form": form, "target": target, "target_role": role_of(target), "team": team_of(target)}
    return render(request, "accounts/user_form.html", ctx)


def _warn_without_manager(request, user: User) -> None:
    if role_of(user) == Role.OPERATOR and user.manager_id is None:
        message = _("%(name)s has no manager, so no manager sees their contacts.") % {"name": user}
        messages.warning(request, message)
