"""Materialised membership: full refresh, incremental refresh, their agreement, broken rules, the pipeline."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from contacts.events import EventIn, events_record
from contacts.models import Contact, Tag
from scrm.pipeline import process_events
from scrm.touches import drain_contact_touches
from segments.models import Segment, SegmentChange, SegmentKind, SegmentMembership
from segments.services import segment_refresh, segment_refresh_contacts

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


def city_is(city: str) -> dict:
    return {"type": "group", "match": "all", "children": [
        {"type": "field", "field": "city", "op": "equals", "value": city}]}  # fmt: skip


def members(segment) -> set[int]:
    return set(SegmentMembership.objects.filter(segment=segment).values_list("contact_id", flat=True))


def changes(segment) -> list[tuple[int, str]]:
    return sorted(SegmentChange.objects.filter(segment=segment).values_list("contact_id", "change"))


@pytest.fixture
def people(db):
    return [
        Contact.objects.create(name=f"客户{i}", city=city) for i, city in enumerate(["上海", "北京", "上海"])
    ]


def test_full_refresh_writes_the_difference_only(people):
    a, b, c = people
    segment = Segment.objects.create(name="上海客户", definition=city_is("上海"))
    result = segment_refresh(segment_id=segment.pk, now=NOW)
    assert (result.entered, result.exited, result.size) == (2, 0, 2)
    assert members(segment) == {a.pk, c.pk}
    assert changes(segment) == []  # the first fill: nobody "entered" (an SOP must not fire for all of them)
    segment.refresh_from_db()
    assert segment.member_count == 2 and segment.refreshed_at == NOW

    Contact.objects.filter(pk=a.pk).update(city="北京")
    Contact.objects.filter(pk=b.pk).update(city="上海")
    result = segment_refresh(segment_id=segment.pk, now=NOW)
    assert (result.entered, result.exited, result.size) == (1, 1, 2)
    assert members(segment) == {b.pk, c.pk}
    assert changes(segment) == sorted([(a.pk, "exited"), (b.pk, "entered")])

    again = segment_refresh(segment_id=segment.pk, now=NOW)  # nothing changed: nothing written
    assert (again.entered, again.exited) == (0, 0) and SegmentChange.objects.count() == 2


def test_incremental_and_full_refresh_agree(people):
    full = Segment.objects.create(name="全量", definition=city_is("上海"))
    incremental = Segment.objects.create(name="增量", definition=city_is("上海"))
    for segment in (full, incremental):
        segment_refresh(segment_id=segment.pk, now=NOW)
    a, b, c = people
    Contact.objects.filter(pk=a.pk).update(city="广州")
    Contact.objects.filter(pk=b.pk).update(city="上海")
    d = Contact.objects.create(name="新客户", city="上海")

    results = segment_refresh_contacts(contact_ids=[a.pk, b.pk, d.pk, a.pk], now=NOW)
    segment_refresh(segment_id=full.pk, now=NOW)
    assert (results[incremental.pk].entered, results[incremental.pk].exited) == (2, 1)
    assert members(incremental) == members(full) == {b.pk, c.pk, d.pk}
    assert changes(incremental) == changes(full)
    full.refresh_from_db()
    incremental.refresh_from_db()
    assert incremental.member_count == full.member_count == 3


def test_a_rule_naming_a_deleted_tag_marks_the_segment_broken_and_keeps_members(people, tag):
    a, _b, _c = people
    a.tags.add(tag)
    segment = Segment.objects.create(name="有标签", definition={"type": "group", "match": "all", "children": [
        {"type": "tags", "op": "has_any", "tags": [tag.pk]}]})  # fmt: skip
    segment_refresh(segment_id=segment.pk, now=NOW)
    assert members(segment) == {a.pk}
    Tag.objects.filter(pk=tag.pk).delete()
    result = segment_refresh(segment_id=segment.pk, now=NOW)
    segment.refresh_from_db()
    assert result.broken and segment.broken_reason == result.broken
    assert str(tag.pk) in segment.broken_reason
    assert members(segment) == {a.pk} and segment.member_count == 1  # frozen, not recomputed
    segment_refresh_contacts(contact_ids=[a.pk], now=NOW)
    assert members(segment) == {a.pk}


def test_static_segments_are_left_alone(people):
    a, _b, _c = people
    segment = Segment.objects.create(name="名单", kind=SegmentKind.STATIC)
    SegmentMembership.objects.create(segment=segment, contact=a)
    segment_refresh(segment_id=segment.pk, now=NOW)
    segment_refresh_contacts(contact_ids=[a.pk], now=NOW)
    assert members(segment) == {a.pk} and not SegmentChange.objects.exists()


def test_the_pipeline_moves_buyers_into_a_purchase_segment(people):
    a, b, _c = people
    segment = Segment.objects.create(name="近90天购买", definition={"type": "group", "match": "all", "children": [
        {"type": "events", "kind": "purchase", "measure": "count", "op": "gte", "value": "1", "days": 90}]})  # fmt: skip
    segment_refresh(segment_id=segment.pk)
    assert members(segment) == set()
    (outcome,) = events_record(
        events=[EventIn(contact_id=a.pk, kind="purchase", occurred_at=datetime.now(UTC), idempotency_key="seg-1",
                        amount=Decimal("99.00"), order_id="S1")],
        source="api",
    )  # fmt: skip
    assert process_events([outcome.event_id]) == 1
    assert members(segment) == set()  # the pipeline hands its contacts to the touch drain (step 5)
    drain_contact_touches()
    assert members(segment) == {a.pk}
    assert changes(segment) == [(a.pk, "entered")]
    assert b.pk not in members(segment)


def test_the_nightly_reconcile_refreshes_every_dynamic_segment(people):
    """Eager Celery (tests/conftest.py): each segment's task runs inline, as a worker would run it."""
    from segments.tasks import segments_reconcile_task

    dynamic = Segment.objects.create(name="上海客户", definition=city_is("上海"))
    static = Segment.objects.create(name="名单", kind=SegmentKind.STATIC)
    segments_reconcile_task.delay()
    dynamic.refresh_from_db()
    static.refresh_from_db()
    assert dynamic.member_count == 2 and dynamic.refreshed_at is not None
    assert static.refreshed_at is None


def test_a_segment_not_filled_yet_is_left_to_its_first_full_refresh(people):
    a, _b, _c = people
    segment = Segment.objects.create(name="上海客户", definition=city_is("上海"))
    assert segment.pk not in segment_refresh_contacts(contact_ids=[a.pk], now=NOW)
    assert members(segment) == set() and not SegmentChange.objects.exists()


def test_incremental_and_full_agree_for_every_kind_of_rule(people, tag, tier):
    """Rules of each family evaluated side by side (one SELECT) give what a full refresh gives."""
    a, b, c = people
    rules = [
        {"type": "tags", "op": "has_any", "tags": [tag.pk]},
        {"type": "tier", "op": "in", "tiers": [tier.pk]},
        {"type": "field", "field": "last_active_at", "op": "more_than_days_ago", "value": 30},
        {"type": "events", "kind": "purchase", "measure": "count", "op": "lt", "value": "1", "days": 90},
        {"type": "field", "field": "city", "op": "not_equals", "value": "上海"},
    ]
    pairs = []
    for i, rule in enumerate(rules):
        tree = {"type": "group", "match": "all", "children": [rule]}
        pair = [Segment.objects.create(name=f"{kind}{i}", definition=tree) for kind in ("full", "inc")]
        for segment in pair:
            segment_refresh(segment_id=segment.pk, now=NOW)
        pairs.append(pair)
    a.tags.add(tag)
    Contact.objects.filter(pk=b.pk).update(tier=tier, last_active_at=NOW, city="上海")
    Contact.objects.filter(pk=c.pk).update(city="杭州")
    events_record(
        events=[EventIn(contact_id=c.pk, kind="purchase", occurred_at=NOW, idempotency_key="agree-1",
                        amount=Decimal("10.00"), order_id="AG1")],
        source="api",
    )  # fmt: skip
    segment_refresh_contacts(contact_ids=[a.pk, b.pk, c.pk], now=NOW)
    for full, incremental in pairs:
        segment_refresh(segment_id=full.pk, now=NOW)
        assert members(incremental) == members(full), incremental.definition
        assert changes(incremental) == changes(full), incremental.definition
    assert any(changes(incremental) for _full, incremental in pairs)
