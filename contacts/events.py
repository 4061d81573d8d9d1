"""Recording events: the one way an Event row is made, whatever the door (UI, API, import, WeCom).

The unique idempotency key is the guard against doubles, not a read-then-write: rows are inserted with
ON CONFLICT DO NOTHING ... RETURNING, so two requests replaying one key at the same moment make one event,
and each learns whether it was the one that created it. Each new event gets its PendingEvent row (the
pipeline's inbox) in the same statement, and its id is handed to the pipeline (scrm.pipeline) on commit; the
pipeline's minute sweep picks up any whose hand-over was lost.
"""

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from celery import current_app
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import Event, EventKind, PendingEvent

MAX_FUTURE = timedelta(days=1)  # clocks drift; a date further ahead is a data error
MAX_AMOUNT = Decimal("9999999999.99")  # Event.amount has 12 digits, 2 after the point
INSERT_CHUNK = 500  # rows per INSERT statement (SQLite's bound-parameter limit)
COLUMNS = "contact_id, kind, occurred_at, amount, payload, source, idempotency_key, order_id, created_at"
PIPELINE_TASK = "scrm.tasks.process_events_task"  # sent by name: contacts never imports scrm
# EventKind.values builds a new list at every access: a 1,000-event POST spent ~40 ms on it.
KNOWN_KINDS = frozenset(EventKind.values)
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventIn:
    contact_id: int
    kind: str
    occurred_at: datetime
    idempotency_key: str
    amount: Decimal | None = None
    payload: dict = field(default_factory=dict)
    order_id: str = ""


@dataclass(frozen=True)
class EventOutcome:
    key: str
    event_id: int | None
    created: bool
    error: str = ""


def validate_event_fields(
    *, kind: str, occurred_at: datetime | None, amount: Decimal | None, order_id: str = "", now=None
) -> dict[str, str]:
    """Field -> message for what is wrong with one event, before any write."""
    errors = {}
    if kind not in KNOWN_KINDS:
        errors["kind"] = _("Unknown event kind “%(kind)s”. Known kinds: %(kinds)s.") % {
            "kind": kind,
            "kinds": ", ".join(EventKind.values),
        }
    now = now or timezone.now()
    if occurred_at is None:
        errors["occurred_at"] = _("A time is required.")
    elif timezone.is_naive(occurred_at):
        errors["occurred_at"] = _("The time needs a time zone.")
    elif occurred_at > now + MAX_FUTURE:
        errors["occurred_at"] = _("The time is in the future.")
    if amount is not None:
        if not amount.is_finite() or amount < 0:
            errors["amount"] = _("The amount cannot be negative.")
        elif amount > MAX_AMOUNT or amount.as_tuple().exponent < -2:
            errors["amount"] = _("The amount must have at most 10 digits before and 2 after the point.")
    if kind == EventKind.PURCHASE and amount is None:
        errors["amount"] = _("A purchase needs an amount.")
    if kind == EventKind.REFUND and not order_id:
        errors["order_id"] = _("A refund must name the order it refunds.")
    if len(order_id) > 64:
        errors["order_id"] = _("The order ID is longer than 64 characters.")
    return errors


def _refund_errors(events: Sequence[EventIn]) -> dict[int, str]:
    """Index -> message for refunds whose order is unknown, belongs to someone else, or is over-refunded."""
    refunds = {i: e for i, e in enumerate(events) if e.kind == EventKind.REFUND}
    if not refunds:
        return {}
    order_ids = {e.order_id for e in refunds.values()}
    purchases = {
        order_id: (contact_id, amount)
        for order_id, contact_id, amount in Event.objects.filter(
            kind=EventKind.PURCHASE, order_id__in=order_ids
        ).values_list("order_id", "contact_id", "amount")
    }
    for e in events:  # a purchase earlier in the same batch counts too
        if e.kind == EventKind.PURCHASE and e.order_id in order_ids:
            purchases.setdefault(e.order_id, (e.contact_id, e.amount))
    errors = {}
    for i, refund in refunds.items():
        purchase = purchases.get(refund.order_id)
        if purchase is None:
            errors[i] = _("No purchase with order ID “%(order)s” to refund.") % {"order": refund.order_id}
        elif purchase[0] != refund.contact_id:
            errors[i] = _("Order “%(order)s” belongs to another contact.") % {"order": refund.order_id}
        elif refund.amount is not None and purchase[1] is not None and refund.amount > purchase[1]:
            errors[i] = _("The refund is larger than the order (%(amount)s).") % {"amount": purchase[1]}
    return errors


def _insert_returning(rows: list[EventIn], source: str, now) -> dict[str, int]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING: key -> id of the rows this call created."""
    if connection.vendor == "postgresql":
        return _insert_returning_unnest(rows, source, now)
    table = Event._meta.db_table
    one = "(%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    created: dict[str, int] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            params = []
            for e in chunk:
                params += [
                    e.contact_id, e.kind, e.occurred_at, e.amount, json.dumps(e.payload, ensure_ascii=False),
                    source, e.idempotency_key, e.order_id, now,
                ]  # fmt: skip
            cursor.execute(
                f"INSERT INTO {table} ({COLUMNS}) VALUES {', '.join([one] * len(chunk))} "
                f"ON CONFLICT DO NOTHING RETURNING id, idempotency_key",
                params,
            )
            created.update({key: pk for pk, key in cursor.fetchall()})
    events_owed_to_pipeline(created.values())
    return created


def _insert_returning_unnest(rows: list[EventIn], source: str, now) -> dict[str, int]:
    """PostgreSQL: one array per column and unnest(), so a batch of 1,000 is 9 parameters, not 9,000."""
    table, inbox = Event._meta.db_table, PendingEvent._meta.db_table
    sql = (
        f"WITH new AS (INSERT INTO {table} ({COLUMNS}) "
        "SELECT c, k, o, a, p::jsonb, %s, i, r, %s FROM unnest("
        "%s::bigint[], %s::text[], %s::timestamptz[], %s::numeric[], %s::text[], %s::text[], %s::text[]"
        ") AS t(c, k, o, a, p, i, r) ON CONFLICT DO NOTHING RETURNING id, idempotency_key), "
        f"owed AS (INSERT INTO {inbox} (event_id) SELECT id FROM new) "
        "SELECT id, idempotency_key FROM new"
    )
    params = [
        source,
        now,
        [e.contact_id for e in rows],
        [e.kind for e in rows],
        [e.occurred_at for e in rows],
        [e.amount for e in rows],
        [json.dumps(e.payload, ensure_ascii=False) for e in rows],
        [e.idempotency_key for e in rows],
        [e.order_id for e in rows],
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {key: pk for pk, key in cursor.fetchall()}


def events_record(*, events: Sequence[EventIn], source: str) -> list[EventOutcome]:
    """Record events; outcomes come back in input order. Replayed keys return the original event."""
    now = timezone.now()
    outcomes: dict[int, EventOutcome] = {}
    with transaction.atomic():
        refund_errors = _refund_errors(events)
        seen: dict[str, int] = {}
        to_insert: list[EventIn] = []
        for i, e in enumerate(events):
            if i in refund_errors:
                outcomes[i] = EventOutcome(e.idempotency_key, None, False, refund_errors[i])
            elif e.idempotency_key in seen:
                continue  # the same key twice in one batch: the first one speaks for both
            else:
                seen[e.idempotency_key] = i
                to_insert.append(e)
        created = _insert_returning(to_insert, source, now) if to_insert else {}
        replayed = set(seen) - set(created)
        originals = dict(
            Event.objects.filter(idempotency_key__in=replayed).values_list("idempotency_key", "id")
        )
        for i, e in enumerate(events):
            if i in outcomes:
                continue
            key = e.idempotency_key
            if key in created and seen[key] == i:
                outcomes[i] = EventOutcome(key, created[key], True)
            elif key in created or key in originals:
                outcomes[i] = EventOutcome(key, created.get(key) or originals[key], False)
            else:  # skipped by the order-id constraint, not the key
                message = _("Order “%(order)s” was already recorded under another idempotency key.")
                outcomes[i] = EventOutcome(key, None, False, message % {"order": e.order_id})
        if created:
            new_ids = sorted(created.values())
            transaction.on_commit(lambda: _hand_to_pipeline(new_ids))
    return [outcomes[i] for i in range(len(events))]


def events_owed_to_pipeline(event_ids: Iterable[int]) -> None:
    """Put events in the pipeline's inbox. events_record does it for every event it makes; only a bulk load
    that inserts Event rows itself (the demo data set) calls this."""
    PendingEvent.objects.bulk_create(
        [PendingEvent(event_id=pk) for pk in event_ids], batch_size=INSERT_CHUNK, ignore_conflicts=True
    )


def _hand_to_pipeline(event_ids: list[int]) -> None:
    """Best effort: if the broker is down, the pipeline's minute sweep applies these events instead.

    A signature by name (not an import of scrm.tasks) keeps contacts below scrm, and still honours
    eager mode in tests because the registered task type is used.
    """
    try:
        current_app.signature(PIPELINE_TASK, args=[event_ids]).apply_async()
    except Exception:  # noqa: BLE001 — a lost hand-over delays the events; the sweep applies them
        logger.warning("pipeline hand-over failed for %d events; the sweep will apply them", len(event_ids))
