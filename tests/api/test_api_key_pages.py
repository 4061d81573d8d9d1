"""The API key pages (admins only) and the key services: shown once, stored hashed, revocable."""

import hashlib

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.api_keys import api_key_authenticate, api_key_create, api_key_revoke
from accounts.models import ApiKey, ApiScope


@pytest.fixture
def key(admin_user):
    return api_key_create(actor=admin_user, name="有赞商城", scopes=[ApiScope.EVENTS_WRITE])


@pytest.mark.parametrize(
    ("who", "status"), [("anon", 302), ("operator", 404), ("manager", 404), ("admin", 200)]
)
@pytest.mark.parametrize("page", ["list", "create", "revoke"])
def test_pages_are_for_admins_only(role_client, key, who, status, page):
    url = {
        "list": reverse("api_key_list"),
        "create": reverse("api_key_create"),
        "revoke": reverse("api_key_revoke", args=[key[0].pk]),
    }[page]
    response = role_client(who).get(url)
    assert response.status_code == status
    if who == "anon":
        assert reverse("login") in response["Location"]


@pytest.mark.parametrize("who", ["operator", "manager"])
def test_non_admins_cannot_create_or_revoke_by_post(role_client, key, who):
    client = role_client(who)
    assert (
        client.post(reverse("api_key_create"), {"name": "x", "scopes": ["contacts:read"]}).status_code == 404
    )
    assert client.post(reverse("api_key_revoke", args=[key[0].pk])).status_code == 404
    assert ApiKey.objects.count() == 1
    assert ApiKey.objects.get().revoked_at is None


def test_create_shows_the_key_once_and_stores_only_its_hash(role_client):
    client = role_client("admin")
    response = client.post(
        reverse("api_key_create"), {"name": "小程序", "scopes": ["contacts:read", "events:write"]}
    )
    assert response.status_code == 200
    raw = response.context["raw_key"]
    assert raw.startswith("scrm_")
    html = response.content.decode()
    assert raw in html and 'data-testid="api-key-value"' in html and "alert-warning" in html
    assert response["Cache-Control"].startswith("max-age=0") or "no-store" in response["Cache-Control"]
    stored = ApiKey.objects.get()
    assert stored.name == "小程序"
    assert stored.scopes == ["contacts:read", "events:write"]
    secret = raw.split("_", 2)[2]
    assert stored.hashed_secret == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(ApiKey.objects.values().get())
    listing = client.get(reverse("api_key_list")).content.decode()
    assert stored.prefix in listing and "小程序" in listing
    assert secret not in listing
    assert api_key_authenticate(raw) == stored


def test_create_form_errors(role_client):
    client = role_client("admin")
    response = client.post(reverse("api_key_create"), {"name": " ", "scopes": []})
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"name", "scopes"}
    response = client.post(reverse("api_key_create"), {"name": "x", "scopes": ["admin:all"]})
    assert "scopes" in response.context["form"].errors
    assert not ApiKey.objects.exists()


def test_revoke_asks_first_then_revokes(role_client, key):
    api_key, raw = key
    client = role_client("admin")
    page = client.get(reverse("api_key_revoke", args=[api_key.pk]))
    assert "有赞商城" in page.content.decode()
    api_key.refresh_from_db()
    assert api_key.revoked_at is None
    response = client.post(reverse("api_key_revoke", args=[api_key.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("api_key_list")
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert api_key_authenticate(raw) is None
    listing = client.get(reverse("api_key_list")).content.decode()
    assert f"api-key-row-{api_key.prefix}" in listing
    assert f"api-key-revoke-{api_key.prefix}" not in listing  # no revoke button on a revoked key


def test_revoke_twice_keeps_the_first_time(admin_user, key):
    api_key = api_key_revoke(actor=admin_user, key=key[0])
    first = api_key.revoked_at
    assert api_key_revoke(actor=admin_user, key=api_key).revoked_at == first


def test_service_rejects_bad_input(admin_user):
    with pytest.raises(ValidationError):
        api_key_create(actor=admin_user, name="x", scopes=[])
    with pytest.raises(ValidationError):
        api_key_create(actor=admin_user, name="", scopes=["contacts:read"])
    assert not ApiKey.objects.exists()


def test_keys_are_unique_and_authenticate_only_exactly(admin_user):
    (k1, raw1), (k2, raw2) = (
        api_key_create(actor=admin_user, name=n, scopes=["contacts:read"]) for n in "ab"
    )
    assert k1.prefix != k2.prefix and raw1 != raw2
    assert api_key_authenticate(raw1) == k1
    prefix_of_1_secret_of_2 = f"scrm_{k1.prefix}_{raw2.split('_', 2)[2]}"
    assert api_key_authenticate(prefix_of_1_secret_of_2) is None
    assert api_key_authenticate(raw1 + "x") is None
    assert api_key_authenticate("") is None


def test_nav_has_the_api_keys_entry_for_admins(role_client):
    assert reverse("api_key_list") in role_client("admin").get(reverse("home")).content.decode()
    assert reverse("api_key_list") not in role_client("manager").get(reverse("home")).content.decode()
