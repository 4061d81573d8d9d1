"""Django admin stays available to admins, with our user fields."""

import pytest
from django.urls import reverse


@pytest.mark.parametrize(
    "who, expected", [("anon", 302), ("operator", 302), ("other", 302), ("manager", 302), ("admin", 200)]
)
def test_user_changelist_by_role(role_client, who, expected):
    assert role_client(who).get(reverse("admin:accounts_user_changelist")).status_code == expected


def test_admin_change_and_add_pages_show_our_fields(role_client, operator, manager):
    client = role_client("admin")
    change = client.get(reverse("admin:accounts_user_change", args=[operator.pk]))
    assert change.status_code == 200
    form = change.context["adminform"].form
    assert {"display_name", "manager", "time_zone"} <= set(form.fields)
    assert list(form.fields["manager"].queryset) == [manager]
    add = client.get(reverse("admin:accounts_user_add"))
    assert add.status_code == 200
    assert {"display_name", "manager", "time_zone"} <= set(add.context["adminform"].form.fields)


def test_admin_can_add_a_user_in_django_admin(role_client, manager, django_user_model):
    data = {
        "username": "viaadmin", "password1": "Blue-Lantern-2048", "password2": "Blue-Lantern-2048",
        "usable_password": "true", "display_name": "后台", "manager": manager.pk,
        "time_zone": "Asia/Shanghai",
    }  # fmt: skip
    response = role_client("admin").post(reverse("admin:accounts_user_add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    user = django_user_model.objects.get(username="viaadmin")
    assert user.manager == manager and user.display_name == "后台"
