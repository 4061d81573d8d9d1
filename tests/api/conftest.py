"""API fixtures: keys with chosen scopes, and a client that sends one."""

import json

import pytest

from accounts.api_keys import api_key_create, api_key_revoke
from accounts.models import ApiScope

ALL_SCOPES = [scope.value for scope in ApiScope]


@pytest.fixture
def make_key(db, admin_user):
    def _make(*scopes, name="shop"):
        _key, raw = api_key_create(actor=admin_user, name=name, scopes=scopes or ALL_SCOPES)
        return raw

    return _make


@pytest.fixture
def full_key(make_key):
    return make_key()


@pytest.fixture
def revoked_key(db, admin_user):
    key, raw = api_key_create(actor=admin_user, name="old", scopes=ALL_SCOPES)
    api_key_revoke(actor=admin_user, key=key)
    return raw


class ApiClient:
    """The Django test client with a key and JSON bodies; asks for English (the messages asserted are the
    English source; without Accept-Language the API answers in the default language, Chinese)."""

    def __init__(self, client, key: str | None):
        self.client, self.key = client, key

    def _headers(self, key):
        key = self.key if key is ... else key
        return {"Accept-Language": "en", **({"Authorization": f"Bearer {key}"} if key else {})}

    def get(self, path, params=None, *, key=...):
        return self.client.get(f"/api/v1{path}", params or {}, headers=self._headers(key))

    def post(self, path, body, *, key=..., raw: bool = False):
        data = body if raw else json.dumps(body)
        return self.client.post(
            f"/api/v1{path}", data, content_type="application/json", headers=self._headers(key)
        )


@pytest.fixture
def api(client, full_key):
    return ApiClient(client, full_key)
