"""The event pipeline (DESIGN.md): every new Event is applied here, in batches, exactly once.

A batch is claimed and applied in one transaction: the events' rows in the inbox (contacts.PendingEvent) are
deleted, and each handler below runs set-based over the batch, in this fixed order. If anything fails, the
whole transaction rolls back, the inbox rows come back, and the task's retry (or the minute sweep) applies the
batch again from scratch, so a batch is never half-applied and never applied twice.

Handlers, in order (later issues add theirs where marked):
1. contacts: activity fields (last_active_at, first/last_purchase_at, order_count, total_spent)
2. loyalty: earning rules, refunds reverse earnings            (issue: loyalty)
3. sop: exit conditions (purchase, reply, goal), event triggers ("first purchase")
4. churn: recovery of open alerts, immediate alerts            (issue: churn)
5. segments: the batch's contacts go into the touch outbox (contacts.ContactTouch) in the batch's transaction;
   the 30-s drain (scrm/touches.py) refreshes every dynamic segment for them and consumes the entered/exited
   changes as SOP segment triggers (and "left the audience" exits)

Why step 5 hands over instead of refreshing inline (docs/architecture.md, "The event pipeline"): the refresh
costs ~10 µs per contact and dynamic segment, so inline it made the pipeline's throughput fall with every
segment a team saves (1M contacts, 50 segments: ~600 ms per 1,000 events). Through the outbox a contact with
many events in half a minute is refreshed once, the pipeline's speed no longer depends on the segments, and
membership still follows within a minute (the drain runs every 30 s).
"""

from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import connection, transaction

from contacts.models import Contact, Event, EventKind, PendingEvent
from contacts.touches import contacts_touched
from sop.triggers import events_react

# Kinds that do not show the customer being active: our own messages, and the customer leaving.
NOT_ACTIVITY = (EventKind.MESSAGE_OUT, EventKind.FRIEND_DELETED)


def _ids_param(ids: list[int]) -> tuple[str, object]:
    """SQL for "id in this list" with one bound parameter on either database."""
    if connection.vendor == "postgresql":
        return "= ANY(%s)", ids
    import json

    return "IN (SELECT value FROM json_each(%s))", json.dumps(ids)


def apply_contact_activity(event_ids: list[int]) -> int:
    """One UPDATE ... FROM (aggregate of the batch) for every touched contact; returns how many it changed.

    A refund takes its amount (or the whole order's, when it names none) off the total; a full refund
    also takes the order off the count, a partial one does not. Dates only move forward (last_*) or back (first_purchase_at).

    Contacts the batch changes nothing for (our own messages, events older than what the contact already
    shows) are left alone: PostgreSQL writes a new row version, with an entry in each of the contacts
    table's 17 indexes, even for an UPDATE that sets every column to its old value.
    """
    contact, event = Contact._meta.db_table, Event._meta.db_table
    ids_sql, ids = _ids_param(event_ids)
    not_activity = ", ".join(f"'{kind}'" for kind in NOT_ACTIVITY)
    purchase, refund = EventKind.PURCHASE.value, EventKind.REFUND.value

    def later(column, value):  # GREATEST that ignores NULL, on both databases
        return f"CASE WHEN c.{column} IS NULL OR a.{value} > c.{column} THEN a.{value} ELSE c.{column} END"

    def earlier(column, value):
        return f"CASE WHEN c.{column} IS NULL OR a.{value} < c.{column} THEN a.{value} ELSE c.{column} END"

    # Each refund of the batch looks up its purchase by the (kind, order_id) index, as a correlated
    # subquery: a join let the planner, with stale statistics on fresh events, walk every purchase with an
    # order id against the batch instead (measured at 1M contacts: 960 ms instead of 2 ms per 1,000 events).
    # A refund's purchase always exists (events_record checks it); a NULL amount would be read as "all".
    sql = f"""
        WITH batch AS (
            SELECT e.id, e.contact_id, e.kind, e.occurred_at, e.amount, e.order_id
            FROM {event} AS e WHERE e.id {ids_sql}
        ), refunded AS (
            SELECT b.id, (
                SELECT p.amount FROM {event} AS p
                WHERE p.kind = '{purchase}' AND p.order_id = b.order_id AND p.order_id <> ''
            ) AS order_amount
            FROM batch AS b
            WHERE b.kind = '{refund}'
        )
        UPDATE {contact} AS c SET
            last_active_at = {later("last_active_at", "last_active")},
            first_purchase_at = {earlier("first_purchase_at", "first_purchase")},
            last_purchase_at = {later("last_purchase_at", "last_purchase")},
            order_count = c.order_count + a.orders,
            total_spent = c.total_spent + a.spent
        FROM (
            SELECT b.contact_id,
                MAX(b.occurred_at) FILTER (WHERE b.kind NOT IN ({not_activity})) AS last_active,
                MIN(b.occurred_at) FILTER (WHERE b.kind = '{purchase}') AS first_purchase,
                MAX(b.occurred_at) FILTER (WHERE b.kind = '{purchase}') AS last_purchase,
                COUNT(*) FILTER (WHERE b.kind = '{purchase}')
                    - COUNT(*) FILTER (WHERE b.kind = '{refund}' AND (b.amount IS NULL OR b.amount >= r.order_amount))
                    AS orders,
                COALESCE(SUM(b.amount) FILTER (WHERE b.kind = '{purchase}'), 0)
                    - COALESCE(SUM(COALESCE(b.amount, r.order_amount)) FILTER (WHERE b.kind = '{refund}'), 0)
                    AS spent
            FROM batch AS b
            LEFT JOIN refunded AS r ON r.id = b.id
            GROUP BY b.contact_id
            ORDER BY b.contact_id  -- the join walks this order, so two workers lock shared contacts alike
        ) AS a
        WHERE c.id = a.contact_id AND (
            a.orders <> 0 OR a.spent <> 0
            OR a.last_active > c.last_active_at OR (c.last_active_at IS NULL AND a.last_active IS NOT NULL)
            OR a.first_purchase < c.first_purchase_at
            OR (c.first_purchase_at IS NULL AND a.first_purchase IS NOT NULL)
            OR a.last_purchase > c.last_purchase_at OR (c.last_purchase_at IS NULL AND a.last_purchase IS NOT NULL)
        )
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [ids])
        if cursor.rowcount >= 0:
            return cursor.rowcount
        cursor.execute("SELECT changes()")  # SQLite reports no row count for a statement that starts WITH
        return cursor.fetchone()[0]


def apply_sop_events(event_ids: list[int]) -> None:
    """SOP exits (a purchase, a reply, a goal) and event triggers for the batch."""
    events_react(event_ids)


def apply_segment_membership(event_ids: list[int]) -> None:
    """The batch's contacts (their activity fields were just updated) join the touch outbox; the drain brings
    every dynamic segment up to date for them and fires the SOP triggers of the changes that makes."""
    contacts_touched(Event.objects.filter(id__in=event_ids).values_list("contact_id", flat=True).distinct())


# The fixed order of reactions to a batch of events. Each takes the ids of the claimed events.
HANDLERS: list[Callable[[list[int]], None]] = [
    apply_contact_activity,
    # loyalty's handler goes here (its issue), then sop's:
    apply_sop_events,
    # churn's handler goes here (its issue).
    apply_segment_membership,
]


def _claim(event_ids: Iterable[int]) -> list[int]:
    """Take the events among `event_ids` still in the inbox out of it; returns the ids claimed, in order.

    Rows another run holds are skipped, not waited for: that run applies them, or, if it fails, its
    rollback leaves them for the sweep. (SQLite has no row locks; its database lock serialises writers.)
    """
    ids = sorted(set(event_ids))
    inbox = PendingEvent._meta.db_table
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {inbox} WHERE event_id IN (SELECT event_id FROM {inbox} WHERE event_id = ANY(%s) "
                f"ORDER BY event_id FOR UPDATE SKIP LOCKED) RETURNING event_id",
                [ids],
            )
            return sorted(row[0] for row in cursor.fetchall())
    claimed = list(
        PendingEvent.objects.filter(event_id__in=ids).order_by("event_id").values_list("event_id", flat=True)
    )
    PendingEvent.objects.filter(event_id__in=claimed).delete()
    return claimed


def process_events(event_ids: Iterable[int]) -> int:
    """Apply the events not yet applied among `event_ids`; returns how many were applied."""
    event_ids = list(event_ids)
    applied = 0
    size = settings.PIPELINE_BATCH_SIZE
    for start in range(0, len(event_ids), size):
        with transaction.atomic():
            claimed = _claim(event_ids[start : start + size])
            for handler in HANDLERS:
                if claimed:
                    handler(claimed)
        applied += len(claimed)
    return applied


def pending_event_ids(limit: int) -> list[int]:
    return list(PendingEvent.objects.order_by("event_id").values_list("event_id", flat=True)[:limit])


def process_pending_events(*, max_batches: int | None = None) -> int:
    """The catch-up sweep: apply every event still owed, oldest first, batch by batch."""
    applied, batches = 0, 0
    while max_batches is None or batches < max_batches:
        ids = pending_event_ids(settings.PIPELINE_BATCH_SIZE)
        done = process_events(ids) if ids else 0
        if not done:  # nothing owed, or all of it is being applied by another worker right now
            break
        applied += done
        batches += 1
    return applied
