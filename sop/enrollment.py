"""Starting and ending enrollments, set-based: a trigger for one customer and "enroll this segment of a
million" are the same two INSERT … SELECT statements (enrollments, then their first touchpoints).

Idempotent by construction: Enrollment is unique per (template, contact, trigger_key) and per (template,
contact) while active, and the inserts skip conflicts, so a trigger replayed or seen by two workers enrolls once.
"""

import json
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from contacts.models import Contact
from segments.models import SegmentMembership

from .models import Enrollment, ExitReason, Reentry, SkipReason, SopStep, SopTemplate, Touchpoint, TouchStatus
from .schedule import step_due

CANDIDATES = "cand"  # alias of the (contact_id, trigger_key) rows an enrollment statement reads


def _table(model) -> str:
    return model._meta.db_table


def _dt(value: datetime):
    """A datetime as the database stores it (SQLite: naive UTC text), for raw SQL parameters."""
    return connection.ops.adapt_datetimefield_value(value)


def pairs_source(pairs: Iterable[tuple[int, str]]) -> tuple[str, list]:
    """SQL rows (contact_id, trigger_key) from Python pairs, one bound parameter however many."""
    pairs = list(pairs)
    if connection.vendor == "postgresql":
        return (
            "SELECT * FROM unnest(%s::bigint[], %s::text[]) AS p(contact_id, trigger_key)",
            [[p[0] for p in pairs], [p[1] for p in pairs]],
        )
    return (
        "SELECT json_extract(value, '$[0]') AS contact_id, json_extract(value, '$[1]') AS trigger_key "
        "FROM json_each(%s)",
        [json.dumps(pairs)],
    )


def queryset_source(contact_ids: QuerySet, trigger_key: str) -> tuple[str, list]:
    """SQL rows (contact_id, trigger_key) from a queryset of contact ids and one key for all."""
    selected = contact_ids.query.values_select
    if len(selected) != 1:
        raise ValueError(
            "queryset_source needs a queryset of one column: .values('id') or .values('contact_id')"
        )
    try:
        sql, params = contact_ids.order_by().query.sql_with_params()
    except EmptyResultSet:  # .none(), or id__in=[]: a source of no rows
        return "SELECT CAST(NULL AS BIGINT) AS contact_id, CAST(NULL AS TEXT) AS trigger_key WHERE 1 = 0", []
    # The trigger key's parameter comes first in the statement, before the subquery's own.
    return f"SELECT q.{selected[0]} AS contact_id, %s AS trigger_key FROM ({sql}) AS q", [
        trigger_key,
        *params,
    ]


def _reentry_sql(template: SopTemplate, now: datetime) -> tuple[str, list]:
    enrollment = _table(Enrollment)
    if not Enrollment.objects.filter(template=template).exists():
        # A template's first enrollments have nothing to re-enter. Leaving the anti-join out matters: planned
        # against statistics that say the table is empty (autovacuum's, before a first big enrollment), it
        # scans sop_enrollment once per candidate and meets this statement's own new rows — quadratic
        # (1M members of a segment: not finished after 18 minutes).
        return "TRUE", []
    earlier = f"SELECT 1 FROM {enrollment} AS prev WHERE prev.template_id = %s AND prev.contact_id = {CANDIDATES}.contact_id"
    if template.reentry == Reentry.ONCE:
        return f"NOT EXISTS ({earlier})", [template.pk]
    if template.reentry == Reentry.AFTER_DAYS:
        since = now - timedelta(days=template.reentry_days)
        return f"NOT EXISTS ({earlier} AND (prev.status = 'active' OR prev.enrolled_at > %s))", [
            template.pk,
            _dt(since),
        ]
    return f"NOT EXISTS ({earlier} AND prev.status = 'active')", [template.pk]


def _enrollment_insert(
    template: SopTemplate, source: tuple[str, list], now: datetime, actor_id
) -> tuple[str, list]:
    """INSERT … SELECT of the candidates who pass the re-entry policy and the audience (SQL, params)."""
    reentry, reentry_params = _reentry_sql(template, now)
    audience, audience_params = "", []
    if template.audience_id:
        audience = (
            f"AND EXISTS (SELECT 1 FROM {_table(SegmentMembership)} AS m "
            f"WHERE m.segment_id = %s AND m.contact_id = {CANDIDATES}.contact_id)"
        )
        audience_params = [template.audience_id]
    source_sql, source_params = source
    # DISTINCT ON would be PostgreSQL-only; a candidate named twice in one call is dropped by the conflict.
    sql = f"""
        INSERT INTO {_table(Enrollment)} (template_id, contact_id, status, trigger_key, enrolled_at,
                                          enrolled_by_id, ended_at, exit_reason)
        SELECT %s, {CANDIDATES}.contact_id, 'active', {CANDIDATES}.trigger_key, %s, %s, NULL, ''
        FROM ({source_sql}) AS {CANDIDATES}
        JOIN {_table(Contact)} AS c ON c.id = {CANDIDATES}.contact_id
        WHERE {reentry} {audience}
        ON CONFLICT DO NOTHING
    """
    return sql, [template.pk, _dt(now), actor_id, *source_params, *reentry_params, *audience_params]


def _due_case(first: SopStep, now: datetime, zones: list[str]) -> tuple[str, list]:
    """The first step's due time per customer: a CASE over the zones among them (a zone PostgreSQL would not
    know, or SQLite cannot compute, never reaches SQL: unknown names fall back in Python)."""
    cases, params = [], []
    for tz_name in zones:
        cases.append("WHEN %s THEN %s")
        params += [tz_name, _dt(step_due(first, enrolled_at=now, previous_sent_at=None, tz_name=tz_name))]
    fallback = _dt(step_due(first, enrolled_at=now, previous_sent_at=None, tz_name=settings.TIME_ZONE))
    return f"CASE c.time_zone {' '.join(cases)} ELSE %s END", [*params, fallback]


TOUCHPOINT_INSERT = """
    INSERT INTO {table} (enrollment_id, step_id, contact_id, template_id, status, due_at, planned_at,
        transactional, assignee_id, rendered, attempts, deferrals, reason, error, sent_at, finished_at,
        finished_by_id, outcome, note, claimed_at)
    SELECT e.id, %s, e.contact_id, %s, 'scheduled', {due}, {due}, %s, NULL, '', 0, 0, '', '', NULL, NULL,
        NULL, '', '', NULL
    FROM {enrollments} AS e JOIN {contact} AS c ON c.id = e.contact_id
"""


def _zones(source: tuple[str, list]) -> list[str]:
    source_sql, params = source
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT c.time_zone FROM ({source_sql}) AS {CANDIDATES} "
            f"JOIN {_table(Contact)} AS c ON c.id = {CANDIDATES}.contact_id",
            params,
        )
        return [row[0] for row in cursor.fetchall()]


def _start(template: SopTemplate, first: SopStep, source, now: datetime, actor_id) -> int:
    zones = _zones(source)
    if not zones:  # no candidate is a contact: nothing to enroll (and a CASE needs at least one WHEN)
        return 0
    due, due_params = _due_case(first, now, zones)
    insert, insert_params = _enrollment_insert(template, source, now, actor_id)
    head = [first.pk, template.pk, *due_params, *due_params, first.transactional]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement: the new enrollments feed their first touchpoints directly (RETURNING), so
            # nothing has to find them again by an index.
            touch = TOUCHPOINT_INSERT.format(
                table=_table(Touchpoint), due=due, enrollments="new", contact=_table(Contact)
            )
            cursor.execute(
                f"WITH new AS ({insert} RETURNING id, contact_id) {touch}", [*insert_params, *head]
            )
            return cursor.rowcount
        cursor.execute(insert, insert_params)
        created = cursor.rowcount
        touch = TOUCHPOINT_INSERT.format(
            table=_table(Touchpoint), due=due, enrollments=_table(Enrollment), contact=_table(Contact)
        )
        cursor.execute(
            f"{touch} WHERE e.template_id = %s AND e.enrolled_at = %s AND e.status = 'active' ON CONFLICT DO NOTHING",
            [*head, template.pk, _dt(now)],
        )
        return created


@transaction.atomic
def enrollments_start(
    *, template: SopTemplate, source: tuple[str, list], actor=None, now: datetime | None = None
) -> int:
    """Enroll the candidates of `source` (SQL rows of contact_id, trigger_key; see pairs_source and
    queryset_source) who pass the re-entry policy and the audience; returns how many were enrolled.
    Each gets the first step's touchpoint. A template without steps enrolls nobody."""
    first = template.steps.order_by("position").first()
    if first is None:
        return 0
    return _start(template, first, source, now or timezone.now(), getattr(actor, "pk", None))


def enrollments_exit(enrollments: QuerySet, *, reason: str, now: datetime | None = None) -> int:
    """End the active ones among `enrollments`; what they still had to send or do is skipped (reason
    exited). Returns how many ended."""
    now = now or timezone.now()
    active = enrollments.filter(status=Enrollment.Status.ACTIVE)
    ids = list(active.values_list("id", flat=True))
    if not ids:
        return 0
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        Touchpoint.objects.filter(
            enrollment_id__in=chunk, status__in=(TouchStatus.SCHEDULED, TouchStatus.OPEN)
        ).update(status=TouchStatus.SKIPPED, reason=SkipReason.EXITED, finished_at=now)
        Enrollment.objects.filter(id__in=chunk, status=Enrollment.Status.ACTIVE).update(
            status=Enrollment.Status.EXITED, exit_reason=reason, ended_at=now
        )
    return len(ids)


def enrollments_move(*, actor, survivor: Contact, duplicate: Contact) -> dict[str, int]:
    """Merge handler (scrm.merge): the duplicate's enrollments and touchpoints become the survivor's. Where both
    run the same template, the survivor's run goes on and the duplicate's exits (reason merged), so the
    customer is not messaged twice."""
    both = Enrollment.objects.filter(
        contact=duplicate,
        status=Enrollment.Status.ACTIVE,
        template_id__in=Enrollment.objects.filter(contact=survivor, status=Enrollment.Status.ACTIVE).values(
            "template_id"
        ),
    )
    exited = enrollments_exit(both, reason=ExitReason.MERGED)
    taken = Enrollment.objects.filter(contact=survivor).values_list("template_id", "trigger_key")
    clashing = [
        e.pk
        for e in Enrollment.objects.filter(contact=duplicate).only("template_id", "trigger_key")
        if (e.template_id, e.trigger_key) in set(taken)
    ]
    for pk in clashing:  # same trigger seen on both: keep the row, unique key made distinct
        Enrollment.objects.filter(pk=pk).update(trigger_key=f"merged:{pk}")
    moved = Enrollment.objects.filter(contact=duplicate).update(contact=survivor)
    Touchpoint.objects.filter(contact=duplicate).update(contact=survivor)
    counts = {"sop_enrollments": moved, "sop_enrollments_exited": exited}
    return {name: n for name, n in counts.items() if n}  # the merge's audit lists only what moved
