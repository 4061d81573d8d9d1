"""The segments part of the JSON API (mounted by scrm/api.py under /api/v1).

Keys see every segment, like every contact (accounts.api_keys). Scopes: segments:read for the GETs,
segments:write to create, change and refresh; a segment's members are contacts, so listing them needs
contacts:read as well.

Rules go through the same service as the builder (segments.services.segment_save), so they are validated
the same way: an unknown field or operator, a value of the wrong type, an empty group, groups nested too
deep, a segment naming itself directly or through others — a 422 in the error shape of contacts/api.py,
located at the offending condition inside `definition`:
{"loc": ["body", "payload", "definition", "children", "2", "value"], "field": "definition.children.2.value",
"msg": "...", "type": "value_error"}.
"""

from datetime import datetime
from typing import Annotated, Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils.translation import gettext as _
from ninja import Field, Path, Query, Router, Schema, Status
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError

from accounts.api_keys import ScopeMissing, key_auth
from accounts.models import ApiScope
from contacts.api import (
    AUTH_ERRORS,
    LIST_LIMIT,
    MAX_ID,
    ContactPageOut,
    ErrorOut,
    Text,
    _contacts,
    _field_error,
    _invalid,
    contact_out,
)
from contacts.pagination import SORTS, BadCursor, Page, keyset_page

from .models import Segment, SegmentKind, SegmentMembership
from .rules import RuleError, describe_tree
from .services import segment_refresh_request, segment_save

router = Router(tags=["segments"])

READ, WRITE = ApiScope.SEGMENTS_READ.value, ApiScope.SEGMENTS_WRITE.value
CONTACTS_READ = ApiScope.CONTACTS_READ.value
DESCRIPTION_MAX = 2000
SegmentId = Annotated[int, Path(ge=1, le=MAX_ID)]

RULE_HELP = (
    'The rule: {"type": "group", "match": "all" | "any" | "none", "children": [...]}, each child a group '
    '(at most 5 deep, never empty) or a condition, e.g. {"type": "field", "field": "city", "op": "equals", '
    '"value": "上海"} or {"type": "segment", "op": "in", "segment": 4}.'
)
RULE_EXAMPLE = {
    "type": "group",
    "match": "all",
    "children": [{"type": "field", "field": "last_active_at", "op": "more_than_days_ago", "value": 30}],
}


# --- schemas -----------------------------------------------------------------------------------------


class SegmentOut(Schema):
    id: int
    name: str
    description: str
    kind: SegmentKind
    member_count: int
    refreshed_at: datetime | None = Field(description="When the members were last computed; null: not yet.")
    broken_reason: str = Field(description="Why the rule no longer applies (a deleted tag…); members frozen.")
    refreshing: bool = Field(description="A refresh is queued or running.")
    created_at: datetime
    updated_at: datetime


class SegmentDetailOut(SegmentOut):
    definition: dict[str, Any] = Field(description="The rule tree; {} for a static segment.")
    description_in_words: str = Field(description="The rule in words, in the request's language.")
    count: int = Field(description="The number of members (member_count).")


class SegmentPageOut(Schema):
    results: list[SegmentOut]
    next_cursor: str | None


class PageQuery(Schema):
    limit: int = Field(50, ge=1, le=LIST_LIMIT)
    cursor: Text = Field("", max_length=200, description="next_cursor of the previous page.")


class SegmentListQuery(PageQuery):
    kind: SegmentKind | None = None


class SegmentIn(Schema):
    """A new dynamic segment; its members are computed in the background (see `refreshing`)."""

    name: Text = Field(max_length=100)
    description: Text = Field("", max_length=DESCRIPTION_MAX)
    definition: Any = Field(description=RULE_HELP, examples=[RULE_EXAMPLE])


class SegmentChangeIn(Schema):
    """Only the fields sent change. A static segment has no rule: sending `definition` for one is a 422."""

    name: Text | None = Field(None, max_length=100)
    description: Text | None = Field(None, max_length=DESCRIPTION_MAX)
    definition: Any = Field(None, description=RULE_HELP, examples=[RULE_EXAMPLE])


# --- helpers -----------------------------------------------------------------------------------------

SUMMARY_FIELDS = ("id", "name", "description", "kind", "member_count", "refreshed_at", "broken_reason",
                  "created_at", "updated_at")  # fmt: skip


def segment_out(segment: Segment) -> dict:
    return {
        **{name: getattr(segment, name) for name in SUMMARY_FIELDS},
        "refreshing": segment.refresh_requested_at is not None,
    }


def segment_detail_out(segment: Segment) -> dict:
    words = ""
    if segment.is_dynamic:
        try:
            words = describe_tree(segment.definition)
        except RuleError:  # a condition type whose app is not installed any more: the tree is still shown
            words = ""
    definition = segment.definition if isinstance(segment.definition, dict) else {}
    return {
        **segment_out(segment),
        "definition": definition,
        "description_in_words": words,
        "count": segment.member_count,
    }


def _segment(segment_id: int, qs: QuerySet[Segment] | None = None) -> Segment:
    segment = (Segment.objects.all() if qs is None else qs).filter(pk=segment_id).first()
    if segment is None:
        raise HttpError(404, _("No segment with id %(id)s.") % {"id": segment_id})
    return segment


def _page(qs: QuerySet, query: PageQuery) -> Page:
    """One page in id order (the contacts list's cursors: the same format, the same error)."""
    try:
        return keyset_page(qs, SORTS["oldest"][0], query.cursor or None, query.limit)
    except BadCursor:
        raise NinjaValidationError(
            [_field_error(["query", "cursor"], _("Not a cursor from this API; start without one."))]
        ) from None


def _rule_invalid(error: RuleError) -> NinjaValidationError:
    """A RuleError as a 422 located at the offending node: "children.2.value" -> [..., "children", "2", "value"]."""
    loc = ["body", "payload", "definition", *(error.path.split(".") if error.path else [])]
    return NinjaValidationError([_field_error(loc, error.message)])


def _save(request, *, segment: Segment | None, name: str, description: str, definition: Any) -> Segment:
    """segment_save as an API key (actor None, the key named in the audit), its errors as 422s."""
    try:
        return segment_save(
            actor=None,
            segment=segment,
            name=name,
            description=description,
            definition=definition,
            via=_("API key “%(key)s”") % {"key": request.auth.name},
        )
    except RuleError as error:
        raise _rule_invalid(error) from None
    except DjangoValidationError as exc:
        errors = {field: " ".join(messages) for field, messages in exc.message_dict.items()}
        raise _invalid(errors, prefix=["body", "payload"]) from None


# --- endpoints ---------------------------------------------------------------------------------------


@router.get(
    "/segments",
    auth=key_auth(READ),
    response={200: SegmentPageOut, 422: ErrorOut, **AUTH_ERRORS},
    summary="List segments",
)
def list_segments(request, filters: Query[SegmentListQuery]):
    """Oldest first, `limit` a page; pass `next_cursor` back as `cursor` for the next page (null: no more)."""
    qs = Segment.objects.defer("definition")
    if filters.kind:
        qs = qs.filter(kind=filters.kind.value)
    page = _page(qs, filters)
    return {"results": [segment_out(s) for s in page.rows], "next_cursor": page.next_cursor}


@router.get(
    "/segments/{segment_id}",
    auth=key_auth(READ),
    response={200: SegmentDetailOut, 404: ErrorOut, 422: ErrorOut, **AUTH_ERRORS},
    summary="Get a segment, its rule and its size",
)
def get_segment(request, segment_id: SegmentId):
    return segment_detail_out(_segment(segment_id))


@router.get(
    "/segments/{segment_id}/members",
    auth=key_auth(READ),
    response={200: ContactPageOut, 404: ErrorOut, 422: ErrorOut, **AUTH_ERRORS},
    summary="List a segment's members",
)
def list_members(request, segment_id: SegmentId, page: Query[PageQuery]):
    """The member contacts, in the contacts list's shape, oldest first; needs contacts:read too.
    A dynamic segment's members are as of its last refresh (`refreshed_at`)."""
    if CONTACTS_READ not in request.auth.scopes:
        raise ScopeMissing(CONTACTS_READ)
    segment = _segment(segment_id)
    membership = SegmentMembership.objects.filter(segment_id=segment.pk, contact_id=OuterRef("pk"))
    found = _page(_contacts().filter(Exists(membership)), page)
    return {"results": [contact_out(c) for c in found.rows], "next_cursor": found.next_cursor}


@router.post(
    "/segments",
    auth=key_auth(WRITE),
    response={201: SegmentDetailOut, 422: ErrorOut, **AUTH_ERRORS},
    summary="Create a dynamic segment",
)
def create_segment(request, payload: SegmentIn):
    """The rule is validated like the builder's; the members are computed in the background: poll the
    segment until `refreshing` is false."""
    segment = _save(
        request,
        segment=None,
        name=payload.name,
        description=payload.description,
        definition=payload.definition,
    )
    return Status(201, segment_detail_out(_segment(segment.pk)))


@router.patch(
    "/segments/{segment_id}",
    auth=key_auth(WRITE),
    response={200: SegmentDetailOut, 404: ErrorOut, 422: ErrorOut, **AUTH_ERRORS},
    summary="Change a segment",
)
def change_segment(request, segment_id: SegmentId, payload: SegmentChangeIn):
    """Name and description of any segment; the rule of a dynamic one (a changed rule is refreshed in the
    background)."""
    given = payload.model_dump(exclude_unset=True)
    with transaction.atomic():  # locked: a concurrent change of another field is not overwritten
        segment = _segment(segment_id, Segment.objects.select_for_update())
        if "definition" in given and not segment.is_dynamic:
            message = _("“%(name)s” is a static segment: its members are a fixed list, and it has no rule.")
            raise _invalid({"definition": message % {"name": segment.name}}, prefix=["body", "payload"])
        _save(
            request,
            segment=segment,
            name=(given["name"] or "") if "name" in given else segment.name,  # null: "Enter a name."
            description=(given["description"] or "") if "description" in given else segment.description,
            definition=given.get("definition", segment.definition),
        )
    return segment_detail_out(_segment(segment_id))


@router.post(
    "/segments/{segment_id}/refresh",
    auth=key_auth(WRITE),
    response={202: SegmentDetailOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut, **AUTH_ERRORS},
    summary="Refresh a segment's members",
)
def refresh_segment(request, segment_id: SegmentId):
    """Queues a full refresh of a dynamic segment (202); `refreshing` is true until it is done. A static
    segment's members are a fixed list: 409."""
    segment = _segment(segment_id)
    if not segment.is_dynamic:
        message = _(
            "“%(name)s” is a static segment: its members are a fixed list, there is nothing to refresh."
        )
        raise HttpError(409, message % {"name": segment.name})
    segment_refresh_request(actor=None, segment=segment)
    return Status(202, segment_detail_out(_segment(segment.pk)))
