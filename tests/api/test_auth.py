"""Every endpoint × (no key, malformed key, wrong secret, revoked key, under-scoped key, right scope)."""

import pytest

from accounts.api_keys import api_key_authenticate
from accounts.models import ApiKey, ApiScope

from .conftest import ALL_SCOPES, ApiClient

READ, WRITE, EVENTS = ApiScope.CONTACTS_READ.value, ApiScope.CONTACTS_WRITE.value, ApiScope.EVENTS_WRITE.value


def endpoints(contact):
    event = {"idempotency_key": "auth-1", "kind": "check_in", "occurred_at": "2024-05-01T10:00:00+08:00",
             "contact_id": contact.pk}  # fmt: skip
    return [
        ("get", "/contacts", None, READ, 200),
        ("get", f"/contacts/{contact.pk}", None, READ, 200),
        ("post", "/contacts", {"name": "王五", "phone": "13700137000"}, WRITE, 201),
        ("post", "/events", event, EVENTS, 201),
    ]


def call(api: ApiClient, method, path, body, key):
    return api.get(path, key=key) if method == "get" else api.post(path, body, key=key)


@pytest.mark.parametrize("index", range(4))
def test_missing_bad_and_revoked_keys_are_401(api, contact, revoked_key, full_key, index):
    method, path, body, _scope, _ok = endpoints(contact)[index]
    wrong_secret = full_key[:-4] + ("aaaa" if not full_key.endswith("aaaa") else "bbbb")
    for key in (None, "nonsense", "scrm_zzzz_secret", "scrm_\x00_x", wrong_secret, revoked_key):
        response = call(api, method, path, body, key)
        assert response.status_code == 401, (key, response.content)
        assert "API key" in response.json()["detail"]


@pytest.mark.parametrize("index", range(4))
def test_under_scoped_key_is_403_and_right_scope_passes(api, make_key, contact, index):
    method, path, body, scope, ok = endpoints(contact)[index]
    others = [s for s in ALL_SCOPES if s != scope]
    response = call(api, method, path, body, make_key(*others))
    assert response.status_code == 403
    assert scope in response.json()["detail"]
    assert call(api, method, path, body, make_key(scope)).status_code == ok


def test_x_api_key_header_works_too(client, full_key, contact):
    response = client.get(f"/api/v1/contacts/{contact.pk}", headers={"X-API-Key": full_key})
    assert response.status_code == 200
    assert response.json()["name"] == "张三"
    assert client.get(f"/api/v1/contacts/{contact.pk}", headers={"X-API-Key": "scrm_x_y"}).status_code == 401


def test_session_login_is_not_an_api_key(client, admin_user, contact):
    client.force_login(admin_user)
    assert client.get(f"/api/v1/contacts/{contact.pk}").status_code == 401


def test_health_needs_no_key(client, db):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_last_used_is_recorded_at_most_once_a_minute(full_key, time_machine):
    time_machine.move_to("2026-01-01 10:00:00Z")
    key = api_key_authenticate(full_key)
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    assert first is not None
    time_machine.move_to("2026-01-01 10:00:30Z")
    api_key_authenticate(full_key)
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first
    time_machine.move_to("2026-01-01 10:01:30Z")
    api_key_authenticate(full_key)
    assert ApiKey.objects.get(pk=key.pk).last_used_at > first


def test_openapi_and_docs_are_served_without_a_cdn(client, db):
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/contacts", "/api/v1/contacts/{contact_id}", "/api/v1/events", "/api/v1/health"} <= set(
        paths
    )
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()


def test_errors_are_in_chinese_without_accept_language(client, contact):
    response = client.get(f"/api/v1/contacts/{contact.pk}")
    assert response.status_code == 401
    assert "API 密钥" in response.json()["detail"]
