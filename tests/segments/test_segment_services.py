"""Making and changing segments: validation with references and cycles, dependency order in the incremental
refresh, static segments, snapshots, duplicates, deletion, sharing, visibility, size history."""

from datetime import UTC, date, datetime

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404

from contacts.models import Contact
from segments.models import Segment, SegmentChange, SegmentKind, SegmentMembership, SegmentSize
from segments.rules import RuleError
from segments.selectors import (
    segment_for_change,
    segment_for_user,
    segment_members,
    segments_visible_to,
    size_history,
)
from segments.services import (
    SegmentInUse,
    segment_delete,
    segment_duplicate,
    segment_refresh,
    segment_refresh_contacts,
    segment_save,
    segment_share,
    segment_snapshot,
    static_segment_add,
    static_segment_create,
    static_segment_remove,
)

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


def city_is(city: str) -> dict:
    return {"type": "group", "match": "all", "children": [
        {"type": "field", "field": "city", "op": "equals", "value": city}]}  # fmt: skip


def in_segment(pk: int, op: str = "in") -> dict:
    return {"type": "group", "match": "all", "children": [{"type": "segment", "op": op, "segment": pk}]}


def members(segment) -> set[int]:
    return set(SegmentMembership.objects.filter(segment=segment).values_list("contact_id", flat=True))


@pytest.fixture(autouse=True)
def committed(django_capture_on_commit_callbacks, monkeypatch):
    """Run what the services queue on commit (the refresh task; Celery is eager in tests) as each service
    returns, as it would after the request's transaction commits."""
    import segments.services as services

    def run_after(function):
        def wrapper(*args, **kwargs):
            with django_capture_on_commit_callbacks(execute=True):
                return function(*args, **kwargs)

        return wrapper

    for name in ("segment_save", "segment_duplicate", "static_segment_add", "static_segment_remove"):
        monkeypatch.setitem(globals(), name, run_after(getattr(services, name)))


@pytest.fixture
def shanghai(db, operator, other_operator):
    return [
        Contact.objects.create(name="甲", city="上海", owner=operator),
        Contact.objects.create(name="乙", city="上海", owner=other_operator),
        Contact.objects.create(name="丙", city="北京", owner=operator),
    ]


def test_save_validates_name_and_rule_and_queues_a_refresh(manager, shanghai):
    with pytest.raises(ValidationError) as error:
        segment_save(actor=manager, name="  ", definition=city_is("上海"))
    assert "name" in error.value.message_dict
    with pytest.raises(RuleError) as rule_error:
        segment_save(
            actor=manager, name="坏规则", definition={"type": "group", "match": "all", "children": []}
        )
    assert rule_error.value.path == ""
    assert not Segment.objects.exists()  # nothing half-written

    segment = segment_save(actor=manager, name=" 上海 ", definition=city_is("上海"))
    segment.refresh_from_db()
    assert segment.name == "上海" and segment.created_by == manager
    # Celery is eager in tests: the queued full refresh has run and cleared the "refreshing" mark.
    assert members(segment) == {shanghai[0].pk, shanghai[1].pk}
    assert segment.member_count == 2 and segment.refresh_requested_at is None


def test_a_segment_cannot_include_itself_directly_or_through_others(manager, shanghai):
    a = segment_save(actor=manager, name="A", definition=city_is("上海"))
    b = segment_save(actor=manager, name="B", definition=in_segment(a.pk))
    with pytest.raises(RuleError) as itself:
        segment_save(actor=manager, segment=a, name="A", definition=in_segment(a.pk))
    assert itself.value.path == "children.0.segment"
    with pytest.raises(RuleError) as loop:
        segment_save(actor=manager, segment=a, name="A", definition=in_segment(b.pk))
    assert loop.value.path == "children.0.segment" and "B" in loop.value.message
    c = segment_save(actor=manager, name="C", definition=in_segment(b.pk))
    with pytest.raises(RuleError):  # A -> C -> B -> A
        segment_save(actor=manager, segment=a, name="A", definition=in_segment(c.pk))
    a.refresh_from_db()
    assert a.definition == city_is("上海")  # the refused rule was not saved


def test_an_operator_cannot_name_a_segment_they_cannot_see(operator, manager, shanghai):
    hidden = segment_save(actor=manager, name="经理的", definition=city_is("上海"))
    with pytest.raises(RuleError) as error:
        segment_save(actor=operator, name="我的", definition=in_segment(hidden.pk))
    assert error.value.path == "children.0.segment"
    segment_share(actor=manager, segment=hidden, users=[operator])
    assert segment_save(actor=operator, name="我的", definition=in_segment(hidden.pk)).pk


def test_incremental_refresh_evaluates_a_segment_after_the_segments_it_names(manager, shanghai):
    # The dependent segment gets the lower id, so id order alone would evaluate it first, against stale members.
    dependent = Segment.objects.create(name="依赖", definition={})
    base = segment_save(actor=manager, name="上海", definition=city_is("上海"))
    Segment.objects.filter(pk=dependent.pk).update(definition=in_segment(base.pk))
    segment_refresh(segment_id=dependent.pk, now=NOW)
    assert members(dependent) == members(base)

    moved = shanghai[2]
    Contact.objects.filter(pk=moved.pk).update(city="上海")
    segment_refresh_contacts(contact_ids=[moved.pk], now=NOW)
    assert moved.pk in members(base) and moved.pk in members(dependent)
    assert SegmentChange.objects.filter(segment=dependent, contact=moved, change="entered").count() == 1


def test_a_full_refresh_that_changes_members_refreshes_the_segments_naming_it(manager, shanghai):
    base = segment_save(actor=manager, name="上海", definition=city_is("上海"))
    outside = segment_save(actor=manager, name="不在上海", definition=in_segment(base.pk, "not_in"))
    assert members(outside) == {shanghai[2].pk}
    Contact.objects.filter(pk=shanghai[2].pk).update(city="上海")
    from segments.tasks import segment_refresh_task

    segment_refresh_task(base.pk)  # changes base, which queues (eagerly runs) the dependent's refresh
    assert members(outside) == set()


def test_deleting_a_segment_named_by_another_is_refused(manager, shanghai):
    base = segment_save(actor=manager, name="上海", definition=city_is("上海"))
    user = segment_save(actor=manager, name="用它的", definition=in_segment(base.pk))
    with pytest.raises(SegmentInUse) as error:
        segment_delete(actor=manager, segment=base)
    assert error.value.users == [user]
    segment_delete(actor=manager, segment=user)
    segment_delete(actor=manager, segment=base)
    assert not Segment.objects.exists() and not SegmentMembership.objects.exists()


def test_static_segments_add_and_remove_with_changes(manager, shanghai):
    a, b, c = shanghai
    static = static_segment_create(
        actor=manager, name="名单", contacts=Contact.objects.filter(pk__in=[a.pk, b.pk])
    )
    assert static.kind == SegmentKind.STATIC and static.member_count == 2
    assert (
        members(static) == {a.pk, b.pk} and not SegmentChange.objects.exists()
    )  # a new list: nobody "entered"
    assert (
        static_segment_add(
            actor=manager, segment=static, contacts=Contact.objects.filter(pk__in=[b.pk, c.pk])
        )
        == 1
    )
    assert static_segment_remove(actor=manager, segment=static, contact_ids=[a.pk, 999999]) == 1
    static.refresh_from_db()
    assert members(static) == {b.pk, c.pk} and static.member_count == 2
    assert sorted(SegmentChange.objects.values_list("contact_id", "change")) == sorted(
        [(c.pk, "entered"), (a.pk, "exited")]
    )
    # A full refresh leaves a static segment alone.
    assert segment_refresh(segment_id=static.pk).size == 2 and members(static) == {b.pk, c.pk}


def test_snapshot_and_duplicate(manager, shanghai):
    dynamic = segment_save(actor=manager, name="上海", definition=city_is("上海"))
    snap = segment_snapshot(actor=manager, segment=dynamic)
    assert snap.kind == SegmentKind.STATIC and members(snap) == members(dynamic)
    Contact.objects.filter(pk=shanghai[2].pk).update(city="上海")
    segment_refresh(segment_id=dynamic.pk)
    assert shanghai[2].pk in members(dynamic) and shanghai[2].pk not in members(snap)  # frozen

    copy = segment_duplicate(actor=manager, segment=dynamic)
    assert copy.kind == SegmentKind.DYNAMIC and copy.definition == dynamic.definition
    assert members(copy) == members(dynamic) and copy.name.startswith("上海")
    static_copy = segment_duplicate(actor=manager, segment=snap)
    assert members(static_copy) == members(snap)


def test_visibility_sharing_and_members_scoped_to_the_user(
    operator, other_operator, manager, admin_user, shanghai
):
    mine = segment_save(actor=operator, name="我的上海", definition=city_is("上海"))
    theirs = segment_save(actor=manager, name="经理的上海", definition=city_is("上海"))
    assert set(segments_visible_to(operator)) == {mine}
    assert set(segments_visible_to(other_operator)) == set()
    assert set(segments_visible_to(manager)) == {mine, theirs} == set(segments_visible_to(admin_user))
    with pytest.raises(Http404):
        segment_for_user(other_operator, mine.pk)

    segment_share(actor=operator, segment=mine, users=[other_operator])
    assert segment_for_user(other_operator, mine.pk) == mine
    with pytest.raises(Http404):  # shared is read-only
        segment_for_change(other_operator, mine.pk)
    assert segment_for_change(manager, mine.pk) == mine
    # Sharing never widens what an operator sees: each sees only their own contacts among the members.
    assert list(segment_members(other_operator, mine)) == [shanghai[1]]
    assert list(segment_members(operator, mine)) == [shanghai[0]]
    assert set(segment_members(manager, mine)) == {shanghai[0], shanghai[1]}


def test_size_history_carries_the_last_size_forward(manager):
    segment = Segment.objects.create(name="历史", definition={})
    SegmentSize.objects.create(segment=segment, day=date(2026, 10, 1), size=5)  # before the window
    SegmentSize.objects.create(segment=segment, day=date(2026, 11, 20), size=8)
    SegmentSize.objects.create(segment=segment, day=date(2026, 11, 22), size=13)
    other = Segment.objects.create(name="新的", definition={})
    SegmentSize.objects.create(segment=other, day=date(2026, 11, 22), size=1)
    history = size_history([segment.pk, other.pk], days=5, today=date(2026, 11, 23))
    assert history[segment.pk] == [5, 8, 8, 13, 13]  # 19, 20, 21, 22, 23 November
    assert history[other.pk] == [None, None, None, 1, 1]


def test_refreshes_record_todays_size(manager, shanghai):
    segment = segment_save(actor=manager, name="上海", definition=city_is("上海"))
    assert list(SegmentSize.objects.filter(segment=segment).values_list("size", flat=True)) == [2]
    Contact.objects.filter(pk=shanghai[2].pk).update(city="上海")
    segment_refresh_contacts(contact_ids=[shanghai[2].pk])
    assert list(SegmentSize.objects.filter(segment=segment).values_list("size", flat=True)) == [3]


def test_a_merge_keeps_segment_sizes_exact(manager, shanghai):
    from scrm.merge import merge_contacts

    segment = segment_save(actor=manager, name="上海", definition=city_is("上海"))
    assert segment.__class__.objects.get(pk=segment.pk).member_count == 2
    merge_contacts(actor=manager, survivor=shanghai[0], duplicate=shanghai[1], field_choices={})
    segment.refresh_from_db()
    assert segment.member_count == 1 == SegmentMembership.objects.filter(segment=segment).count()


def test_an_operators_snapshot_or_copy_holds_only_the_members_they_see(operator, manager, shanghai):
    dynamic = segment_save(actor=manager, name="上海", definition=city_is("上海"))
    segment_share(actor=manager, segment=dynamic, users=[operator])
    snap = segment_snapshot(actor=operator, segment=dynamic)
    assert members(snap) == {shanghai[0].pk}  # not the other operator's customer
    full = segment_snapshot(actor=manager, segment=dynamic)
    assert members(full) == {shanghai[0].pk, shanghai[1].pk}
    assert members(segment_duplicate(actor=operator, segment=full)) == {shanghai[0].pk}


@pytest.mark.django_db(transaction=True)
def test_two_saves_at_once_cannot_make_a_loop(manager, shanghai):
    """A names B and B names A, saved at the same moment: the second save sees the first and is refused."""
    import threading

    from django.db import connection

    from tests.conftest import need_service

    if connection.vendor != "postgresql":
        need_service("the rule-save lock needs PostgreSQL (set DATABASE_URL)")
    a = segment_save(actor=manager, name="A", definition=city_is("上海"))
    b = segment_save(actor=manager, name="B", definition=city_is("北京"))
    barrier, outcomes = threading.Barrier(2), []

    def save(segment, target):
        try:
            barrier.wait(5)
            segment_save(actor=manager, segment=segment, name=segment.name, definition=in_segment(target.pk))
            outcomes.append("saved")
        except RuleError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=save, args=pair) for pair in ((a, b), (b, a))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused", "saved"]
