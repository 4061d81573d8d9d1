"""Probable duplicates and merging: what moves, field choices, totals, audit, permissions."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from contacts.merging import MergeError, contact_merge, duplicate_groups, merge_preview
from contacts.models import AuditEntry, Contact, ContactTag, CustomField, Event, Note, Tag
from contacts.services import NotAllowed
from scrm import merge as scrm_merge
from scrm.merge import merge_contacts


def _at(day: int) -> datetime:
    return datetime(2024, 5, day, 12, tzinfo=UTC)


@pytest.fixture
def pair(operator, tag, tier):
    """Two contacts of the operator that share an email (different case)."""
    survivor = Contact.objects.create(
        name="王芳", phone="+8613800000001", email="Fang@Example.com", owner=operator, city="",
        order_count=2, total_spent=Decimal("100.00"), first_purchase_at=_at(3), last_purchase_at=_at(10),
        last_active_at=_at(10), custom_fields={"size": "M"},
    )  # fmt: skip
    duplicate = Contact.objects.create(
        name="王芳芳", phone="+8613800000002", email="fang@example.com", owner=operator, city="杭州",
        external_userid="wm-fang", birthday=date(1992, 2, 2), tier=tier, order_count=1,
        total_spent=Decimal("50.50"), first_purchase_at=_at(1), last_purchase_at=_at(5), last_active_at=_at(20),
        custom_fields={"size": "L", "pet": "猫"}, opted_out=True, opted_out_at=_at(6), opted_out_reason="太多消息",
    )  # fmt: skip
    other_tag = Tag.objects.create(group=tag.group, name="咸")
    ContactTag.objects.create(contact=survivor, tag=tag)
    ContactTag.objects.create(contact=duplicate, tag=tag)  # shared: must not be duplicated
    ContactTag.objects.create(contact=duplicate, tag=other_tag)
    for i, who in enumerate([duplicate, duplicate, survivor]):
        Event.objects.create(
            contact=who, kind="purchase", occurred_at=_at(1 + i), source="ui", idempotency_key=f"k{i}"
        )
    Note.objects.create(contact=duplicate, body="喜欢绿茶")
    AuditEntry.objects.create(action="contact.updated", object_type="contact", object_id=str(duplicate.pk),
                              object_repr="x", contact=duplicate)  # fmt: skip
    CustomField.objects.create(key="size", label_zh="尺码", label_en="Size", kind="text")
    CustomField.objects.create(key="pet", label_zh="宠物", label_en="Pet", kind="text")
    return survivor, duplicate


def test_merge_moves_everything_and_combines_totals(operator, pair, tag, tier):
    survivor, duplicate = pair
    dup_id = duplicate.pk
    merged = merge_contacts(actor=operator, survivor=survivor, duplicate=duplicate, field_choices={})
    assert not Contact.objects.filter(pk=dup_id).exists()
    assert Event.objects.filter(contact=merged).count() == 3
    assert Note.objects.get().contact == merged
    assert sorted(ContactTag.objects.filter(contact=merged).values_list("tag__name", flat=True)) == [
        "咸",
        "辣",
    ]
    assert ContactTag.objects.count() == 2
    assert AuditEntry.objects.filter(contact=merged, action="contact.updated").count() == 1
    merged.refresh_from_db()
    assert merged.order_count == 3 and merged.total_spent == Decimal("150.50")
    assert merged.first_purchase_at == _at(1) and merged.last_purchase_at == _at(10)
    assert merged.last_active_at == _at(20)
    # Defaults: survivor's non-empty values, the duplicate's where the survivor has none.
    assert merged.name == "王芳" and merged.phone == "+8613800000001" and merged.email == "Fang@Example.com"
    assert merged.city == "杭州" and merged.birthday == date(1992, 2, 2) and merged.tier == tier
    assert merged.external_userid == "wm-fang"
    assert merged.custom_fields == {"size": "M", "pet": "猫"}
    assert merged.opted_out and merged.opted_out_reason == "太多消息"  # opt-out is never lost


def test_field_choices_pick_the_duplicates_values(operator, pair):
    survivor, duplicate = pair
    choices = {"name": "duplicate", "phone": "duplicate", "email": "duplicate", "city": "survivor",
               "custom:size": "duplicate", "custom:pet": "survivor"}  # fmt: skip
    merged = merge_contacts(actor=operator, survivor=survivor, duplicate=duplicate, field_choices=choices)
    merged.refresh_from_db()
    assert merged.pk == survivor.pk
    assert (merged.name, merged.phone, merged.email) == ("王芳芳", "+8613800000002", "fang@example.com")
    assert merged.city == ""
    assert merged.custom_fields == {"size": "L"}  # the survivor had no pet and that was chosen


def test_merge_writes_one_audit_entry_with_both_sides(operator, pair):
    survivor, duplicate = pair
    dup_id = duplicate.pk
    merge_contacts(
        actor=operator, survivor=survivor, duplicate=duplicate, field_choices={"name": "duplicate"}
    )
    entry = AuditEntry.objects.get(action="contact.merged")
    assert entry.actor == operator and entry.contact_id == survivor.pk
    assert entry.before["survivor"]["name"] == "王芳" and entry.before["duplicate"]["id"] == dup_id
    assert entry.before["duplicate"]["total_spent"] == "50.50"
    assert entry.after["survivor"]["name"] == "王芳芳" and entry.after["merged_id"] == dup_id
    assert entry.after["moved"] == {"events": 2, "notes": 1, "tags": 1, "audit": 1}


def test_merge_handlers_run_before_the_duplicate_goes(operator, pair, monkeypatch):
    survivor, duplicate = pair
    seen = []

    def handler(*, actor, survivor, duplicate):
        seen.append(Contact.objects.filter(pk=duplicate.pk).exists())
        return {"points": 7}

    monkeypatch.setattr(scrm_merge, "MERGE_HANDLERS", [handler])
    merge_contacts(actor=operator, survivor=survivor, duplicate=duplicate, field_choices={})
    assert seen == [True]
    assert AuditEntry.objects.get(action="contact.merged").after["moved"]["points"] == 7


def test_a_failing_handler_changes_nothing(operator, pair, monkeypatch):
    survivor, duplicate = pair

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(scrm_merge, "MERGE_HANDLERS", [broken])
    with pytest.raises(RuntimeError):
        merge_contacts(actor=operator, survivor=survivor, duplicate=duplicate, field_choices={})
    duplicate.refresh_from_db()
    assert duplicate.phone == "+8613800000002" and Event.objects.filter(contact=duplicate).count() == 2


def test_cannot_merge_with_itself_or_bad_choices(operator, pair):
    survivor, duplicate = pair
    with pytest.raises(MergeError):
        contact_merge(actor=operator, survivor=survivor, duplicate=survivor, field_choices={})
    with pytest.raises(MergeError):
        contact_merge(
            actor=operator, survivor=survivor, duplicate=duplicate, field_choices={"password": "survivor"}
        )
    with pytest.raises(MergeError):
        contact_merge(actor=operator, survivor=survivor, duplicate=duplicate, field_choices={"name": "both"})
    assert Contact.objects.filter(pk=duplicate.pk).exists()


def test_cannot_merge_a_contact_one_cannot_see(operator, other_operator, pair, other_contact):
    survivor, _duplicate = pair
    with pytest.raises(NotAllowed):
        contact_merge(actor=operator, survivor=survivor, duplicate=other_contact, field_choices={})
    with pytest.raises(NotAllowed):
        contact_merge(actor=other_operator, survivor=other_contact, duplicate=survivor, field_choices={})
    assert Contact.objects.count() == 3


def test_preview_defaults_and_counts(pair):
    survivor, duplicate = pair
    preview = merge_preview(survivor, duplicate)
    rows = {row.key: row for row in preview.rows}
    assert rows["name"].default == "survivor" and rows["city"].default == "duplicate"
    assert rows["custom:pet"].default == "duplicate" and rows["custom:pet"].duplicate_value == "猫"
    assert not rows["owner"].differs
    assert (preview.events, preview.notes, preview.tags, preview.audit) == (2, 1, 1, 1)


# --- duplicate groups -----------------------------------------------------------------------------


def test_groups_by_email_and_by_person(manager, operator, other_operator, outsider_contact):
    a = Contact.objects.create(name="甲", email="A@x.com", owner=operator)
    b = Contact.objects.create(name="乙", email="a@X.com", owner=other_operator)
    Contact.objects.create(name="丙", email="c@x.com", owner=operator)
    p1 = Contact.objects.create(name="陈晨", city="苏州", birthday=date(1990, 1, 1), owner=operator)
    p2 = Contact.objects.create(name="陈晨", city="苏州", birthday=date(1990, 1, 1))
    Contact.objects.create(name="陈晨", city="南京", birthday=date(1990, 1, 1), owner=operator)
    groups, cursor = duplicate_groups(manager, reason="email")
    assert [(g.key, {c.pk for c in g.contacts}) for g in groups] == [(("a@x.com",), {a.pk, b.pk})]
    assert cursor is None
    groups, _ = duplicate_groups(manager, reason="person")
    assert [{c.pk for c in g.contacts} for g in groups] == [{p1.pk, p2.pk}]
    # The operator sees only duplicates among their own contacts.
    assert duplicate_groups(operator, reason="email")[0] == []
    assert duplicate_groups(operator, reason="person")[0] == []


@pytest.fixture
def outsider_contact(db, django_user_model):
    from accounts.roles import Role
    from tests.conftest import make_user

    user = make_user(django_user_model, "outsider", Role.OPERATOR)
    return Contact.objects.create(name="甲", email="a@x.com", owner=user)  # outside the manager's team


def test_groups_are_keyset_paged(admin_user):
    for i in range(5):
        for _j in range(2):
            Contact.objects.create(
                name=f"人{i}", city="上海", birthday=date(1980, 1, 1 + i), email=f"u{i}@x.com"
            )
    seen, cursor = [], None
    for _page in range(4):
        groups, cursor = duplicate_groups(admin_user, reason="person", cursor=cursor, size=2)
        seen += [g.key[0] for g in groups]
        if not cursor:
            break
    assert seen == [f"人{i}" for i in range(5)]
    groups, _ = duplicate_groups(admin_user, reason="email", cursor="not-a-cursor", size=10)
    assert len(groups) == 5  # a forged cursor starts over


# --- pages ----------------------------------------------------------------------------------------


def test_duplicates_page_per_role(role_client, pair):
    survivor, duplicate = pair
    assert role_client("anon").get("/contacts/duplicates/").status_code == 302
    for role in ("operator", "manager", "admin"):
        page = role_client(role).get("/contacts/duplicates/")
        assert page.status_code == 200
        assert f"/contacts/merge/{survivor.pk}/{duplicate.pk}/" in page.content.decode()
    assert "/contacts/merge/" not in role_client("other").get("/contacts/duplicates/").content.decode()
    assert role_client("manager").get("/contacts/duplicates/?reason=person&cursor=zz").status_code == 200


def test_merge_page_per_role(role_client, pair):
    survivor, duplicate = pair
    url = f"/contacts/merge/{survivor.pk}/{duplicate.pk}/"
    assert role_client("anon").get(url).status_code == 302
    assert role_client("other").get(url).status_code == 404
    assert role_client("other").post(url).status_code == 404
    for role in ("operator", "manager", "admin"):
        page = role_client(role).get(url)
        assert page.status_code == 200
        assert 'name="choice-city"' in page.content.decode()
    assert Contact.objects.filter(pk=duplicate.pk).exists()


def test_merge_confirm_redirects_to_survivor(role_client, pair):
    survivor, duplicate = pair
    client = role_client("manager")
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    response = client.post(f"/contacts/merge/{survivor.pk}/{duplicate.pk}/", {"choice-name": "duplicate"})
    assert response.status_code == 302 and response["Location"] == f"/contacts/{survivor.pk}/"
    survivor.refresh_from_db()
    assert survivor.name == "王芳芳" and not Contact.objects.filter(pk=duplicate.pk).exists()
    page = client.get(response["Location"]).content.decode()
    assert "王芳芳" in page and "Merged “王芳芳” (#" in page and "Moved 2 events, 1 notes, 1 tags" in page


def test_merge_page_errors_are_clear(role_client, pair, other_contact):
    survivor, duplicate = pair
    client = role_client("operator")
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"  # the messages asserted below are the English source
    response = client.get(f"/contacts/merge/{survivor.pk}/{survivor.pk}/", follow=True)
    assert response.redirect_chain[-1][0] == "/contacts/duplicates/"
    assert "cannot be merged with itself" in response.content.decode()
    assert client.get(f"/contacts/merge/{survivor.pk}/{other_contact.pk}/").status_code == 404
    assert client.get(f"/contacts/merge/{survivor.pk}/999999/").status_code == 404
    bad = client.post(f"/contacts/merge/{survivor.pk}/{duplicate.pk}/", {"choice-name": "both"})
    assert bad.status_code == 422 and "Choose the survivor" in bad.content.decode()
    assert Contact.objects.filter(pk=duplicate.pk).exists()


def test_contact_list_links_duplicates(role_client):
    assert "/contacts/duplicates/" in role_client("operator").get("/contacts/").content.decode()


def test_contact_page_hints_at_visible_duplicates(role_client, pair, other_operator):
    survivor, duplicate = pair
    # Same name, city and birthday as the duplicate, but another operator's: only their manager sees it.
    hidden = Contact.objects.create(
        name="王芳芳", city="杭州", birthday=date(1992, 2, 2), owner=other_operator, phone="+8613800000003"
    )
    page = role_client("operator").get(f"/contacts/{duplicate.pk}/").content.decode()
    assert 'data-testid="duplicate-hint"' in page
    assert f"/contacts/merge/{duplicate.pk}/{survivor.pk}/" in page
    assert f"/contacts/{hidden.pk}/" not in page
    page = role_client("manager").get(f"/contacts/{duplicate.pk}/").content.decode()
    assert f"/contacts/merge/{duplicate.pk}/{survivor.pk}/" in page
    assert f"/contacts/merge/{duplicate.pk}/{hidden.pk}/" in page
    Contact.objects.filter(pk=survivor.pk).update(email="other@example.com")
    Contact.objects.filter(pk=hidden.pk).delete()
    assert (
        'data-testid="duplicate-hint"'
        not in role_client("manager").get(f"/contacts/{duplicate.pk}/").content.decode()
    )


def test_merge_keeps_segment_history_and_refreshes_the_survivors_segments(operator, pair):
    from segments.models import Segment, SegmentChange, SegmentMembership
    from segments.services import segment_refresh

    survivor, duplicate = pair
    in_hangzhou = Segment.objects.create(name="杭州", definition={"type": "group", "match": "all", "children": [
        {"type": "field", "field": "city", "op": "equals", "value": "杭州"}]})  # fmt: skip
    segment_refresh(segment_id=in_hangzhou.pk)  # first fill: the duplicate (杭州) is a member
    SegmentChange.objects.create(segment=in_hangzhou, contact=duplicate, change="entered")
    merge_contacts(
        actor=operator, survivor=survivor, duplicate=duplicate, field_choices={"city": "duplicate"}
    )
    # The survivor took the duplicate's city: it is a member now, and the duplicate's history is its own.
    assert list(
        SegmentMembership.objects.filter(segment=in_hangzhou).values_list("contact_id", flat=True)
    ) == [survivor.pk]
    assert sorted(SegmentChange.objects.filter(segment=in_hangzhou).values_list("contact_id", "change")) == [
        (survivor.pk, "entered"),
        (survivor.pk, "entered"),
    ]
    assert AuditEntry.objects.get(action="contact.merged").after["moved"]["segment_changes"] == 1
