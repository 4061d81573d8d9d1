"""Reads about users and roles that more than one place needs."""

from dataclasses import dataclass

from django.db.models import Case, CharField, Count, Exists, OuterRef, Q, QuerySet, Value, When

from .models import User
from .roles import ROLE_ORDER, Role

NO_ROLE = "none"  # the "users without a role" choice in the user list filter


def _in_group(name: str) -> Exists:
    return Exists(User.groups.through.objects.filter(user_id=OuterRef("pk"), group__name=name))


def users_with_roles() -> QuerySet[User]:
    """Every user, annotated with `role_name` (highest role, "" for none; superusers count as Admin)."""
    whens = [When(is_superuser=True, then=Value(Role.ADMIN.value))]
    whens += [When(_in_group(role.value), then=Value(role.value)) for role in ROLE_ORDER]
    return User.objects.annotate(role_name=Case(*whens, default=Value(""), output_field=CharField()))


def managers() -> QuerySet[User]:
    """Active users with the Manager role: the only ones a user's `manager` may point at."""
    qs = User.objects.filter(is_active=True, groups__name=Role.MANAGER.value)
    return qs.order_by("display_name", "username")


def is_manager_role(user: User) -> bool:
    return user.groups.filter(name=Role.MANAGER.value).exists()


def username_taken(username: str, *, exclude_pk: int | None = None) -> bool:
    """Usernames are unique regardless of case, so "Li" and "li" cannot both sign in."""
    return User.objects.filter(username__iexact=username).exclude(pk=exclude_pk).exists()


@dataclass(frozen=True)
class UserFilters:
    role: str = ""  # a Role value, NO_ROLE, or "" for any
    status: str = ""  # "active", "inactive" or "" for any
    q: str = ""


def user_list(filters: UserFilters) -> QuerySet[User]:
    """The user list for the admin page: role, manager and team size, filtered and ordered."""
    qs = users_with_roles().select_related("manager")
    qs = qs.annotate(team_size=Count("team", filter=Q(team__is_active=True), distinct=True))
    if filters.role == NO_ROLE:
        qs = qs.filter(role_name="")
    elif filters.role:
        qs = qs.filter(role_name=filters.role)
    if filters.status:
        qs = qs.filter(is_active=filters.status == "active")
    if filters.q:
        q = filters.q
        qs = qs.filter(
            Q(username__icontains=q)
            | Q(display_name__icontains=q)
            | Q(email__icontains=q)
            | Q(first_name__icontains=q)
            | Q(last_name__icontains=q)
        )
    return qs.order_by("-is_active", "username")


def attach_roles(users) -> None:
    """Sets `role` (a Role or None) on users from a `users_with_roles()` query, and primes role_of's cache."""
    for user in users:
        user.role = Role(user.role_name) if user.role_name else None
        user._scrm_role = user.role


def team_of(manager: User) -> QuerySet[User]:
    return manager.team.order_by("-is_active", "display_name", "username")
