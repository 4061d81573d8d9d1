"""The profile page: details, time zone, and times shown in the user's zone."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from accounts.forms import time_zone_choices


def test_profile_shows_role_manager_and_password_link(role_client, operator):
    response = role_client("operator").get(reverse("profile"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "李运营" in html and "王经理" in html  # own display name and the manager's
    assert reverse("password_change") in html
    assert response.context["role"] == "Operator"


def test_manager_profile_lists_the_team(role_client, operator, other_operator):
    response = role_client("manager").get(reverse("profile"))
    assert set(response.context["team"]) == {operator, other_operator}


def test_time_zone_select_starts_with_shanghai():
    assert time_zone_choices()[0][0] == "Asia/Shanghai"
    assert time_zone_choices("Europe/Vienna")[-1][0] == "Europe/Vienna"  # an uncommon current zone stays
    assert "Mars/Olympus" not in dict(time_zone_choices("Mars/Olympus"))


def test_profile_update(role_client, operator):
    data = {"display_name": "小李", "email": "li@example.com", "time_zone": "Asia/Tokyo"}
    response = role_client("operator").post(reverse("profile"), data)
    assert response.status_code == 302 and response.url == reverse("profile")
    operator.refresh_from_db()
    assert (operator.display_name, operator.email, operator.time_zone) == (
        "小李",
        "li@example.com",
        "Asia/Tokyo",
    )


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "asia/shanghai"])
def test_profile_rejects_unknown_time_zone(role_client, operator, zone):
    response = role_client("operator").post(reverse("profile"), {"display_name": "x", "time_zone": zone})
    assert response.status_code == 200
    assert "time_zone" in response.context["form"].errors
    operator.refresh_from_db()
    assert operator.time_zone == "Asia/Shanghai" and operator.display_name == "李运营"


def test_any_real_zone_is_accepted_even_if_not_listed(role_client, operator):
    response = role_client("operator").post(reverse("profile"), {"time_zone": "Europe/Vienna"})
    assert response.status_code == 302
    operator.refresh_from_db()
    assert operator.time_zone == "Europe/Vienna"


def test_times_render_in_the_users_time_zone(role_client, admin_user, django_user_model):
    client = role_client("admin")
    moment = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    django_user_model.objects.filter(pk=admin_user.pk).update(last_login=moment)

    shanghai = client.get(reverse("profile")).content.decode()
    assert "2026-01-15 20:00" in shanghai

    client.post(reverse("profile"), {"display_name": "管理员", "time_zone": "America/New_York"})
    django_user_model.objects.filter(pk=admin_user.pk).update(last_login=moment)
    new_york = client.get(reverse("profile")).content.decode()
    assert "2026-01-15 07:00" in new_york and "America/New_York" in new_york
    listing = client.get(reverse("user_list")).content.decode()
    assert "2026-01-15 07:00" in listing and "2026-01-15 20:00" not in listing
