"""The JSON API at /api/v1 (django-ninja): mounts each app's router and turns every bad request into a 4xx.

OpenAPI: /api/v1/openapi.json; docs: /api/v1/docs (Swagger UI from ninja's own static files — "ninja" is in
INSTALLED_APPS, so no CDN). Auth: an API key (accounts.api_keys) as `Authorization: Bearer <key>` or
`X-API-Key: <key>`; 401 without a valid key, 403 when the key lacks the operation's scope.

Errors are JSON {"detail": ...}. Validation errors are 422 with a list of {loc, field, msg, type}, where
`field` is the dotted path inside the body or query ("events.3.kind").
"""

import json
import logging

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, DataError, connection
from django.http import Http404
from django.urls import URLPattern, URLResolver
from django.utils.translation import gettext as _
from ninja import NinjaAPI, Schema, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError

from contacts.api import router as contacts_router
from segments.api import router as segments_router

log = logging.getLogger(__name__)

api = NinjaAPI(
    title="SCRM API",
    version="1",
    urls_namespace="api",
    description=(
        "Contacts and events for integrations (shops, mini-programs). Authenticate with an API key made by an "
        "admin under Settings → API keys: `Authorization: Bearer scrm_…` or `X-API-Key: scrm_…`."
    ),
)
api.add_router("", contacts_router)
api.add_router("", segments_router)


def _field(loc) -> str:
    """("body", "payload", "events", 3, "kind") -> "events.3.kind"; ("query", "limit") -> "limit"."""
    parts = [str(part) for part in loc]
    if parts[:1] == ["body"]:
        parts = parts[2:]  # the body parameter's name says nothing to a client
        parts = [p for p in parts if p not in ("batch", "one")]  # the union's tags
    elif parts[:1] in (["query"], ["path"], ["header"]):
        parts = parts[1:]
    return ".".join(parts)


@api.exception_handler(ValidationError)
def validation_error(request, exc: ValidationError):
    detail = []
    for error in exc.errors:
        loc = list(error.get("loc", []))
        item = {
            "loc": loc,
            "field": _field(loc),
            "msg": str(error.get("msg", "")),
            "type": error.get("type", ""),
        }
        detail.append(item)
    return api.create_response(request, {"detail": detail}, status=422)


@api.exception_handler(AuthenticationError)
def authentication_error(request, exc):
    message = _("A valid API key is required: send “Authorization: Bearer <key>” or “X-API-Key: <key>”.")
    return api.create_response(request, {"detail": message}, status=401)


@api.exception_handler(HttpError)
def http_error(request, exc: HttpError):
    if exc.status_code == 400 and str(exc).startswith("Cannot parse request body"):
        return malformed_body(request, exc)
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


def malformed_body(request, exc):
    """ninja's "Cannot parse request body", with the parser's reason and our error shape."""
    try:
        json.loads(request.body)
        reason = str(exc.__cause__ or exc)
    except (ValueError, RecursionError) as parse_error:  # bad JSON, bad UTF-8, nested too deep
        reason = str(parse_error)
    message = _("The body is not valid JSON: %(reason)s") % {"reason": reason}
    detail = [{"loc": ["body"], "field": "", "msg": message, "type": "json_invalid"}]
    return api.create_response(request, {"detail": detail}, status=400)


@api.exception_handler(Http404)
def not_found(request, exc):
    return api.create_response(request, {"detail": _("Not found.")}, status=404)


@api.exception_handler(RequestDataTooBig)
def too_big(request, exc):
    return api.create_response(request, {"detail": _("The request body is too large.")}, status=413)


@api.exception_handler(DataError)
def data_error(request, exc):
    """A value the database refuses (a last line of defence: the schemas should have caught it)."""
    log.warning("API request refused by the database: %s", exc)
    return api.create_response(request, {"detail": _("A value cannot be stored; check its size and characters.")},
                               status=422)  # fmt: skip


class HealthOut(Schema):
    status: str
    database: str


@api.get("/health", auth=None, response={200: HealthOut, 503: HealthOut}, tags=["health"], summary="Health")
def health(request):
    """No key needed: 200 when the database answers, 503 when it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        log.error("health check: the database did not answer: %s", exc)
        return Status(503, {"status": "error", "database": "unavailable"})
    return Status(200, {"status": "ok", "database": "ok"})


def _public(patterns):
    """The API has its own auth: exempt its views from LoginRequiredMiddleware (no redirects to a login page)."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            _public(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            pattern.callback.login_required = False
    return patterns


def urls():
    patterns, app_name, namespace = api.urls
    return _public(patterns), app_name, namespace
