"""Keyset (cursor) pagination: a page is one index range scan, whatever its depth.

Each sort is a column plus `id` as tie-breaker, served by a "<column>, id" index. A nullable
column is read in two phases — rows with a value, then rows without (nulls last when descending,
first when ascending) — so each phase stays a plain range scan instead of an OR over NULLs.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Sort:
    field: str
    descending: bool
    nullable: bool = False
    is_datetime: bool = False


SORTS = {
    "newest": (Sort("id", True), _("Newest first")),
    "oldest": (Sort("id", False), _("Oldest first")),
    "name": (Sort("name", False), _("Name A–Z")),
    "recently_active": (Sort("last_active_at", True, nullable=True, is_datetime=True), _("Recently active")),
    "least_active": (Sort("last_active_at", False, nullable=True, is_datetime=True), _("Least active")),
    "recently_joined": (Sort("joined_at", True, is_datetime=True), _("Recently joined")),
}
DEFAULT_SORT = "newest"


class BadCursor(ValueError):
    pass


def encode_cursor(value, pk: int) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([value, pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, sort: Sort):
    try:
        padded = token + "=" * (-len(token) % 4)
        value, pk = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BadCursor(token) from exc
    if not isinstance(pk, int):
        raise BadCursor(token)
    if sort.field == "id":
        value = pk
    elif value is not None and sort.is_datetime:
        value = parse_datetime(value) if isinstance(value, str) else None
        if value is None:
            raise BadCursor(token)
    elif value is not None and not isinstance(value, str):
        raise BadCursor(token)
    if value is None and not sort.nullable:
        raise BadCursor(token)
    return value, pk


def _order(sort: Sort) -> list[str]:
    sign = "-" if sort.descending else ""
    return [f"{sign}{sort.field}", f"{sign}id"] if sort.field != "id" else [f"{sign}id"]


def _after(sort: Sort, value, pk: int) -> Q:
    """Rows strictly after (value, pk) in sort order, among rows whose column has a value."""
    f = sort.field
    if f == "id":
        return Q(id__lt=pk) if sort.descending else Q(id__gt=pk)
    if sort.descending:
        # The redundant `<=` bounds the index range scan; the OR only filters inside it.
        return Q(**{f"{f}__lte": value}) & (Q(**{f"{f}__lt": value}) | Q(**{f: value, "id__lt": pk}))
    return Q(**{f"{f}__gte": value}) & (Q(**{f"{f}__gt": value}) | Q(**{f: value, "id__gt": pk}))


def _null_phase_after(sort: Sort, pk: int | None) -> Q:
    q = Q(**{f"{sort.field}__isnull": True})
    if pk is not None:
        q &= Q(id__lt=pk) if sort.descending else Q(id__gt=pk)
    return q


@dataclass
class Page:
    rows: list
    next_cursor: str | None


def keyset_page(qs: QuerySet, sort: Sort, cursor: str | None, size: int) -> Page:
    """One page of `qs` in `sort` order after `cursor` (raises BadCursor for a forged one)."""
    value, pk = decode_cursor(cursor, sort) if cursor else (None, None)
    in_null_phase = cursor is not None and sort.nullable and value is None
    sign = "-" if sort.descending else ""
    # (condition, ordering) per phase, in reading order.
    valued_phase = (
        (Q(**{f"{sort.field}__isnull": False}) if sort.nullable else Q())
        & (_after(sort, value, pk) if cursor and not in_null_phase else Q()),
        _order(sort),
    )
    null_phase = (_null_phase_after(sort, pk if in_null_phase else None), [f"{sign}id"])
    if not sort.nullable:
        phases = [valued_phase]
    elif sort.descending:  # values first, then nulls
        phases = [null_phase] if in_null_phase else [valued_phase, null_phase]
    else:  # nulls first, then values
        phases = [null_phase, valued_phase] if cursor is None or in_null_phase else [valued_phase]
    rows: list = []
    for condition, order in phases:
        wanted = size + 1 - len(rows)
        if wanted <= 0:
            break
        rows.extend(qs.filter(condition).order_by(*order)[:wanted])
    has_more = len(rows) > size
    rows = rows[:size]
    next_cursor = encode_cursor(getattr(rows[-1], sort.field), rows[-1].pk) if has_more and rows else None
    return Page(rows=rows, next_cursor=next_cursor)
