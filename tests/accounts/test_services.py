"""accounts.services against the real database."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError

from accounts import services
from accounts.roles import Role, role_of
from accounts.selectors import users_with_roles


def _groups(user):
    return sorted(user.groups.values_list("name", flat=True))


def _codes(exc: ValidationError) -> dict[str, list[str]]:
    return {field: [e.code for e in errors] for field, errors in exc.error_dict.items()}


@pytest.mark.parametrize("role", list(Role))
def test_set_role_gives_exactly_one_role_group(operator, role):
    other_group = Group.objects.create(name="Newsletter")
    operator.groups.add(other_group, Group.objects.get(name="Manager"))
    services.user_set_role(user=operator, role=role)
    operator.refresh_from_db()
    assert _groups(operator) == sorted([role.value, "Newsletter"])
    assert operator.is_staff == (role == Role.ADMIN)
    assert role_of(operator) == role


def test_set_role_never_touches_superuser(django_user_model):
    root = django_user_model.objects.create_superuser("root", "r@example.com", "pw-for-tests-1")
    services.user_set_role(user=root, role=Role.OPERATOR)
    root.refresh_from_db()
    assert root.is_superuser and not root.is_staff and _groups(root) == ["Operator"]


def test_user_create(admin_user, manager):
    user = services.user_create(
        actor=admin_user, username="li", password="Blue-Lantern-2048", role=Role.OPERATOR,
        display_name="李", email="Li@EXAMPLE.com", manager=manager, time_zone="Asia/Tokyo",
    )  # fmt: skip
    user.refresh_from_db()
    assert _groups(user) == ["Operator"] and user.manager == manager and user.time_zone == "Asia/Tokyo"
    assert user.email == "Li@example.com" and user.check_password("Blue-Lantern-2048")


def test_user_create_collects_every_error(admin_user, operator, django_user_model):
    count = django_user_model.objects.count()
    with pytest.raises(ValidationError) as info:
        services.user_create(
            actor=admin_user, username="Operator", password="123", role=Role.OPERATOR,
            manager=operator, time_zone="Mars/Olympus",
        )  # fmt: skip
    codes = _codes(info.value)
    assert codes["username"] == ["unique"] and codes["manager"] == ["not_manager"]
    assert "time_zone" in codes and "password_too_short" in codes["password"]
    assert django_user_model.objects.count() == count


def test_user_create_needs_a_password(admin_user):
    with pytest.raises(ValidationError) as info:
        services.user_create(actor=admin_user, username="x", password="", role=Role.OPERATOR)
    assert _codes(info.value) == {"password": ["required"]}


def _update(actor, user, **changes):
    current = {
        "username": user.username, "display_name": user.display_name, "email": user.email,
        "role": role_of(user), "manager": user.manager, "time_zone": user.time_zone,
        "is_active": user.is_active,
    }  # fmt: skip
    return services.user_update(actor=actor, user=user, **{**current, **changes})


def test_user_update_role_and_staff(admin_user, operator):
    _update(admin_user, operator, role=Role.ADMIN)
    operator.refresh_from_db()
    assert _groups(operator) == ["Admin"] and operator.is_staff
    _update(admin_user, operator, role=Role.MANAGER)
    operator.refresh_from_db()
    assert _groups(operator) == ["Manager"] and not operator.is_staff


def test_user_update_own_admin_role_and_active_flag_are_protected(admin_user):
    with pytest.raises(ValidationError) as info:
        _update(admin_user, admin_user, role=Role.OPERATOR, is_active=False)
    assert _codes(info.value) == {"role": ["own_admin_role"], "is_active": ["deactivate_self"]}
    admin_user.refresh_from_db()
    assert admin_user.is_active and _groups(admin_user) == ["Admin"] and admin_user.is_staff


def test_another_admin_may_demote_an_admin(admin_user, django_user_model):
    second = django_user_model.objects.create_user("second", password="x")
    services.user_set_role(user=second, role=Role.ADMIN)
    _update(second, admin_user, role=Role.MANAGER, is_active=False)
    admin_user.refresh_from_db()
    assert _groups(admin_user) == ["Manager"] and not admin_user.is_active and not admin_user.is_staff


def test_user_update_manager_must_be_a_manager(admin_user, operator, other_operator):
    with pytest.raises(ValidationError) as info:
        _update(admin_user, operator, manager=other_operator)
    assert _codes(info.value) == {"manager": ["not_manager"]}
    with pytest.raises(ValidationError) as info:
        _update(admin_user, operator, manager=operator)
    assert _codes(info.value) == {"manager": ["self_manager"]}


def test_deactivating_or_demoting_a_manager_leaves_the_team(admin_user, manager, operator, other_operator):
    _update(admin_user, manager, is_active=False)
    _update(admin_user, manager, role=Role.OPERATOR)
    assert set(manager.team.all()) == {operator, other_operator}
    # unchanged stale manager is fine when editing a team member ...
    operator.refresh_from_db()
    _update(admin_user, operator, display_name="新名字")
    # ... but nobody may be newly assigned to them
    with pytest.raises(ValidationError):
        services.user_create(actor=admin_user, username="n", password="Blue-Lantern-2048", role=Role.OPERATOR,
                             manager=manager)  # fmt: skip


def test_user_update_password(admin_user, operator):
    _update(admin_user, operator, password="Blue-Lantern-2048")
    operator.refresh_from_db()
    assert operator.check_password("Blue-Lantern-2048")
    with pytest.raises(ValidationError) as info:
        _update(admin_user, operator, username="zhangwei", password="zhangwei1")
    assert "password_too_similar" in _codes(info.value)["password"]


def test_profile_update(operator):
    services.user_profile_update(user=operator, display_name="小李", email="", time_zone="Europe/Berlin")
    operator.refresh_from_db()
    assert (operator.display_name, operator.time_zone) == ("小李", "Europe/Berlin")
    with pytest.raises(ValidationError):
        services.user_profile_update(user=operator, display_name="", email="", time_zone="Europe/Atlantis")


def test_users_with_roles_annotation(operator, manager, admin_user, django_user_model):
    django_user_model.objects.create_superuser("root", "r@example.com", "x")
    django_user_model.objects.create_user("nobody", password="x")
    roles = dict(users_with_roles().values_list("username", "role_name"))
    assert roles == {
        "operator": "Operator",
        "manager": "Manager",
        "admin": "Admin",
        "root": "Admin",
        "nobody": "",
    }
