"""Recording contacts whose segment membership may have changed (the ContactTouch outbox).

Every write path of this app that changes what a segment rule can see (fields, tags, tier, custom values) calls
contacts_touched in its own transaction: the touch commits or rolls back with the change. scrm.touches drains
the outbox into segments' incremental refresh; contacts may not call segments itself (it sits below it).
The event pipeline records each batch's contacts here too (its step 5).
"""

from collections.abc import Iterable

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from .models import ContactTouch

BATCH = 1000  # rows per INSERT where ids are sent one parameter each (SQLite)


def contacts_touched(contact_ids: Iterable[int] | QuerySet) -> None:
    """Record these contacts as touched. A QuerySet of one id column (values("contact_id"), values_list(...,
    flat=True)) is written with one INSERT … SELECT, so ids never travel through Python."""
    if isinstance(contact_ids, QuerySet):
        _insert_select(contact_ids)
        return
    ids = sorted(set(contact_ids))
    if not ids:
        return
    if connection.vendor == "postgresql":
        _insert_array(ids)
    else:
        ContactTouch.objects.bulk_create([ContactTouch(contact_id=cid) for cid in ids], batch_size=BATCH)


def _now_param():
    return connection.ops.adapt_datetimefield_value(timezone.now())


def _insert_array(ids: list[int]) -> None:
    # One statement and one parameter however many ids: an import chunk of 10,000 costs a few milliseconds.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ContactTouch._meta.db_table} (touched_at, contact_id) SELECT %s, unnest(%s::bigint[])",
            [_now_param(), ids],
        )


def _insert_select(queryset: QuerySet) -> None:
    sql, params = queryset.order_by().query.sql_with_params()  # an ORDER BY would only cost a sort
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ContactTouch._meta.db_table} (touched_at, contact_id) SELECT %s, ids.* FROM ({sql}) ids",
            [_now_param(), *params],
        )
