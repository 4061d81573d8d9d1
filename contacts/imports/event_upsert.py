"""Order/event import: rows -> contacts.events.events_record, whose idempotency keys make a re-import a no-op.

A row with an order ID gets the key "order:<kind>:<order id>" (the same key the shop's API posts would use);
one without gets a key derived from the row's content, so the same file imported again records nothing.
"""

import hashlib

from django.db import transaction
from django.db.models import Min
from django.utils.translation import gettext as _

from ..events import EventIn, events_record
from ..models import EventSource
from ..selectors import contacts_visible_to
from .rows import EventRow, RowError
from .upsert import ChunkResult


def idempotency_key(row: EventRow) -> str:
    if row.order_id:
        return f"order:{row.kind}:{row.order_id}"[:128]
    key_name, key_value = row.keys[0]
    content = "|".join(
        (
            key_name,
            key_value,
            row.kind,
            row.occurred_at.isoformat(),
            "" if row.amount is None else str(row.amount),
        )
    )
    return "import:" + hashlib.sha256(content.encode()).hexdigest()[:40]


class EventImporter:
    def __init__(self, *, actor, job_id: int | None = None):
        self.visible = contacts_visible_to(actor)
        self.job_id = job_id

    def _contact_ids(self, rows: list[EventRow]) -> dict[tuple[str, str], int]:
        wanted: dict[str, set] = {"external_userid": set(), "phone": set(), "email": set()}
        for row in rows:
            for name, value in row.keys:
                wanted[name].add(value)
        found = {}
        for name, values in wanted.items():
            if values:
                qs = self.visible.exclude(**{name: ""}).filter(**{f"{name}__in": values})
                for value, contact_id in qs.values(name).annotate(first=Min("id")).values_list(name, "first"):
                    found[(name, value)] = contact_id
        return found

    def apply(self, rows: list[EventRow], *, on_commit_progress=None) -> ChunkResult:
        result = ChunkResult()
        with transaction.atomic():
            ids = self._contact_ids(rows)
            events, sources = [], []
            for row in rows:
                contact_id = next((ids[key] for key in row.keys if key in ids), None)
                if contact_id is None:
                    result.failed.append(
                        RowError(
                            row.line, row.cells, _("No contact with this external user ID, phone or email.")
                        )
                    )
                    result.statuses[row.line] = "failed"
                    continue
                payload = {"import_job": self.job_id} if self.job_id else {}
                events.append(
                    EventIn(
                        contact_id=contact_id,
                        kind=row.kind,
                        occurred_at=row.occurred_at,
                        idempotency_key=idempotency_key(row),
                        amount=row.amount,
                        payload=payload,
                        order_id=row.order_id,
                    )  # fmt: skip
                )
                sources.append(row)
            outcomes = events_record(events=events, source=EventSource.IMPORT) if events else []
            for row, outcome in zip(sources, outcomes, strict=True):
                if outcome.error:
                    result.failed.append(RowError(row.line, row.cells, outcome.error))
                    result.statuses[row.line] = "failed"
                elif outcome.created:
                    result.created += 1
                    result.statuses[row.line] = "created"
                else:
                    result.unchanged += 1
                    result.statuses[row.line] = "unchanged"
            if on_commit_progress:
                on_commit_progress(result)
        return result
