"""The synthetic benchmark data set: N contacts with ~10 events each, built fast and reused.

Bench contact i has the phone +86 130 followed by i in 8 digits. Chunks are inserted in index order,
one transaction each, so the bench contacts in the database are always indices 0..k-1 and the
highest bench phone tells how many exist: a data set of the requested size is reused, a smaller one
is extended, a larger one is cut back. seed_demo never uses the 130 prefix.

On PostgreSQL every chunk is one set-based statement (INSERT … SELECT FROM generate_series, with
the events and tag rows inserted by data-modifying CTEs from the contacts' RETURNING), followed by
VACUUM ANALYZE. On SQLite (the test suite, tiny N) a bulk_create fallback draws from the same tables.
"""

import random
import time
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.roles import Role
from contacts.models import Contact, ContactTag, Event, EventKind, EventSource, Source
from scrm import pipeline
from scrm.demo import CITIES, GIVEN_NAMES, SURNAMES, ensure_taxonomy, ensure_user

from . import sql

PHONE_PREFIX = "+86130"
PHONE_END = "+86131"  # exclusive upper bound of the bench phone range
OPERATOR_COUNT = 20
CHUNK_SIZE = 100_000

# Percent tables: value -> share in percent (each sums to 100). Tiers and tags are named here and
# resolved to ids once the taxonomy exists.
UNASSIGNED_PERCENT = 5
NO_ACTIVITY_PERCENT = 10  # last_active_at NULL, and no events
OPTED_OUT_PERCENT = 3
EMAIL_PERCENT = 30
BIRTHDAY_PERCENT = 40
ACTIVE_DAYS = 365
EVENTS_MIN, EVENTS_MAX = 6, 16  # per active contact: 11 on average, ~10 over all contacts
EVENT_SPACING_DAYS = 5
TIER_SHARE = {None: 30, "普通会员": 40, "银卡": 18, "金卡": 9, "钻石": 3}
SOURCE_SHARE = {Source.FRIEND: 40, Source.GROUP: 20, Source.OFFICIAL_ACCOUNT: 12, Source.MINI_PROGRAM: 12,
                Source.STORE: 10, Source.IMPORT: 4, Source.API: 2}  # fmt: skip
GENDER_SHARE = {"female": 55, "male": 35, "unknown": 10}
EVENT_KIND_SHARE = {EventKind.MESSAGE_IN: 20, EventKind.MESSAGE_OUT: 20, EventKind.CONTENT_VIEW: 20,
                    EventKind.MOMENTS_LIKE: 15, EventKind.CHECK_IN: 10, EventKind.PURCHASE: 12,
                    EventKind.REFUND: 3}  # fmt: skip
# One tag slot per group: a contact holds a tag of the group with the slot's percent, so 0–3 tags,
# 1.5 on average. Within the group the tag is drawn from the share table.
TAG_SLOTS = (
    ("口味偏好", 60, {"甜": 45, "辣": 35, "咸": 20}),
    ("价格敏感度", 50, {"高": 20, "中": 50, "低": 30}),
    ("兴趣", 40, {"护肤": 30, "母婴": 20, "健身": 20, "美食": 20, "旅行": 10}),
)
# Held by 50% × 20% = 10% of contacts: the tag the list_tag_filter measurement filters on.
FILTER_TAG = ("价格敏感度", "高")


def percent_table(shares: dict) -> list:
    """The values repeated by their share, 100 entries: a uniform draw of 0..99 picks one."""
    table = [value for value, share in shares.items() for _ in range(share)]
    if len(table) != 100:
        raise ValueError(f"shares must add up to 100, not {len(table)}")
    return table


def bench_phone(index: int) -> str:
    return f"{PHONE_PREFIX}{index:08d}"


def display_phone(phone: str) -> str:
    """The national number in 3-4-4 groups, the way people type it: "+8613000500000" -> "130 0050 0000"."""
    national = phone.removeprefix("+86")
    return f"{national[:3]} {national[3:7]} {national[7:]}"


@dataclass
class Actors:
    admin: object
    operator_ids: list[int]
    tier_ids: dict[str, int]
    tag_ids: dict[tuple[str, str], int]


@dataclass
class Dataset:
    contacts: int
    admin: object  # sees every contact
    filter_tag_id: int
    sample_phone: str  # E.164 of a contact in the middle of the data set
    created: int  # contacts inserted by this call
    removed: int  # contacts deleted by this call (the data set was larger); both 0: reused as it was
    seconds: float


def ensure_actors() -> Actors:
    """The bench users (an admin, a manager, OPERATOR_COUNT operators) and the shared taxonomy."""
    admin, _ = ensure_user(username="bench_admin", display_name="压测管理员", role=Role.ADMIN)
    manager, _ = ensure_user(username="bench_manager", display_name="压测经理", role=Role.MANAGER)
    operators = [
        ensure_user(
            username=f"bench_op{n:02d}", display_name=f"压测运营{n:02d}", role=Role.OPERATOR, manager=manager
        )[0]
        for n in range(1, OPERATOR_COUNT + 1)
    ]
    taxonomy = ensure_taxonomy()
    return Actors(
        admin=admin,
        operator_ids=[op.pk for op in operators],
        tier_ids={name: tier.pk for name, tier in taxonomy.tiers.items()},
        tag_ids={key: tag.pk for key, tag in taxonomy.tags.items()},
    )


def existing_bench_contacts() -> int:
    """How many bench contacts exist: the highest bench phone is index k-1 (see module docstring)."""
    last = (
        # exclude(phone="") repeats the unique index's predicate, so the planner may use that index.
        Contact.objects.exclude(phone="")
        .filter(phone__gte=PHONE_PREFIX, phone__lt=PHONE_END)
        .order_by("-phone")
        .values_list("phone", flat=True)
        .first()
    )
    return int(last.removeprefix(PHONE_PREFIX)) + 1 if last else 0


def build_dataset(contacts: int, *, log=lambda message: None) -> Dataset:
    """Make the database hold exactly `contacts` bench contacts (reusing what is there)."""
    started = time.perf_counter()
    actors = ensure_actors()
    existing = existing_bench_contacts()
    if existing > contacts:
        log(f"cutting the bench data set from {existing} to {contacts} contacts")
        delete_bench_contacts_from(contacts)
    for lo in range(existing, contacts, CHUNK_SIZE):
        hi = min(lo + CHUNK_SIZE, contacts)
        chunk_started = time.perf_counter()
        insert_chunk(lo, hi, actors)
        log(f"contacts {lo}..{hi - 1} inserted in {time.perf_counter() - chunk_started:.1f}s")
    if existing != contacts:
        refresh_statistics()
    return Dataset(
        contacts=contacts,
        admin=actors.admin,
        filter_tag_id=actors.tag_ids[FILTER_TAG],
        sample_phone=bench_phone(contacts // 2),
        created=max(contacts - existing, 0),
        removed=max(existing - contacts, 0),
        seconds=time.perf_counter() - started,
    )


def insert_chunk(lo: int, hi: int, actors: Actors) -> None:
    with transaction.atomic():
        before = Event.objects.aggregate(last=Max("id"))["last"] or 0
        if connection.vendor == "postgresql":
            sql.insert_chunk(lo, hi, sql_params(actors), now=timezone.now())
        else:
            python_insert_chunk(lo, hi, actors, now=timezone.now())
        apply_pipeline_to_new_events(after_id=before)


def apply_pipeline_to_new_events(*, after_id: int) -> None:
    """Give the chunk's contacts their activity totals, as the pipeline would have, in one statement.

    (The pipeline's own batches would take minutes over ten million events; the handler is the same. The
    chunk's events never enter the pipeline's inbox: this is their processing.)
    """
    ids = list(Event.objects.filter(id__gt=after_id).values_list("id", flat=True))
    if ids:
        pipeline.apply_contact_activity(ids)


def sql_params(actors: Actors) -> dict:
    """Parameters of the set-based insert: every distribution as an array the SQL indexes into."""
    tables = {
        "surnames": list(SURNAMES),
        "given_names": list(GIVEN_NAMES),
        "cities": list(CITIES),
        "operators": actors.operator_ids,
        "genders": percent_table(GENDER_SHARE),
        "sources": percent_table({str(k): v for k, v in SOURCE_SHARE.items()}),
        "tiers": percent_table({actors.tier_ids.get(name): share for name, share in TIER_SHARE.items()}),
        "kinds": percent_table({str(k): v for k, v in EVENT_KIND_SHARE.items()}),
        "tag_tables": [
            percent_table({actors.tag_ids[(group, tag)]: share for tag, share in shares.items()})
            for group, _percent, shares in TAG_SLOTS
        ],
        "slot_percents": [percent for _group, percent, _shares in TAG_SLOTS],
    }
    return {
        **tables,
        **{f"n_{name}": len(tables[name]) for name in ("surnames", "given_names", "cities", "operators")},
        "tag_slots": len(TAG_SLOTS),
        "no_activity_percent": NO_ACTIVITY_PERCENT,
        "active_seconds": ACTIVE_DAYS * 86400,
        "opted_out_percent": OPTED_OUT_PERCENT,
        "email_percent": EMAIL_PERCENT,
        "birthday_percent": BIRTHDAY_PERCENT,
        "unassigned_percent": UNASSIGNED_PERCENT,
        "phone_prefix": PHONE_PREFIX,
        "time_zone": settings.TIME_ZONE,
        "event_source": str(EventSource.DEMO),
        "events_min": EVENTS_MIN,
        "events_span": EVENTS_MAX - EVENTS_MIN + 1,
        "spacing_seconds": EVENT_SPACING_DAYS * 86400,
    }


def delete_contacts_by_phone(low: str, high: str) -> None:
    """Delete the contacts whose phone is in [low, high) and every row that points at them, set-based
    (Django's cascade would load them all). The rows pointing at contacts are found from the model
    relations, so a table a later app adds (segment memberships, points) is covered without naming it:
    CASCADE relations are deleted, SET_NULL ones cleared."""
    contact = Contact._meta.db_table
    own = f"SELECT id FROM {contact} WHERE phone >= %s AND phone < %s"
    params = [low, high]
    with transaction.atomic(), connection.cursor() as cursor:
        # include_hidden: relations declared with related_name="+" (segment memberships) count too.
        for relation in Contact._meta.get_fields(include_hidden=True):
            if not (relation.auto_created and not relation.concrete) or relation.many_to_many:
                continue  # not a relation pointing here; a many-to-many's through model has its own key
            table, column = relation.related_model._meta.db_table, relation.field.column
            if relation.on_delete is models.CASCADE:
                cursor.execute(f"DELETE FROM {table} WHERE {column} IN ({own})", params)
            elif relation.on_delete is models.SET_NULL:
                cursor.execute(f"UPDATE {table} SET {column} = NULL WHERE {column} IN ({own})", params)
            else:
                raise NotImplementedError(f"{table}.{column}: on_delete {relation.on_delete.__name__}")
        cursor.execute(f"DELETE FROM {contact} WHERE id IN ({own})", params)


def delete_bench_contacts_from(index: int) -> None:
    """Delete bench contacts index.. and their rows."""
    delete_contacts_by_phone(bench_phone(index), PHONE_END)


def refresh_statistics() -> None:
    """Fresh planner statistics and visibility map, as autovacuum would leave them in production."""
    if connection.vendor != "postgresql":
        return
    # VACUUM cannot run inside a transaction (a test's, say); ANALYZE alone still gives fresh statistics.
    command = "ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE"
    with connection.cursor() as cursor:
        # No SET LOCAL outside a transaction: set and reset around it.
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for model in (Contact, ContactTag, Event):
            cursor.execute(f"{command} {model._meta.db_table}")
        cursor.execute("RESET maintenance_work_mem")


# --- SQLite fallback: the same distributions, drawn in Python (tiny N only) ---------------------


def python_insert_chunk(lo: int, hi: int, actors: Actors, *, now) -> None:
    tables = sql_params(actors)
    contacts, draws = [], []
    for index in range(lo, hi):
        rng = random.Random(f"bench:{index}")
        contacts.append(_python_contact(index, rng, tables, now))
        draws.append(rng)
    Contact.objects.bulk_create(contacts, batch_size=500)
    tags, events = [], []
    for contact, rng in zip(contacts, draws, strict=True):
        tags += _python_tags(contact, rng, tables)
        events += _python_events(contact, rng, tables)
    ContactTag.objects.bulk_create(tags, batch_size=500)
    Event.objects.bulk_create(events, batch_size=500)


def _python_contact(index: int, rng: random.Random, tables: dict, now) -> Contact:
    active = rng.randrange(100) >= NO_ACTIVITY_PERCENT
    last_active_at = now - timedelta(seconds=rng.randrange(ACTIVE_DAYS * 86400)) if active else None
    joined_at = (last_active_at or now) - timedelta(days=90, seconds=rng.randrange(640 * 86400))
    opted_out = rng.randrange(100) < OPTED_OUT_PERCENT
    return Contact(
        name=rng.choice(tables["surnames"]) + rng.choice(tables["given_names"]),
        phone=bench_phone(index),
        email=f"u{index}@example.com" if rng.randrange(100) < EMAIL_PERCENT else "",
        gender=rng.choice(tables["genders"]),
        birthday=date(1965, 1, 1) + timedelta(days=rng.randrange(14600))
        if rng.randrange(100) < BIRTHDAY_PERCENT
        else None,
        city=rng.choice(tables["cities"]),
        source=rng.choice(tables["sources"]),
        owner_id=None if rng.randrange(100) < UNASSIGNED_PERCENT else rng.choice(tables["operators"]),
        tier_id=rng.choice(tables["tiers"]),
        opted_out=opted_out,
        opted_out_reason="bench" if opted_out else "",
        opted_out_at=joined_at + timedelta(days=1) if opted_out else None,
        joined_at=joined_at,
        last_active_at=last_active_at,
    )


def _python_tags(contact: Contact, rng: random.Random, tables: dict) -> list[ContactTag]:
    return [
        ContactTag(contact=contact, tag_id=rng.choice(tag_table), added_at=contact.joined_at)
        for tag_table, percent in zip(tables["tag_tables"], tables["slot_percents"], strict=True)
        if rng.randrange(100) < percent
    ]


def _python_events(contact: Contact, rng: random.Random, tables: dict) -> list[Event]:
    if contact.last_active_at is None:
        return []
    events = []
    for k in range(1, rng.randint(EVENTS_MIN, EVENTS_MAX) + 1):
        # The first event is the latest: last_active_at is exactly the newest event's time.
        back = (k - 1) * EVENT_SPACING_DAYS * 86400 + (
            rng.randrange(EVENT_SPACING_DAYS * 86400) if k > 1 else 0
        )
        kind = rng.choice(tables["kinds"])
        events.append(
            Event(
                contact=contact,
                kind=kind,
                occurred_at=contact.last_active_at - timedelta(seconds=back),
                amount=Decimal(f"{rng.uniform(9.9, 999.9):.2f}") if kind in ("purchase", "refund") else None,
                source=EventSource.DEMO,
                idempotency_key=sql.event_key(contact.pk, k),
            )  # fmt: skip
        )
    return events
