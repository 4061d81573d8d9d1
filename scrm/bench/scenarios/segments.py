"""Scenario `segments` (issue 4): rule counts against hand-written SQL, full and incremental refresh.

- count_4cond: the count the builder shows an admin for "tier rank ≥ 金卡 AND tag 辣 AND NOT tag 低 AND no
  activity for 30 days" — segments.selectors.rule_count, the builder's own function; baseline: the same rule
  written by hand.
- count_event_window: "spent ≥ 200 on purchases in the last 90 days", rule_count vs hand-written. A lone
  event condition like this one is counted from the grouped events (rules.count_alone), as the hand-written
  statement does; before every run both are checked against the general compiled filter as well.
- refresh_full: a full refresh (segments.services.segment_refresh) of a segment of every contact not opted out
  (nearly all), steady state
  (members already there: the anti-joins both ways, nothing to write). refresh_first_fill: the same segment's
  first fill (every membership row written), once.
- refresh_incremental: segment_refresh_contacts for 1,000 contacts across 50 filled segments.

Its segments are named "bench-…" and replaced on every run; the data set (contacts, tags, events) is the
shared one.
"""

import time
from datetime import timedelta
from functools import partial

from django.db import connection
from django.utils import timezone

from contacts.models import Contact, ContactTag, Event, EventKind, Tier
from segments.models import Segment
from segments.rules import compile_tree
from segments.selectors import rule_count
from segments.services import segment_refresh, segment_refresh_contacts

from ..data import Dataset, ensure_actors, refresh_statistics
from ..runner import BenchFailure, Result, median_ms

PREFIX = "bench-"
INCREMENTAL_SEGMENTS = 50
INCREMENTAL_CONTACTS = 1000


def _all(*children) -> dict:
    return {"type": "group", "match": "all", "children": list(children)}


def four_conditions(tags: dict) -> dict:
    return _all(
        {"type": "tier_rank", "min": 3, "max": None},
        {"type": "tags", "op": "has_any", "tags": [tags[("口味偏好", "辣")]]},
        {"type": "tags", "op": "has_none", "tags": [tags[("价格敏感度", "低")]]},
        {"type": "field", "field": "last_active_at", "op": "more_than_days_ago", "value": 30},
    )


EVENT_WINDOW = _all(
    {"type": "events", "kind": "purchase", "measure": "sum", "op": "gte", "value": "200", "days": 90}
)


def _scalar(sql: str, params: list):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def four_conditions_sql(tags: dict, now) -> tuple[str, list]:
    contact, tag = Contact._meta.db_table, ContactTag._meta.db_table
    gold_and_up = sorted(Tier.objects.filter(rank__gte=3).values_list("pk", flat=True))
    return (
        # What an expert writes: the tier ids of "rank ≥ 3" looked up first, then one statement.
        f"SELECT count(*) FROM {contact} c "
        f"WHERE c.tier_id IN ({', '.join(str(pk) for pk in gold_and_up) or 'NULL'}) "
        f"AND EXISTS (SELECT 1 FROM {tag} ct WHERE ct.contact_id = c.id AND ct.tag_id = %s) "
        f"AND NOT EXISTS (SELECT 1 FROM {tag} ct WHERE ct.contact_id = c.id AND ct.tag_id = %s) "
        f"AND (c.last_active_at < %s OR c.last_active_at IS NULL)",
        [tags[("口味偏好", "辣")], tags[("价格敏感度", "低")], now - timedelta(days=30)],
    )


def event_window_sql(now) -> tuple[str, list]:
    event = Event._meta.db_table
    return (
        f"SELECT count(*) FROM (SELECT e.contact_id FROM {event} e WHERE e.kind = %s AND e.occurred_at >= %s "
        f"AND e.occurred_at <= %s GROUP BY e.contact_id HAVING sum(e.amount) >= 200) AS buyers",
        [EventKind.PURCHASE, now - timedelta(days=90), now],
    )


def _counts_agree(admin, rule: dict, sql: tuple[str, list], now) -> None:
    """The measured count, the general compiled filter and the hand-written SQL give the same number."""
    counted = rule_count(admin, rule, now=now)
    compiled = Contact.objects.filter(compile_tree(rule, now=now)).count()
    by_hand = _scalar(*sql)
    if not counted == compiled == by_hand:
        raise BenchFailure(
            f"rule_count counts {counted}, the compiled rule {compiled}, the hand-written SQL {by_hand}"
        )


def _fresh_segment(name: str, rule: dict) -> Segment:
    Segment.objects.filter(name=PREFIX + name).delete()
    return Segment.objects.create(name=PREFIX + name, definition=rule)


def _incremental_segments(tags: dict, tiers: dict) -> list[Segment]:
    """50 filled segments of assorted rules (one refresh each first: a new segment waits for its fill)."""
    Segment.objects.filter(name__startswith=PREFIX + "inc-").delete()
    tag_ids, tier_ids = list(tags.values()), list(tiers.values())
    segments = []
    for i in range(INCREMENTAL_SEGMENTS):
        rule = [
            _all({"type": "tags", "op": "has_any", "tags": [tag_ids[i % len(tag_ids)]]}),
            _all({"type": "tier", "op": "in", "tiers": [tier_ids[i % len(tier_ids)]]}),
            _all({"type": "field", "field": "last_active_at", "op": "within_last_days", "value": 7 + i}),
            _all({"type": "field", "field": "order_count", "op": "gte", "value": str(1 + i % 5)}),
            EVENT_WINDOW,
        ][i % 5]
        segment = _fresh_segment(f"inc-{i:02d}", rule)
        segment_refresh(segment_id=segment.pk)
        segments.append(segment)
    return segments


def run(dataset: Dataset, *, runs: int) -> list[Result]:
    # Other scenarios write to the shared data set (events, the pipeline's contact updates); the counts are
    # measured on tables as autovacuum keeps them in production (contacts migration 0014): visibility map
    # current, so the covering indexes are read without the heap.
    refresh_statistics()
    actors = ensure_actors()
    now = timezone.now()
    tags, tiers = actors.tag_ids, actors.tier_ids
    rule4, sql4 = four_conditions(tags), four_conditions_sql(tags, now)
    window_sql = event_window_sql(now)
    _counts_agree(actors.admin, rule4, sql4, now)
    _counts_agree(actors.admin, EVENT_WINDOW, window_sql, now)
    counts = median_ms(
        {
            "count_4cond": partial(rule_count, actors.admin, rule4, now=now),
            "count_4cond_sql": partial(_scalar, *sql4),
            "count_event_window": partial(rule_count, actors.admin, EVENT_WINDOW, now=now),
            "count_event_window_sql": partial(_scalar, *window_sql),
        },
        runs=runs,
    )
    everyone = _fresh_segment("everyone", _all({"type": "field", "field": "opted_out", "op": "is_false"}))
    expected = Contact.objects.filter(opted_out=False).count()
    started = time.perf_counter()
    first = segment_refresh(segment_id=everyone.pk)
    first_fill_ms = (time.perf_counter() - started) * 1000
    if first.size != expected:
        raise BenchFailure(f"the segment of everyone has {first.size} members, not {expected}")
    segments = _incremental_segments(tags, tiers)
    touched = list(Contact.objects.order_by("?").values_list("id", flat=True)[:INCREMENTAL_CONTACTS])
    refreshes = median_ms(
        {
            "refresh_full": partial(segment_refresh, segment_id=everyone.pk),
            "refresh_incremental": partial(segment_refresh_contacts, contact_ids=touched),
        },
        runs=max(1, min(runs, 3)),
    )
    if len(segments) != INCREMENTAL_SEGMENTS:
        raise BenchFailure("the incremental segments were not all made")
    return [
        Result("count_4cond", counts["count_4cond"], baseline_ms=counts["count_4cond_sql"]),
        Result(
            "count_event_window", counts["count_event_window"], baseline_ms=counts["count_event_window_sql"]
        ),
        Result("refresh_full", refreshes["refresh_full"]),
        Result("refresh_first_fill", first_fill_ms),
        Result("refresh_incremental", refreshes["refresh_incremental"]),
    ]
