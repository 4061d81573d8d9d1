"""The touch outbox: edits, imports, bulk actions, merges and tag/tier changes record the contacts they changed
(contacts.ContactTouch); scrm.touches.drain_contact_touches brings every dynamic segment up to date for them."""

import json
import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction

from accounts.api_keys import api_key_create
from accounts.models import ApiScope
from contacts.custom_field_services import (
    custom_field_archive,
    custom_field_create,
    custom_field_purge_values,
)
from contacts.events import EventIn, events_record
from contacts.merging import contact_merge
from contacts.models import Contact, ContactTag, ContactTouch, Tag
from contacts.services import contact_create, contact_update, taxonomy_delete, taxonomy_save
from contacts.touches import contacts_touched
from scrm import touches
from scrm.merge import MERGE_HANDLERS
from scrm.pipeline import process_events
from scrm.tasks import refresh_touched_contacts_task
from segments.models import Segment, SegmentChange, SegmentMembership
from segments.services import segment_refresh
from tests.conftest import need_service
from tests.contacts.test_import_contacts import run_import

ENTERED, EXITED = SegmentChange.Change.ENTERED, SegmentChange.Change.EXITED


def all_of(*children) -> dict:
    return {"type": "group", "match": "all", "children": list(children)}


def city_is(city: str) -> dict:
    return all_of({"type": "field", "field": "city", "op": "equals", "value": city})


def has_tag(tag) -> dict:
    return all_of({"type": "tags", "op": "has_any", "tags": [tag.pk]})


def filled(name: str, definition: dict) -> Segment:
    """A dynamic segment after its first full refresh (the incremental path leaves unfilled ones alone)."""
    segment = Segment.objects.create(name=name, definition=definition)
    segment_refresh(segment_id=segment.pk)
    return segment


def members(segment) -> set[int]:
    return set(SegmentMembership.objects.filter(segment=segment).values_list("contact_id", flat=True))


def changes(segment) -> list[tuple[int, str]]:
    return sorted(SegmentChange.objects.filter(segment=segment).values_list("contact_id", "change"))


def touched() -> set[int]:
    return set(ContactTouch.objects.values_list("contact_id", flat=True))


def drained() -> int:
    """Drain, and check the promise every test relies on: nothing is left behind."""
    refreshed = touches.drain_contact_touches()
    assert not ContactTouch.objects.exists()
    return refreshed


def member_count(segment) -> int:
    segment.refresh_from_db()
    return segment.member_count


# --- one contact --------------------------------------------------------------------------------------


def test_editing_a_field_through_the_service(operator, contact):
    segment = filled("北京客户", city_is("北京"))
    contact_update(actor=operator, contact=contact, changes={"city": "上海"})  # unchanged: nothing recorded
    assert touched() == set()
    contact_update(actor=operator, contact=contact, changes={"city": "北京"})
    assert touched() == {contact.pk}
    assert members(segment) == set()  # not before the drain
    assert drained() == 1
    assert members(segment) == {contact.pk} and changes(segment) == [(contact.pk, ENTERED)]
    assert member_count(segment) == 1


def test_creating_a_contact_through_the_service(operator):
    segment = filled("北京客户", city_is("北京"))
    new = contact_create(actor=operator, data={"name": "新客", "city": "北京", "owner": operator})
    assert touched() == {new.pk}
    drained()
    assert members(segment) == {new.pk} and changes(segment) == [(new.pk, ENTERED)]


def test_editing_a_contact_through_the_edit_page(role_client, contact):
    leaving, joining = filled("上海客户", city_is("上海")), filled("北京客户", city_is("北京"))
    assert members(leaving) == {contact.pk}
    data = {"name": contact.name, "phone": "13800138000", "gender": "unknown", "source": "friend", "city": "北京",
            "time_zone": "Asia/Shanghai", "joined_at": contact.joined_at.strftime("%Y-%m-%dT%H:%M")}  # fmt: skip
    assert role_client("operator").post(f"/contacts/{contact.pk}/edit/", data).status_code == 302
    assert touched() == {contact.pk}
    drained()
    assert members(leaving) == set() and changes(leaving) == [(contact.pk, EXITED)]
    assert members(joining) == {contact.pk} and changes(joining) == [(contact.pk, ENTERED)]


def test_adding_a_tag_on_the_contact_page(role_client, contact, tag):
    segment = filled("爱吃辣", has_tag(tag))
    response = role_client("operator").post(
        f"/contacts/{contact.pk}/tags/", {"tags": [tag.pk]}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert touched() == {contact.pk}
    drained()
    assert members(segment) == {contact.pk} and changes(segment) == [(contact.pk, ENTERED)]


def test_an_api_upsert(admin_user, contact, client):
    segment = filled("杭州客户", city_is("杭州"))
    _key, raw = api_key_create(actor=admin_user, name="shop", scopes=[scope.value for scope in ApiScope])
    response = client.post(
        "/api/v1/contacts", json.dumps({"phone": contact.phone, "city": "杭州"}),
        content_type="application/json", headers={"Authorization": f"Bearer {raw}"},
    )  # fmt: skip
    assert response.status_code == 200
    assert touched() == {contact.pk}
    drained()
    assert members(segment) == {contact.pk} and changes(segment) == [(contact.pk, ENTERED)]


# --- many contacts ------------------------------------------------------------------------------------


def _bulk(client, **data):
    return client.post("/contacts/bulk/", {"next": "/contacts/", **data})


def test_a_bulk_tag_action(role_client, operator, tag):
    mine = [Contact.objects.create(name=f"客{i}", owner=operator) for i in range(3)]
    ContactTag.objects.create(contact=mine[0], tag=tag)
    segment = filled("爱吃辣", has_tag(tag))
    assert (
        _bulk(role_client("operator"), action="add_tag", tag=tag.pk, ids=[m.pk for m in mine]).status_code
        == 302
    )
    assert touched() == {mine[1].pk, mine[2].pk}  # the one that had the tag did not change
    drained()
    assert members(segment) == {m.pk for m in mine}
    assert changes(segment) == sorted((m.pk, ENTERED) for m in mine[1:])
    _bulk(role_client("operator"), action="remove_tag", tag=tag.pk, ids=[mine[0].pk])
    drained()
    assert members(segment) == {mine[1].pk, mine[2].pk} and (mine[0].pk, EXITED) in changes(segment)
    assert member_count(segment) == 2


def test_a_bulk_tier_update(role_client, operator, tier):
    mine = [Contact.objects.create(name=f"客{i}", owner=operator) for i in range(3)]
    Contact.objects.filter(pk=mine[0].pk).update(tier=tier)
    segment = filled("金卡", all_of({"type": "tier", "op": "in", "tiers": [tier.pk]}))
    assert members(segment) == {mine[0].pk}
    _bulk(role_client("operator"), action="set_tier", tier=tier.pk, ids=[mine[1].pk, mine[2].pk])
    assert touched() == {mine[1].pk, mine[2].pk}
    assert drained() == 2
    assert members(segment) == {m.pk for m in mine}
    assert changes(segment) == sorted((m.pk, ENTERED) for m in mine[1:])
    assert member_count(segment) == 3


def test_an_import_touches_created_and_updated_contacts_only(admin_user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    moved_in = Contact.objects.create(name="甲", phone="+8613800000001", city="北京")
    moved_out = Contact.objects.create(name="乙", phone="+8613800000002", city="上海")
    unchanged = Contact.objects.create(name="丙", phone="+8613800000003", city="上海")
    segment = filled("上海客户", city_is("上海"))
    content = "姓名,手机号,城市\n甲,13800000001,上海\n乙,13800000002,杭州\n丙,13800000003,上海\n丁,13800000004,上海\n"
    job = run_import(admin_user, content)
    assert (job.created_count, job.updated_count, job.unchanged_count) == (1, 2, 1)
    created = Contact.objects.get(phone="+8613800000004")
    assert touched() == {moved_in.pk, moved_out.pk, created.pk}
    drained()
    assert members(segment) == {moved_in.pk, unchanged.pk, created.pk}
    assert changes(segment) == sorted([(moved_in.pk, ENTERED), (created.pk, ENTERED), (moved_out.pk, EXITED)])
    assert member_count(segment) == 3


def test_an_imported_tag_alone_touches_the_contact(admin_user, settings, tmp_path, tag):
    settings.MEDIA_ROOT = tmp_path / "media"
    person = Contact.objects.create(name="甲", phone="+8613800000001")
    segment = filled("爱吃辣", has_tag(tag))
    job = run_import(admin_user, f"姓名,手机号,标签\n甲,13800000001,{tag.name}\n")
    assert job.updated_count == 1 and touched() == {person.pk}
    drained()
    assert members(segment) == {person.pk} and changes(segment) == [(person.pk, ENTERED)]


# --- merges and taxonomy ------------------------------------------------------------------------------


def test_a_merge_touches_the_survivor(operator):
    survivor = Contact.objects.create(name="王芳", email="fang@example.com", owner=operator)
    duplicate = Contact.objects.create(name="王芳", email="Fang@Example.com", owner=operator, city="杭州")
    segment = filled("杭州客户", city_is("杭州"))
    assert members(segment) == {duplicate.pk}
    # contact_merge itself (scrm.merge also refreshes at once): the outbox alone must bring the survivor in.
    contact_merge(
        actor=operator, survivor=survivor, duplicate=duplicate, field_choices={}, handlers=MERGE_HANDLERS
    )
    assert touched() == {survivor.pk}
    drained()
    assert members(segment) == {survivor.pk} and changes(segment) == [(survivor.pk, ENTERED)]


def test_deleting_a_tag_touches_its_holders_before_the_cascade(admin_user, tag):
    other = Tag.objects.create(group=tag.group, name="甜")
    only_this, both, only_other, none = (Contact.objects.create(name=f"客{i}") for i in range(4))
    ContactTag.objects.bulk_create([ContactTag(contact=only_this, tag=tag), ContactTag(contact=both, tag=tag),
                                    ContactTag(contact=both, tag=other), ContactTag(contact=only_other, tag=other)])  # fmt: skip
    by_group = filled("口味", all_of({"type": "tags", "op": "has_any", "group": tag.group_id}))
    by_tag = filled("爱吃辣", has_tag(tag))
    taxonomy_delete(actor=admin_user, obj=tag)
    assert touched() == {only_this.pk, both.pk}
    drained()
    assert members(by_group) == {both.pk, only_other.pk} and changes(by_group) == [(only_this.pk, EXITED)]
    by_tag.refresh_from_db()  # its rule names the deleted tag: broken, members left as they were
    assert by_tag.broken_reason and members(by_tag) == {only_this.pk, both.pk} and changes(by_tag) == []
    assert none.pk not in members(by_group)


def test_deleting_or_re_ranking_a_tier_touches_its_contacts(admin_user, tier):
    gold = [Contact.objects.create(name=f"金{i}", tier=tier) for i in range(2)]
    Contact.objects.create(name="无")
    segment = filled("金卡及以上", all_of({"type": "tier_rank", "min": 3, "max": None}))
    assert members(segment) == {c.pk for c in gold}
    tier.rank = 1
    taxonomy_save(actor=admin_user, obj=tier, created=False)
    assert touched() == {c.pk for c in gold}
    drained()
    assert members(segment) == set() and changes(segment) == sorted((c.pk, EXITED) for c in gold)
    tier.colour = "#000000"
    taxonomy_save(actor=admin_user, obj=tier, created=False)  # nothing a rule reads: nothing recorded
    assert touched() == set()
    taxonomy_delete(actor=admin_user, obj=tier)
    assert touched() == {c.pk for c in gold}


def test_purging_a_custom_fields_values_touches_the_contacts_that_had_one(admin_user):
    field = custom_field_create(actor=admin_user, key="pet", label_zh="宠物", label_en="Pet", kind="text")
    with_value = Contact.objects.create(name="有", custom_fields={"pet": "猫"})
    Contact.objects.create(name="无", custom_fields={"size": "M"})
    custom_field_archive(actor=admin_user, field=field)
    assert touched() == set()  # archiving changes no value
    assert custom_field_purge_values(actor=admin_user, field=field, confirm_key="pet") == 1
    assert touched() == {with_value.pk}


# --- the drain ----------------------------------------------------------------------------------------


def test_a_touch_of_a_deleted_contact_is_drained_without_error(operator, contact):
    gone = Contact.objects.create(name="走了", city="上海")
    gone_id = gone.pk
    segment = filled("上海客户", city_is("上海"))
    contacts_touched([gone_id, contact.pk])
    gone.delete()  # its touch stays (no foreign key), and nothing blocks the delete
    assert touched() == {gone_id, contact.pk}
    assert drained() == 2
    assert members(segment) == {contact.pk} and changes(segment) == []


def test_duplicates_are_refreshed_once_and_a_queryset_is_recorded_in_sql(operator, contact, tag):
    ContactTag.objects.create(contact=contact, tag=tag)
    contacts_touched([contact.pk, contact.pk])
    contacts_touched(ContactTag.objects.filter(tag=tag).values("contact_id"))
    assert ContactTouch.objects.filter(contact_id=contact.pk).count() == 2  # a list is deduped, calls are not
    assert drained() == 1
    assert drained() == 0  # an empty outbox


def test_batches_and_the_task(operator):
    people = [Contact.objects.create(name=f"客{i}", city="上海") for i in range(7)]
    segment = filled("北京客户", city_is("北京"))
    Contact.objects.filter(pk__in=[p.pk for p in people]).update(city="北京")
    contacts_touched(p.pk for p in people)
    assert touches.drain_contact_touches(batch_size=3) == 7  # 3 + 3 + 1
    assert members(segment) == {p.pk for p in people}
    contacts_touched([people[0].pk])
    refresh_touched_contacts_task.delay()  # eager Celery: what beat's entry runs
    assert not ContactTouch.objects.exists()
    entry = django_settings.CELERY_BEAT_SCHEDULE["segments-touched"]
    assert entry["task"] == "scrm.tasks.refresh_touched_contacts_task" and entry["schedule"] == 30.0


def test_a_failed_refresh_leaves_the_claimed_rows_for_the_next_run(operator, contact, monkeypatch):
    segment = filled("北京客户", city_is("北京"))
    Contact.objects.filter(pk=contact.pk).update(city="北京")
    contacts_touched([contact.pk])

    def fail(**kwargs):
        raise RuntimeError("database went away")

    with monkeypatch.context() as patched:
        patched.setattr(touches, "segment_refresh_contacts", fail)
        with pytest.raises(RuntimeError):
            touches.drain_contact_touches()
    assert touched() == {contact.pk}  # the claim rolled back with the refresh
    drained()
    assert members(segment) == {contact.pk}


def test_the_event_pipeline_hands_its_contacts_to_the_drain(contact):
    segment = filled("购买过", all_of({"type": "events", "kind": "purchase", "measure": "count", "op": "gte",
                                         "value": "1", "days": 90}))  # fmt: skip
    (outcome,) = events_record(
        events=[EventIn(contact_id=contact.pk, kind="purchase", occurred_at=datetime.now(UTC),
                        idempotency_key="t-1", amount=Decimal("9.90"), order_id="T1")],
        source="api",
    )  # fmt: skip
    process_events([outcome.event_id])
    assert touched() == {contact.pk} and members(segment) == set()  # step 5 recorded the touch
    assert drained() == 1
    assert members(segment) == {contact.pk}
    assert changes(segment) == [(contact.pk, ENTERED)]


# --- concurrency (PostgreSQL) -------------------------------------------------------------------------


def _in_thread(target, errors: list):
    def run():
        try:
            target()
        except Exception as exc:  # pragma: no cover - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    return threading.Thread(target=run)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_claims_take_disjoint_rows():
    if connection.vendor != "postgresql":
        need_service("row locks need PostgreSQL (set DATABASE_URL)")
    people = [Contact.objects.create(name=f"客{i}") for i in range(40)]
    contacts_touched(p.pk for p in people)
    claimed: dict[str, list[int]] = {}
    first_holds, second_done = threading.Event(), threading.Event()

    def first():
        with transaction.atomic():
            claimed["first"] = touches._claim(25)
            first_holds.set()
            second_done.wait(10)  # keep the rows locked while the other claims

    def second():
        first_holds.wait(10)
        with transaction.atomic():
            claimed["second"] = touches._claim(25)
        second_done.set()

    errors: list[Exception] = []
    threads = [_in_thread(first, errors), _in_thread(second, errors)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(claimed["first"]) == 25 and len(claimed["second"]) == 15
    assert set(claimed["first"]).isdisjoint(claimed["second"])
    assert set(claimed["first"]) | set(claimed["second"]) == {p.pk for p in people}
    assert not ContactTouch.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_drains_refresh_every_contact_once():
    if connection.vendor != "postgresql":
        need_service("row locks need PostgreSQL (set DATABASE_URL)")
    people = [Contact.objects.create(name=f"客{i}", city="上海") for i in range(300)]
    segment = filled("北京客户", city_is("北京"))
    Contact.objects.update(city="北京")
    contacts_touched(p.pk for p in people)
    counts: list[int] = []
    barrier = threading.Barrier(2)

    def drain():
        barrier.wait()
        counts.append(touches.drain_contact_touches(batch_size=20))

    errors: list[Exception] = []
    threads = [_in_thread(drain, errors) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(counts) == 300  # one touch each: any row taken twice would count twice
    assert members(segment) == {p.pk for p in people}
    assert changes(segment) == sorted((p.pk, ENTERED) for p in people)
    assert not ContactTouch.objects.exists()
