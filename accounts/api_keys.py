"""API keys for the JSON API (scrm/api.py): create, revoke, authenticate, and the ninja auth classes.

A key reads "scrm_<prefix>_<secret>". The prefix (8 hex digits) finds the row through its unique index;
the secret's SHA-256 is compared in constant time. Only the hash is stored, so the full key exists only
in the response that creates it. A key belongs to no user: it is an integration's key, and it sees every
contact, limited only by its scopes.
"""

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from ninja.errors import AuthorizationError
from ninja.security import APIKeyHeader, HttpBearer

from .models import ApiKey, ApiScope

log = logging.getLogger(__name__)

KEY_PREFIX = "scrm"
PREFIX_BYTES = 4  # 8 hex digits
PREFIX_PATTERN = re.compile(r"[0-9a-f]{8}")
SECRET_BYTES = 32
# last_used_at is written at most this often per key, so a busy integration does not cost a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _clean_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = set(scopes)
    unknown = chosen - set(ApiScope.values)
    if unknown:
        raise ValidationError(
            {"scopes": _("Unknown scopes: %(names)s.") % {"names": ", ".join(sorted(unknown))}}
        )
    if not chosen:
        raise ValidationError({"scopes": _("Choose at least one scope.")})
    return [scope for scope in ApiScope.values if scope in chosen]  # in the canonical order


@transaction.atomic
def api_key_create(*, actor, name: str, scopes: Iterable[str]) -> tuple[ApiKey, str]:
    """A new key and its full plaintext, which is never stored and cannot be shown again."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": _("Enter a name.")})
    cleaned = _clean_scopes(scopes)
    while True:  # 2^32 prefixes: a collision is rare, but the unique index would turn it into a 500
        prefix = secrets.token_hex(PREFIX_BYTES)
        if not ApiKey.objects.filter(prefix=prefix).exists():
            break
    secret = secrets.token_urlsafe(SECRET_BYTES)
    key = ApiKey.objects.create(
        name=name, prefix=prefix, hashed_secret=_hash(secret), scopes=cleaned, created_by=actor
    )
    log.info("API key %s (%s) created by %s with scopes %s", key.prefix, name, actor, cleaned)
    return key, f"{KEY_PREFIX}_{prefix}_{secret}"


@transaction.atomic
def api_key_revoke(*, actor, key: ApiKey) -> ApiKey:
    """Revoking is immediate and final; revoking twice keeps the first time."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        log.info("API key %s (%s) revoked by %s", key.prefix, key.name, actor)
    return key


def api_key_authenticate(raw: str | None) -> ApiKey | None:
    """The active key `raw` names, or None (malformed, unknown, wrong secret or revoked)."""
    parts = (raw or "").strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    _scheme, prefix, secret = parts
    if not PREFIX_PATTERN.fullmatch(prefix):  # also keeps NUL and other junk away from the database
        return None
    key = ApiKey.objects.filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.hashed_secret, _hash(secret)):
        return None
    if key.revoked_at is not None:
        return None
    _touch(key)
    return key


def _touch(key: ApiKey) -> None:
    """last_used_at, at most once per LAST_USED_RESOLUTION; the conditional UPDATE makes racing requests one write."""
    now = timezone.now()
    if key.last_used_at and now - key.last_used_at < LAST_USED_RESOLUTION:
        return
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ApiKey.objects.filter(Q(pk=key.pk) & stale).update(last_used_at=now)
    key.last_used_at = now


# --- django-ninja auth -----------------------------------------------------------------------------


class ScopeMissing(AuthorizationError):
    def __init__(self, scope: str) -> None:
        message = gettext_lazy("This API key lacks the scope “%(scope)s”.") % {"scope": scope}
        super().__init__(status_code=403, message=str(message))


def _check(key: ApiKey | None, scope: str | None) -> ApiKey | None:
    if key is not None and scope and scope not in key.scopes:
        raise ScopeMissing(scope)
    return key


class BearerKey(HttpBearer):
    """`Authorization: Bearer scrm_…`. A valid key without `scope` is refused with 403, not 401."""

    def __init__(self, scope: str | None = None) -> None:
        self.scope = scope
        super().__init__()

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        return _check(api_key_authenticate(token), self.scope)


class HeaderKey(APIKeyHeader):
    """`X-API-Key: scrm_…`, for clients that cannot set an Authorization header."""

    param_name = "X-API-Key"

    def __init__(self, scope: str | None = None) -> None:
        self.scope = scope
        super().__init__()

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiKey | None:
        return _check(api_key_authenticate(key), self.scope)


def key_auth(scope: str | None = None) -> list:
    """The `auth=` of an operation needing `scope`: either header works; neither → 401; no scope → 403."""
    return [BearerKey(scope), HeaderKey(scope)]
