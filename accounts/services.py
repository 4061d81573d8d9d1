"""Writes to users and roles. Every rule about roles lives here; views and forms only call in.

Errors a person can fix are raised as ValidationError keyed by argument name
(username, role, manager, time_zone, is_active, password), so a view can put them on its form.
"""

import logging

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from .models import User, validate_time_zone
from .roles import Role, role_of
from .selectors import is_manager_role, username_taken

log = logging.getLogger(__name__)

ROLE_NAMES = [role.value for role in Role]


def _forget_role(user: User) -> None:
    user.__dict__.pop("_scrm_role", None)  # role_of's per-request cache


@transaction.atomic
def user_set_role(*, user: User, role: Role) -> None:
    """Puts the user in exactly one role group; Admins get is_staff (Django admin), others lose it.

    Groups that are not roles are left alone, and so is is_superuser.
    """
    role = Role(role)
    groups = {group.name: group for group in Group.objects.filter(name__in=ROLE_NAMES)}
    if role.value not in groups:
        raise Group.DoesNotExist(f"The role group {role.value!r} is missing; run the migrations.")
    user.groups.remove(*[group for name, group in groups.items() if name != role.value])
    user.groups.add(groups[role.value])
    is_staff = role == Role.ADMIN
    if user.is_staff != is_staff:
        user.is_staff = is_staff
        user.save(update_fields=["is_staff"])
    _forget_role(user)


def _error(message, code: str) -> list[ValidationError]:
    return [ValidationError(message, code=code)]


def _manager_errors(*, user: User | None, manager: User | None) -> list:
    if manager is None:
        return []
    if user is not None and manager.pk == user.pk:
        return _error(_("A user cannot be their own manager."), "self_manager")
    if user is not None and user.manager_id == manager.pk:
        return []  # unchanged: a team keeps its manager even after that manager leaves or changes role
    if not manager.is_active or not is_manager_role(manager):
        return _error(_("Choose an active user with the Manager role."), "not_manager")
    return []


def _own_account_errors(*, actor: User, user: User, role: Role, is_active: bool) -> dict[str, list]:
    """Nobody takes away their own Admin role or deactivates themselves, so an admin always remains."""
    if actor.pk != user.pk:
        return {}
    errors = {}
    if role_of(user) == Role.ADMIN and role != Role.ADMIN:
        errors["role"] = _error(_("You cannot remove your own Admin role."), "own_admin_role")
    if not is_active:
        errors["is_active"] = _error(_("You cannot deactivate your own account."), "deactivate_self")
    return errors


def _check(errors: dict[str, list]) -> None:
    errors = {field: messages for field, messages in errors.items() if messages}
    if errors:
        raise ValidationError(errors)


def _username_errors(username: str, *, exclude_pk: int | None = None) -> list:
    if username_taken(username, exclude_pk=exclude_pk):
        return _error(_("A user with that username already exists."), "unique")
    return []


def _time_zone_errors(time_zone: str) -> list:
    try:
        validate_time_zone(time_zone)
    except ValidationError as exc:
        return exc.error_list
    return []


def _password_errors(password: str | None, user: User, *, required: bool = False) -> list:
    if not password:
        return _error(_("Enter a password."), "required") if required else []
    try:
        validate_password(password, user)
    except ValidationError as exc:
        return exc.error_list
    return []


def _as_it_will_be(user: User, username: str, display_name: str, email: str) -> User:
    """An unsaved copy with the new attributes, for the password similarity check."""
    return User(
        username=username, display_name=display_name, email=email,
        first_name=user.first_name, last_name=user.last_name,
    )  # fmt: skip


@transaction.atomic
def user_create(
    *,
    actor: User,
    username: str,
    password: str,
    role: Role,
    display_name: str = "",
    email: str = "",
    manager: User | None = None,
    time_zone: str = settings.TIME_ZONE,
) -> User:
    """Creates a user with one role. `password` goes through Django's password validators."""
    user = User(
        username=username, display_name=display_name, email=User.objects.normalize_email(email),
        manager=manager, time_zone=time_zone,
    )  # fmt: skip
    _check(
        {
            "username": _username_errors(username),
            "manager": _manager_errors(user=None, manager=manager),
            "time_zone": _time_zone_errors(time_zone),
            "password": _password_errors(password, user, required=True),
        }
    )
    user.set_password(password)
    user.save()
    user_set_role(user=user, role=role)
    log.info("user %s created with role %s by %s", user.username, Role(role).value, actor.username)
    return user


@transaction.atomic
def user_update(
    *,
    actor: User,
    user: User,
    username: str,
    display_name: str,
    email: str,
    role: Role,
    manager: User | None,
    time_zone: str,
    is_active: bool,
    password: str | None = None,
) -> User:
    """Changes a user's details, role and active flag, and (when given) their password.

    Deactivating a manager leaves their team pointing at them.
    """
    role = Role(role)
    _check(
        {
            "username": _username_errors(username, exclude_pk=user.pk),
            "manager": _manager_errors(user=user, manager=manager),
            "time_zone": _time_zone_errors(time_zone),
            "password": _password_errors(password, _as_it_will_be(user, username, display_name, email)),
            **_own_account_errors(actor=actor, user=user, role=role, is_active=is_active),
        }
    )
    user.username = username
    user.display_name = display_name
    user.email = User.objects.normalize_email(email)
    user.manager = manager
    user.time_zone = time_zone
    user.is_active = is_active
    fields = ["username", "display_name", "email", "manager", "time_zone", "is_active"]
    if password:
        user.set_password(password)
        fields.append("password")
    user.save(update_fields=fields)
    user_set_role(user=user, role=role)
    log.info("user %s updated by %s", user.username, actor.username)
    return user


@transaction.atomic
def user_profile_update(*, user: User, display_name: str, email: str, time_zone: str) -> User:
    """What people change about themselves on the profile page."""
    _check({"time_zone": _time_zone_errors(time_zone)})
    user.display_name = display_name
    user.email = User.objects.normalize_email(email)
    user.time_zone = time_zone
    user.save(update_fields=["display_name", "email", "time_zone"])
    return user
