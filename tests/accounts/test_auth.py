"""Login, logout, password change and the login page's language switcher."""

from django.conf import settings
from django.urls import reverse

PASSWORD = "pw-for-tests-1"  # tests/conftest.py make_user


def test_login_page_shows_card_and_language_switcher(client, db):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "login-card" in html
    assert f'action="{reverse("set_language")}"' in html
    assert 'name="language" value="en"' in html and 'name="language" value="zh-hans"' in html
    assert 'name="username"' in html and 'name="password"' in html


def test_login_works_and_redirects_home(client, operator):
    response = client.post(reverse("login"), {"username": "operator", "password": PASSWORD})
    assert response.status_code == 302
    assert response.url == reverse(settings.LOGIN_REDIRECT_URL)
    assert client.session["_auth_user_id"] == str(operator.pk)


def test_login_follows_next(client, operator):
    profile = reverse("profile")
    response = client.post(
        f"{reverse('login')}?next={profile}", {"username": "operator", "password": PASSWORD, "next": profile}
    )
    assert response.status_code == 302
    assert response.url == profile


def test_login_with_wrong_password_shows_error(client, operator):
    response = client.post(reverse("login"), {"username": "operator", "password": "wrong"})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert "_auth_user_id" not in client.session


def test_inactive_user_cannot_log_in(client, operator):
    operator.is_active = False
    operator.save(update_fields=["is_active"])
    response = client.post(reverse("login"), {"username": "operator", "password": PASSWORD})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_logout_then_pages_need_login_again(client, operator):
    client.force_login(operator)
    assert client.get(reverse("profile")).status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    response = client.get(reverse("profile"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_language_switch_works_before_login(client, db):
    response = client.post(reverse("set_language"), {"language": "en", "next": reverse("login")})
    assert response.status_code == 302
    assert response.url == reverse("login")
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"


def test_password_change(client, operator):
    client.force_login(operator)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "Blue-Lantern-2048",
            "new_password2": "Blue-Lantern-2048",
        },
    )
    assert response.status_code == 302
    assert response.url == reverse("password_change_done")
    operator.refresh_from_db()
    assert operator.check_password("Blue-Lantern-2048")
    # still signed in (session hash updated), and the new password works for the next login
    assert client.get(reverse("password_change_done")).status_code == 200
    client.logout()
    client.post(reverse("login"), {"username": "operator", "password": "Blue-Lantern-2048"})
    assert client.session["_auth_user_id"] == str(operator.pk)


def test_password_change_rejects_wrong_old_and_weak_new(client, operator):
    client.force_login(operator)
    response = client.post(
        reverse("password_change"), {"old_password": "nope", "new_password1": "123", "new_password2": "123"}
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "old_password" in errors
    operator.refresh_from_db()
    assert operator.check_password(PASSWORD)
