"""Merging two contacts: THE entry point (views and, later, the API call merge_contacts, never contact_merge).

contacts.merging.contact_merge moves what the contacts app owns (events, notes, tags, audit entries,
custom fields, activity totals). Each later app that keeps rows per contact (loyalty points, SOP
enrollments, churn alerts) registers a handler here, in order, so a merge never loses or orphans them.
A handler is called inside the merge transaction, before the duplicate is deleted:

    def handler(*, actor, survivor: Contact, duplicate: Contact) -> dict[str, int] | None

and returns what it moved (e.g. {"points_lots": 3}) for the audit entry.
"""

from collections.abc import Mapping

from django.db import transaction

from contacts.merging import MergeHandler, contact_merge
from contacts.models import Contact
from segments.services import segment_history_move, segment_refresh_contacts
from sop.enrollment import enrollments_move

# Later issues append here: loyalty (points lots and entries, member), churn (alerts, scores).
MERGE_HANDLERS: list[MergeHandler] = [segment_history_move, enrollments_move]


def merge_contacts(
    *, actor, survivor: Contact, duplicate: Contact, field_choices: Mapping[str, str]
) -> Contact:
    """Merge `duplicate` into `survivor` (see contacts.merging.contact_merge) with every app's handler."""
    with transaction.atomic():
        merged = contact_merge(
            actor=actor,
            survivor=survivor,
            duplicate=duplicate,
            field_choices=field_choices,
            handlers=MERGE_HANDLERS,
        )
        # The survivor's fields and totals changed: its dynamic segments follow at once.
        segment_refresh_contacts(contact_ids=[merged.pk])
    return merged
