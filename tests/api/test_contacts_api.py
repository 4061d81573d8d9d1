"""POST /contacts (upsert), GET /contacts/{id}, GET /contacts (cursor pages and filters)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from contacts.models import AuditEntry, Contact, CustomField, Source


def test_create_then_update_by_each_key(api, tag):
    created = api.post(
        "/contacts", {"name": "王五", "phone": "137 0013 7000", "tags": ["辣"], "city": "杭州"}
    )
    assert created.status_code == 201
    body = created.json()
    assert body["phone"] == "+8613700137000" and body["source"] == Source.API and body["tags"] == ["辣"]
    pk = body["id"]
    # by phone (in another spelling): the same contact, updated; unsent fields kept
    updated = api.post("/contacts", {"phone": "+86 137-0013-7000", "external_userid": "wm_1", "city": "苏州"})
    assert updated.status_code == 200
    assert (
        updated.json()["id"] == pk and updated.json()["name"] == "王五" and updated.json()["city"] == "苏州"
    )
    # by external id
    again = api.post("/contacts", {"external_userid": "wm_1", "email": "WW@Example.com"})
    assert again.status_code == 200 and again.json()["id"] == pk
    # by email
    by_email = api.post("/contacts", {"email": "ww@example.com", "gender": "male"})
    assert by_email.status_code == 200 and by_email.json()["gender"] == "male"
    assert Contact.objects.count() == 1


def test_writes_are_audited_with_the_key_name(api):
    pk = api.post("/contacts", {"name": "王五", "phone": "13700137000"}).json()["id"]
    api.post("/contacts", {"phone": "13700137000", "city": "杭州"})
    api.post("/contacts", {"phone": "13700137000", "city": "杭州"})  # unchanged: no entry
    entries = list(AuditEntry.objects.filter(contact_id=pk).order_by("id"))
    assert [e.action for e in entries] == ["contact.created", "contact.updated"]
    assert all(e.actor is None and "shop" in e.object_repr for e in entries)
    assert entries[1].before == {"city": ""} and entries[1].after == {"city": "杭州"}


def test_field_errors_have_paths_and_nothing_is_written(api):
    response = api.post("/contacts", {"name": "x", "phone": "12345", "tier": "无此等级", "owner": "ghost",
                                      "tags": ["不存在"], "time_zone": "Mars/Base"})  # fmt: skip
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["detail"]}
    assert fields == {"phone", "tier", "owner", "tags", "time_zone"}
    assert not Contact.objects.exists()


def test_wrong_types_are_422_with_paths(api):
    response = api.post("/contacts", {"name": 5, "birthday": "2024-02-30", "gender": "robot", "tags": "a"})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["detail"]}
    assert {"name", "birthday", "gender", "tags"} <= fields


def test_a_new_contact_needs_a_key_and_a_name(api):
    assert api.post("/contacts", {"name": "无号码"}).json()["detail"][0]["field"] == "external_userid"
    response = api.post("/contacts", {"phone": "13700137000"})
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "name"


def test_conflicting_keys_are_409_not_a_duplicate(api, contact):
    Contact.objects.create(name="另一人", phone="+8613900139001", external_userid="wm_other")
    # found by phone, but that person has another external id
    response = api.post("/contacts", {"phone": "13900139001", "external_userid": "wm_new"})
    assert response.status_code == 409
    # found by external id, then asked to take a phone another contact has
    response = api.post("/contacts", {"external_userid": "wm_other", "phone": contact.phone})
    assert response.status_code == 409 and "phone" in response.json()["detail"]
    assert Contact.objects.count() == 2


def test_custom_fields_validated_and_merged(api):
    CustomField.objects.create(key="size", label_zh="尺码", label_en="Size", kind="choice", choices=["S", "M"],
                               required=True)  # fmt: skip
    CustomField.objects.create(key="budget", label_zh="预算", label_en="Budget", kind="number")
    missing = api.post("/contacts", {"name": "a", "phone": "13700137000", "custom_fields": {"budget": 1}})
    assert missing.status_code == 422 and missing.json()["detail"][0]["field"] == "custom_fields.size"
    ok = api.post(
        "/contacts", {"name": "a", "phone": "13700137000", "custom_fields": {"size": "S", "budget": "12.50"}}
    )
    assert ok.status_code == 201 and ok.json()["custom_fields"] == {"size": "S", "budget": "12.5"}
    partial = api.post("/contacts", {"phone": "13700137000", "custom_fields": {"budget": None}})
    assert partial.json()["custom_fields"] == {"size": "S"}
    bad = api.post("/contacts", {"phone": "13700137000", "custom_fields": {"size": "XL", "nope": 1}})
    assert {e["field"] for e in bad.json()["detail"]} == {"custom_fields.size", "custom_fields.nope"}


def test_get_contact(api, contact, tier):
    contact.tier = tier
    contact.save()
    body = api.get(f"/contacts/{contact.pk}").json()
    assert body["name"] == "张三" and body["tier"] == "金卡" and body["owner"] == "operator"
    assert body["total_spent"] == "0.00"
    assert api.get("/contacts/999999").status_code == 404
    assert api.get(f"/contacts/{2**70}").status_code == 422


def test_list_cursor_pages_walk_everything_once(api, operator):
    Contact.objects.bulk_create([Contact(name=f"c{i}", phone=f"+861370000{i:04d}") for i in range(7)])
    seen, cursor = [], None
    while True:
        page = api.get("/contacts", {"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
        seen += [c["id"] for c in page["results"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(Contact.objects.values_list("pk", flat=True))
    bad = api.get("/contacts", {"cursor": "garbage!"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "cursor"
    assert api.get("/contacts", {"limit": 201}).status_code == 422


def test_list_filters(api, contact, other_contact, tag, tier):
    contact.tags.add(tag)
    other_contact.tier = tier
    other_contact.source = Source.STORE
    other_contact.save()
    Contact.objects.filter(pk=contact.pk).update(updated_at=timezone.now() - timedelta(days=3))

    def ids(**params):
        return [c["id"] for c in api.get("/contacts", params).json()["results"]]

    assert ids(tag="辣") == [contact.pk]
    assert ids(tier="金卡") == [other_contact.pk]
    assert ids(source="store") == [other_contact.pk]
    assert ids(owner="operator") == [contact.pk]
    assert ids(q="张") == [contact.pk]
    assert ids(updated_since=(timezone.now() - timedelta(days=1)).isoformat()) == [other_contact.pk]
    assert api.get("/contacts", {"source": "moon"}).status_code == 422


@pytest.mark.parametrize("bad", ["\x00", "\ud800"])
def test_unstorable_text_is_422(api, bad):
    response = api.post("/contacts", {"name": f"a{bad}", "phone": "13700137000"})
    assert response.status_code == 422
    assert not Contact.objects.exists()
