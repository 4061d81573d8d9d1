"""Every accounts view for each role: anonymous, operator, other operator, manager, admin."""

import pytest
from django.urls import reverse

ROLES = ("anon", "operator", "other", "manager", "admin")
LOGGED_IN = {"operator": 200, "other": 200, "manager": 200, "admin": 200}
ADMIN_ONLY = {"operator": 404, "other": 404, "manager": 404, "admin": 200}


def _url(name, operator):
    return reverse(name, args=[operator.pk]) if name == "user_edit" else reverse(name)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("login", {"anon": 200, **LOGGED_IN}),
        ("password_change", {"anon": "login", **LOGGED_IN}),
        ("password_change_done", {"anon": "login", **LOGGED_IN}),
        ("profile", {"anon": "login", **LOGGED_IN}),
        ("user_list", {"anon": "login", **ADMIN_ONLY}),
        ("user_create", {"anon": "login", **ADMIN_ONLY}),
        ("user_edit", {"anon": "login", **ADMIN_ONLY}),
    ],
)
@pytest.mark.parametrize("who", ROLES)
def test_get_by_role(role_client, operator, name, expected, who):
    url = _url(name, operator)
    response = role_client(who).get(url)
    if expected[who] == "login":
        assert response.status_code == 302
        assert response.url == f"{reverse('login')}?next={url}"
    else:
        assert response.status_code == expected[who]


@pytest.mark.parametrize("name", ["user_create", "user_edit"])
@pytest.mark.parametrize("who", ["operator", "other", "manager"])
def test_non_admins_cannot_post_user_changes(role_client, operator, django_user_model, name, who):
    before = list(django_user_model.objects.values_list("username", "is_active").order_by("pk"))
    data = {"username": "sneaky", "role": "Admin", "time_zone": "Asia/Shanghai", "is_active": ""}
    response = role_client(who).post(_url(name, operator), data)
    assert response.status_code == 404
    assert list(django_user_model.objects.values_list("username", "is_active").order_by("pk")) == before


def test_anonymous_post_to_user_create_redirects_to_login(role_client, django_user_model):
    count = django_user_model.objects.count()
    response = role_client("anon").post(reverse("user_create"), {"username": "x"})
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert django_user_model.objects.count() == count


@pytest.mark.parametrize("who", ROLES)
def test_logout_by_role(role_client, who):
    client = role_client(who)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert "_auth_user_id" not in client.session


def test_user_edit_unknown_pk_is_404_for_admin(role_client):
    assert role_client("admin").get(reverse("user_edit", args=[999_999])).status_code == 404


def test_superuser_without_groups_counts_as_admin(client, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw-for-tests-1")
    client.force_login(root)
    assert client.get(reverse("user_list")).status_code == 200
