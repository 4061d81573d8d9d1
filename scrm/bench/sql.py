"""The PostgreSQL side of the bench data builder: one set-based statement per chunk of contacts.

Every random choice is `abs(hashint8extended(<key>, <salt>))` — a seeded Jenkins hash of the
contact's index (or index and event number) — so a data set is the same every time it is built,
and a distribution is an array of 100 values the hash indexes into (data.percent_table).
The contacts' RETURNING feeds two data-modifying CTEs that insert the events and the tag rows,
so a chunk is a single round trip and is all there or not at all.
"""

from django.db import connection

from contacts.models import Contact, ContactTag, Event

INSERT_CHUNK = """
WITH base AS (
    SELECT i,
           CASE WHEN mod(abs(hashint8extended(i, 1)), 100) < %(no_activity_percent)s THEN NULL
                ELSE %(now)s - mod(abs(hashint8extended(i, 2)), %(active_seconds)s) * interval '1 second'
           END AS last_active_at,
           mod(abs(hashint8extended(i, 3)), 100) < %(opted_out_percent)s AS opted_out
    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) AS i
),
drawn AS (
    -- Joined at least 90 days before the last activity, so before every event.
    SELECT base.*,
           coalesce(last_active_at, %(now)s)
               - (90 * 86400 + mod(abs(hashint8extended(i, 4)), 640 * 86400)) * interval '1 second'
               AS joined_at
    FROM base
),
new_contacts AS (
    INSERT INTO {contact} (name, phone, email, external_userid, gender, birthday, city, source, owner_id,
                           tier_id, time_zone, opted_out, opted_out_reason, opted_out_at, joined_at,
                           last_active_at, created_at, updated_at, custom_fields, order_count, total_spent)
    SELECT (%(surnames)s::text[])[1 + mod(abs(hashint8extended(i, 5)), %(n_surnames)s)]
               || (%(given_names)s::text[])[1 + mod(abs(hashint8extended(i, 6)), %(n_given_names)s)],
           %(phone_prefix)s || lpad(i::text, 8, '0'),
           CASE WHEN mod(abs(hashint8extended(i, 7)), 100) < %(email_percent)s THEN 'u' || i || '@example.com'
                ELSE '' END,
           '',
           (%(genders)s::text[])[1 + mod(abs(hashint8extended(i, 8)), 100)],
           CASE WHEN mod(abs(hashint8extended(i, 9)), 100) < %(birthday_percent)s
                THEN date '1965-01-01' + mod(abs(hashint8extended(i, 10)), 14600)::int END,
           (%(cities)s::text[])[1 + mod(abs(hashint8extended(i, 11)), %(n_cities)s)],
           (%(sources)s::text[])[1 + mod(abs(hashint8extended(i, 12)), 100)],
           CASE WHEN mod(abs(hashint8extended(i, 13)), 100) >= %(unassigned_percent)s
                THEN (%(operators)s::bigint[])[1 + mod(abs(hashint8extended(i, 14)), %(n_operators)s)] END,
           (%(tiers)s::bigint[])[1 + mod(abs(hashint8extended(i, 15)), 100)],
           %(time_zone)s,
           opted_out,
           CASE WHEN opted_out THEN 'bench' ELSE '' END,
           CASE WHEN opted_out THEN joined_at + interval '1 day' END,
           joined_at, last_active_at, joined_at, %(now)s, '{{}}'::jsonb, 0, 0
    FROM drawn
    RETURNING id, substr(phone, 7)::bigint AS idx, joined_at, last_active_at
),
new_events AS (
    -- Event 1 is the newest and happens exactly at last_active_at; older ones step back in time.
    INSERT INTO {event} (contact_id, kind, occurred_at, amount, payload, source, idempotency_key, created_at,
                         order_id)
    SELECT c.id, e.kind, e.occurred_at,
           CASE WHEN e.kind IN ('purchase', 'refund') THEN round(9.9 + mod(h.h / 128, 99000) / 100.0, 2) END,
           jsonb_build_object(), %(event_source)s,
           -- Zero-padded so the unique index is appended to, not split all over.
           'bench:' || lpad(c.id::text, 12, '0') || ':' || lpad(k::text, 2, '0'),
           e.occurred_at, ''  -- data.apply_pipeline_to_new_events applies the chunk
    FROM new_contacts AS c
    CROSS JOIN LATERAL generate_series(
        1, %(events_min)s + mod(abs(hashint8extended(c.idx, 20)), %(events_span)s)::int) AS k
    CROSS JOIN LATERAL (SELECT abs(hashint8extended(c.idx * 64 + k, 21)) AS h) AS h
    CROSS JOIN LATERAL (
        SELECT (%(kinds)s::text[])[1 + mod(h.h, 100)] AS kind,
               c.last_active_at - ((k - 1) * %(spacing_seconds)s
                                   + CASE WHEN k > 1 THEN mod(h.h / 100, %(spacing_seconds)s) ELSE 0 END)
                                  * interval '1 second' AS occurred_at
    ) AS e
    WHERE c.last_active_at IS NOT NULL
)
INSERT INTO {contact_tag} (contact_id, tag_id, added_at, added_by_id)
SELECT c.id, (%(tag_tables)s::bigint[])[g][1 + mod(t.h / 100, 100)], c.joined_at, NULL
FROM new_contacts AS c
CROSS JOIN generate_series(1, %(tag_slots)s) AS g
CROSS JOIN LATERAL (SELECT abs(hashint8extended(c.idx * 8 + g, 31)) AS h) AS t
WHERE mod(t.h, 100) < (%(slot_percents)s::int[])[g]
"""


def event_key(contact_id: int, k: int) -> str:
    """The idempotency key of a bench event; the same format as the SQL above."""
    return f"bench:{contact_id:012d}:{k:02d}"


# Settings for the load, SET LOCAL around each chunk's statement and put back right after it, so
# neither the measurements nor a caller's enclosing transaction (a test's) run with them.
LOAD_SETTINGS = {
    "work_mem": "256MB",
    # generate_series makes the planner guess huge costs, and JIT would compile for a second per chunk.
    "jit": "off",
    # Trigram (GIN) index entries wait in the pending list and are merged in bulk by the VACUUM
    # after the load, instead of being flushed every 4MB during it.
    "gin_pending_list_limit": "1GB",
    # Not synchronous_commit = off: hint bits of an asynchronous commit cannot be set until its WAL
    # is flushed, and the VACUUM right after the load would then leave the visibility map empty
    # (every index-only scan of the measurements would visit the heap).
}
# Superusers only: skips the foreign-key triggers, a million deferred checks per chunk and a third
# of its time. Every id inserted comes from the same statement's RETURNING or an existing row.
SUPERUSER_LOAD_SETTINGS = {"session_replication_role": "replica"}


def insert_chunk(lo: int, hi: int, params: dict, *, now) -> None:
    """Insert bench contacts lo..hi-1 with their events and tags (call inside a transaction).

    `params` holds the distributions and constants (scrm.bench.data.sql_params)."""
    statement = INSERT_CHUNK.format(
        contact=Contact._meta.db_table, event=Event._meta.db_table, contact_tag=ContactTag._meta.db_table
    )
    with connection.cursor() as cursor:
        settings = {**LOAD_SETTINGS, **(SUPERUSER_LOAD_SETTINGS if _is_superuser(cursor) else {})}
        previous = {name: _set_local(cursor, name, value) for name, value in settings.items()}
        cursor.execute(statement, {**params, "lo": lo, "hi": hi, "now": now})
        for name, value in previous.items():
            _set_local(cursor, name, value)


def _set_local(cursor, name: str, value: str) -> str:
    """SET LOCAL name = value (set_config takes parameters, SET does not); returns the value before."""
    cursor.execute("SELECT current_setting(%s), set_config(%s, %s, true)", [name, name, value])
    return cursor.fetchone()[0]


def _is_superuser(cursor) -> bool:
    cursor.execute("SELECT current_setting('is_superuser') = 'on'")
    return cursor.fetchone()[0]
