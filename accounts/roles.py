"""Roles are Django groups created by a data migration (accounts/migrations/0002_roles.py).

Operators work the contacts they own; managers see their team's (and the unassigned pool, 公海),
dashboards, exports and reassignment; admins configure everything.
"""

from enum import StrEnum

from django.utils.translation import gettext_lazy as _


class Role(StrEnum):
    OPERATOR = "Operator"
    MANAGER = "Manager"
    ADMIN = "Admin"

    @property
    def label(self) -> str:
        return str(ROLE_LABELS[self])


ROLE_LABELS = {Role.OPERATOR: _("Operator"), Role.MANAGER: _("Manager"), Role.ADMIN: _("Admin")}
# Highest first: a user in several groups has the highest of them.
ROLE_ORDER = (Role.ADMIN, Role.MANAGER, Role.OPERATOR)


def role_of(user) -> Role | None:
    """The user's highest role, cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False):
        return None
    cached = getattr(user, "_scrm_role", "unset")
    if cached != "unset":
        return cached
    if user.is_superuser:
        role = Role.ADMIN
    else:
        names = set(user.groups.values_list("name", flat=True))
        role = next((r for r in ROLE_ORDER if r.value in names), None)
    user._scrm_role = role
    return role


def is_admin(user) -> bool:
    return role_of(user) == Role.ADMIN


def is_manager_or_admin(user) -> bool:
    return role_of(user) in (Role.MANAGER, Role.ADMIN)


def grant_permissions(apps, app_label: str, grants: dict[str, list[str]]) -> None:
    """For data migrations: create the role groups if needed and give them `app_label`'s permissions.

    Each app's migration grants its own permissions, so no app migration reaches upward.
    `grants` maps a role name to codenames ("*" = every permission of the app).
    """
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config(app_label)
    app_config.models_module = True  # create_permissions skips apps without it in migrations
    create_permissions(app_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    app_perms = Permission.objects.filter(content_type__app_label=app_label)
    for role_name, codenames in grants.items():
        group, _created = Group.objects.get_or_create(name=role_name)
        perms = app_perms if codenames == ["*"] else app_perms.filter(codename__in=codenames)
        missing = set(codenames) - set(perms.values_list("codename", flat=True)) - {"*"}
        if missing:
            raise LookupError(f"{app_label}: no permissions {sorted(missing)}")
        group.permissions.add(*perms)
