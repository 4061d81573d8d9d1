"""Users and roles pages: an admin creates, lists, edits and deactivates users; bad input saves nothing."""

import pytest
from django.urls import reverse

from accounts.roles import Role

GOOD_PASSWORD = "Blue-Lantern-2048"


def _groups(user):
    return sorted(user.groups.values_list("name", flat=True))


def create_data(**overrides):
    data = {
        "username": "newop",
        "display_name": "新运营",
        "email": "newop@example.com",
        "role": "Operator",
        "manager": "",
        "time_zone": "Asia/Shanghai",
        "password": GOOD_PASSWORD,
        "password_confirm": GOOD_PASSWORD,
    }
    data.update(overrides)
    return data


def edit_data(user, **overrides):
    role = user.groups.filter(name__in=[r.value for r in Role]).values_list("name", flat=True).first()
    data = {
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "role": role or "",
        "manager": user.manager_id or "",
        "time_zone": user.time_zone,
        "is_active": "on" if user.is_active else "",
        "password": "",
        "password_confirm": "",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def test_admin_creates_lists_edits_and_deactivates(role_client, manager, django_user_model):
    client = role_client("admin")
    response = client.post(reverse("user_create"), create_data(manager=manager.pk))
    assert response.status_code == 302 and response.url == reverse("user_list")
    user = django_user_model.objects.get(username="newop")
    assert _groups(user) == ["Operator"] and not user.is_staff and not user.is_superuser
    assert user.manager == manager and user.display_name == "新运营" and user.check_password(GOOD_PASSWORD)

    listing = client.get(reverse("user_list"))
    assert 'data-testid="user-row-newop"' in listing.content.decode()
    rows = {u.username: u for u in listing.context["page"].object_list}
    assert rows["newop"].role == Role.OPERATOR and rows["newop"].manager == manager
    assert rows["manager"].team_size == 3  # operator, other and newop

    response = client.post(reverse("user_edit", args=[user.pk]), edit_data(user, role="Manager"))
    assert response.status_code == 302
    user.refresh_from_db()
    assert _groups(user) == ["Manager"] and not user.is_staff

    response = client.post(reverse("user_edit", args=[user.pk]), edit_data(user, role="Admin"))
    user.refresh_from_db()
    assert _groups(user) == ["Admin"] and user.is_staff and not user.is_superuser

    response = client.post(
        reverse("user_edit", args=[user.pk]), edit_data(user, role="Operator", is_active="")
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert not user.is_active and _groups(user) == ["Operator"] and not user.is_staff


def test_created_user_can_log_in(role_client, client, manager):
    role_client("admin").post(reverse("user_create"), create_data(manager=manager.pk))
    client.logout()
    client.post(reverse("login"), {"username": "newop", "password": GOOD_PASSWORD})
    assert "_auth_user_id" in client.session
    assert client.get(reverse("user_list")).status_code == 404  # an operator


def test_operator_without_manager_is_allowed_with_a_warning(role_client, django_user_model):
    response = role_client("admin").post(reverse("user_create"), create_data(), follow=True)
    assert response.status_code == 200
    assert django_user_model.objects.get(username="newop").manager is None
    assert [m.level_tag for m in response.context["messages"]] == ["success", "warning"]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"username": "operator"}, "username"),
        ({"username": "OPERATOR"}, "username"),
        ({"username": "bad name!"}, "username"),
        ({"password_confirm": "Blue-Lantern-2049"}, "password_confirm"),
        ({"password": "12345678", "password_confirm": "12345678"}, "password"),
        ({"password": "newop-op", "password_confirm": "newop-op"}, "password"),
        ({"password": "", "password_confirm": ""}, "password"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"role": "Superhero"}, "role"),
        ({"email": "not-an-email"}, "email"),
    ],
)
def test_create_bad_input_saves_nothing(role_client, django_user_model, overrides, field):
    count = django_user_model.objects.count()
    response = role_client("admin").post(reverse("user_create"), create_data(**overrides))
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert django_user_model.objects.count() == count


@pytest.mark.parametrize("who", ["operator", "admin_user"])
def test_create_with_manager_that_is_not_a_manager(role_client, django_user_model, request, who):
    not_a_manager = request.getfixturevalue(who)
    count = django_user_model.objects.count()
    response = role_client("admin").post(reverse("user_create"), create_data(manager=not_a_manager.pk))
    assert response.status_code == 200
    assert "manager" in response.context["form"].errors
    assert django_user_model.objects.count() == count


def test_create_form_offers_only_active_managers(role_client, manager, django_user_model):
    retired = django_user_model.objects.create_user("retired", password="x")
    retired.groups.add(manager.groups.get())
    retired.is_active = False
    retired.save()
    form = role_client("admin").get(reverse("user_create")).context["form"]
    assert list(form.fields["manager"].queryset) == [manager]


def test_admin_cannot_remove_own_admin_role(role_client, admin_user):
    response = role_client("admin").post(
        reverse("user_edit", args=[admin_user.pk]), edit_data(admin_user, role="Manager")
    )
    assert response.status_code == 200
    assert response.context["form"].has_error("role", "own_admin_role")
    admin_user.refresh_from_db()
    assert _groups(admin_user) == ["Admin"] and admin_user.is_staff


def test_admin_cannot_deactivate_self(role_client, admin_user):
    response = role_client("admin").post(
        reverse("user_edit", args=[admin_user.pk]), edit_data(admin_user, is_active="")
    )
    assert response.status_code == 200
    assert response.context["form"].has_error("is_active", "deactivate_self")
    admin_user.refresh_from_db()
    assert admin_user.is_active


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"username": "other"}, "username"),
        ({"manager": "self"}, "manager"),
        ({"manager": "other"}, "manager"),
        ({"time_zone": "Nowhere/Special"}, "time_zone"),
        ({"password": GOOD_PASSWORD, "password_confirm": "something-else"}, "password_confirm"),
        ({"password": "password", "password_confirm": "password"}, "password"),
    ],
)
def test_edit_bad_input_changes_nothing(role_client, operator, other_operator, overrides, field):
    ids = {"self": operator.pk, "other": other_operator.pk}
    if overrides.get("manager") in ids:
        overrides = {**overrides, "manager": ids[overrides["manager"]]}
    before = (operator.username, operator.manager_id, operator.time_zone, operator.password)
    response = role_client("admin").post(
        reverse("user_edit", args=[operator.pk]), edit_data(operator, **overrides)
    )
    assert response.status_code == 200
    assert field in response.context["form"].errors
    operator.refresh_from_db()
    assert (operator.username, operator.manager_id, operator.time_zone, operator.password) == before


def test_edit_sets_new_password(role_client, operator):
    data = edit_data(operator, password=GOOD_PASSWORD, password_confirm=GOOD_PASSWORD)
    assert role_client("admin").post(reverse("user_edit", args=[operator.pk]), data).status_code == 302
    operator.refresh_from_db()
    assert operator.check_password(GOOD_PASSWORD)


def test_edit_without_password_keeps_it(role_client, operator):
    old = operator.password
    data = edit_data(operator, display_name="李运营二")
    assert role_client("admin").post(reverse("user_edit", args=[operator.pk]), data).status_code == 302
    operator.refresh_from_db()
    assert operator.password == old and operator.display_name == "李运营二"


def test_admin_changing_own_password_stays_signed_in(role_client, admin_user):
    client = role_client("admin")
    data = edit_data(admin_user, password=GOOD_PASSWORD, password_confirm=GOOD_PASSWORD)
    assert client.post(reverse("user_edit", args=[admin_user.pk]), data).status_code == 302
    assert client.get(reverse("user_list")).status_code == 200


def test_deactivating_a_manager_keeps_the_team(role_client, manager, operator, other_operator):
    client = role_client("admin")
    assert (
        client.post(reverse("user_edit", args=[manager.pk]), edit_data(manager, is_active="")).status_code
        == 302
    )
    manager.refresh_from_db()
    operator.refresh_from_db()
    assert not manager.is_active and operator.manager == manager
    # a team member can still be edited without choosing a new manager first
    response = client.post(reverse("user_edit", args=[operator.pk]), edit_data(operator, display_name="改名"))
    assert response.status_code == 302
    operator.refresh_from_db()
    assert operator.manager == manager and operator.display_name == "改名"


def test_user_list_filters_and_search(role_client):
    client = role_client("admin")

    def names(query):
        return sorted(u.username for u in client.get(reverse("user_list"), query).context["page"].object_list)

    assert names({}) == ["admin", "manager", "operator", "other"]
    assert names({"role": "Operator"}) == ["operator", "other"]
    assert names({"role": "Manager"}) == ["manager"]
    assert names({"role": "Admin"}) == ["admin"]
    assert names({"q": "李运营"}) == ["operator"]
    assert names({"q": "OTH"}) == ["other"]
    assert names({"role": "bogus", "status": "weird", "page": "x"}) == [
        "admin",
        "manager",
        "operator",
        "other",
    ]


def test_user_list_status_and_no_role_filters(role_client, operator, django_user_model):
    django_user_model.objects.create_user("norole", password="x")
    operator.is_active = False
    operator.save(update_fields=["is_active"])
    client = role_client("admin")

    def names(query):
        return sorted(u.username for u in client.get(reverse("user_list"), query).context["page"].object_list)

    assert names({"role": "none"}) == ["norole"]
    assert names({"status": "inactive"}) == ["operator"]
    assert "operator" not in names({"status": "active"})


def test_user_list_htmx_returns_the_results_fragment(role_client):
    response = role_client("admin").get(reverse("user_list"), {"role": "Manager"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and 'data-testid="user-row-manager"' in html
    assert 'data-testid="user-row-operator"' not in html


def test_user_list_history_restore_gets_the_full_page(role_client):
    headers = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    response = role_client("admin").get(reverse("user_list"), headers=headers)
    assert "<html" in response.content.decode()


def test_password_help_follows_the_request_language(role_client):
    client = role_client("admin")
    english = client.get(reverse("user_create"), headers={"Accept-Language": "en"}).content.decode()
    chinese = client.get(reverse("user_create"), headers={"Accept-Language": "zh-hans"}).content.decode()
    assert "at least 8 characters" in english
    assert "at least 8 characters" not in chinese
