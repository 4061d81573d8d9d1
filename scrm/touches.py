"""Draining the contact touch outbox (contacts.ContactTouch) into segments' incremental refresh and SOP triggers.

Edits, imports, bulk actions and merges record the contacts they changed (contacts.touches); contacts sits
below segments and cannot call it. Beat runs the drain every 30 s, so a change reaches every dynamic segment
within a minute. Each batch is claimed and refreshed in one transaction: if the refresh fails, the claim rolls
back and the rows wait for the next run. On PostgreSQL rows are claimed with SKIP LOCKED, so two drains never
take the same rows.
"""

import time

from django.db import connection, transaction

from contacts.models import ContactTouch
from segments.services import segment_refresh_contacts
from sop.triggers import segment_changes_consume, touched_react

# Beat sends one every 30 s: a run ends before the next starts, so drains do not pile up.
TIME_BUDGET_SECONDS = 25.0


def _claim(batch_size: int) -> list[int]:
    """Delete up to batch_size of the oldest touches; returns their contact ids (duplicates included)."""
    table = ContactTouch._meta.db_table
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE id IN "
                f"(SELECT id FROM {table} ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING contact_id",
                [batch_size],
            )
            return [row[0] for row in cursor.fetchall()]
    # SQLite has no row locks; its database lock serialises writers (a touch refreshed twice is harmless).
    rows = list(ContactTouch.objects.order_by("id").values_list("id", "contact_id")[:batch_size])
    ContactTouch.objects.filter(id__in=[pk for pk, _cid in rows]).delete()
    return [cid for _pk, cid in rows]


def drain_contact_touches(batch_size: int = 5000, time_budget: float = TIME_BUDGET_SECONDS) -> int:
    """Refresh every dynamic segment for the touched contacts, batch by batch, until the outbox is empty or the
    time budget is used; returns how many contacts were refreshed (a contact in two batches counts twice).
    A touch of a contact deleted since is claimed like any other: the refresh finds nothing to do for it."""
    started = time.monotonic()
    refreshed = 0
    while time.monotonic() - started < time_budget:
        with transaction.atomic():
            claimed = _claim(batch_size)
            contact_ids = sorted(set(claimed))
            if contact_ids:
                segment_refresh_contacts(contact_ids=contact_ids)
                # SOP: "contact added" / "tag added" triggers, opt-out and exit-tag exits, and the segment
                # triggers of the changes this refresh just made, in the same transaction as the claim.
                touched_react(contact_ids)
                segment_changes_consume(contact_ids=contact_ids)
        refreshed += len(contact_ids)
        if len(claimed) < batch_size:  # the outbox is empty (or the rest is another drain's)
            break
    return refreshed
