"""Custom field settings pages: admins only; keys immutable; archive/restore keep values; purge is explicit."""

import pytest

from contacts import custom_field_services as services
from contacts.models import AuditEntry, Contact, CustomField, CustomFieldKind

BASE = "/contacts/settings/custom-fields/"


@pytest.fixture
def skin(db):
    return CustomField.objects.create(
        key="skin_type", label_zh="肤质", label_en="Skin type", kind=CustomFieldKind.CHOICE,
        choices=["干性", "油性", "混合"], position=2,
    )  # fmt: skip


@pytest.fixture
def archived(db):
    from django.utils import timezone

    return CustomField.objects.create(
        key="old_card",
        label_zh="旧卡号",
        label_en="Old card",
        kind=CustomFieldKind.TEXT,
        archived_at=timezone.now(),
    )


def _pages(skin, archived):
    return [
        ("get", BASE),
        ("get", f"{BASE}new/"),
        ("get", f"{BASE}{skin.pk}/"),
        ("get", f"{BASE}{skin.pk}/archive/"),
        ("get", f"{BASE}{archived.pk}/purge/"),
        ("post", f"{BASE}{archived.pk}/restore/"),
    ]


@pytest.mark.parametrize("role,status", [("operator", 404), ("other", 404), ("manager", 404), ("admin", 200)])
def test_pages_are_for_admins_only(role_client, skin, archived, role, status):
    c = role_client(role)
    for method, url in _pages(skin, archived):
        response = getattr(c, method)(url)
        expected = 302 if (method == "post" and status == 200) else status
        assert response.status_code == expected, url
    if role != "admin":
        assert CustomField.objects.get(pk=archived.pk).archived_at is not None  # the restore did nothing


def test_anonymous_is_sent_to_login(client, skin, archived):
    for method, url in _pages(skin, archived):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and "/login" in response["Location"], url


def test_non_admin_posts_change_nothing(role_client, skin):
    c = role_client("manager")
    assert (
        c.post(f"{BASE}new/", {"label_zh": "x", "label_en": "X", "kind": "text", "position": 0}).status_code
        == 404
    )
    assert c.post(f"{BASE}{skin.pk}/archive/").status_code == 404
    assert CustomField.objects.count() == 1 and CustomField.objects.get().archived_at is None


def test_list_shows_active_and_archived(role_client, skin, archived):
    response = role_client("admin").get(BASE)
    html = response.content.decode()
    assert [f.key for f in response.context["active"]] == ["skin_type"]
    assert [f.key for f in response.context["archived"]] == ["old_card"]
    assert "肤质" in html and "油性" in html and "旧卡号" in html


def test_create_suggests_key_from_english_label_and_audits(role_client, admin_user):
    response = role_client("admin").post(
        f"{BASE}new/",
        {"label_zh": "会员卡号", "label_en": "Membership card No.", "key": "", "kind": "text", "position": 1},
    )
    assert response.status_code == 302
    field = CustomField.objects.get()
    assert field.key == "membership_card_no" and field.choices == []
    entry = AuditEntry.objects.get(action="customfield.created")
    assert entry.actor == admin_user and entry.after["key"] == "membership_card_no"
    # The same label again gets a distinct key.
    role_client("admin").post(
        f"{BASE}new/", {"label_zh": "卡号2", "label_en": "Membership card No.", "kind": "text", "position": 1}
    )
    assert set(CustomField.objects.values_list("key", flat=True)) == {
        "membership_card_no",
        "membership_card_no_2",
    }


def test_create_choice_field_parses_options(role_client):
    role_client("admin").post(
        f"{BASE}new/",
        {"label_zh": "兴趣", "label_en": "Interests", "key": "interests", "kind": "multi_choice",
         "choices": "美妆\n 健身 \n\n美妆\n旅行", "required": "on", "position": 0},
    )  # fmt: skip
    field = CustomField.objects.get(key="interests")
    assert field.choices == ["美妆", "健身", "旅行"] and field.required


@pytest.mark.parametrize(
    "data,error_field",
    [
        ({"key": "2024"}, "key"),
        ({"key": "Bad Key"}, "key"),
        ({"key": "a__b"}, "key"),
        ({"key": "skin_type"}, "key"),  # taken
        ({"kind": "choice", "choices": ""}, "choices"),
        ({"kind": "choice", "choices": "红,蓝"}, "choices"),
        ({"label_en": ""}, "label_en"),
        ({"kind": "colour"}, "kind"),
    ],
)
def test_create_bad_input_saves_nothing(role_client, skin, data, error_field):
    payload = {
        "label_zh": "字段",
        "label_en": "Field",
        "key": "field_x",
        "kind": "text",
        "position": 0,
        **data,
    }
    response = role_client("admin").post(f"{BASE}new/", payload)
    assert response.status_code == 422
    assert error_field in response.context["form"].errors
    assert CustomField.objects.count() == 1


def test_edit_changes_labels_but_never_key_or_type(role_client, skin):
    response = role_client("admin").post(
        f"{BASE}{skin.pk}/",
        {"label_zh": "皮肤类型", "label_en": "Skin", "key": "hacked", "kind": "text",
         "choices": "干性\n油性\n混合\n敏感", "position": 5},
    )  # fmt: skip
    assert response.status_code == 302
    skin.refresh_from_db()
    assert (skin.key, skin.kind) == ("skin_type", "choice")
    assert (skin.label_zh, skin.label_en, skin.position) == ("皮肤类型", "Skin", 5)
    assert skin.choices == ["干性", "油性", "混合", "敏感"]
    entry = AuditEntry.objects.get(action="customfield.updated")
    assert entry.before["label_zh"] == "肤质" and entry.after["label_zh"] == "皮肤类型"
    assert "key" not in entry.after


def test_edit_page_shows_usage_count(role_client, skin, contact, other_contact):
    Contact.objects.filter(pk=contact.pk).update(custom_fields={"skin_type": "油性"})
    response = role_client("admin").get(f"{BASE}{skin.pk}/")
    assert response.context["usage"].value == 1
    assert 'data-testid="key">skin_type<' in response.content.decode()


def test_removing_an_option_in_use_is_refused_with_count(role_client, skin, contact, other_contact):
    Contact.objects.filter(pk=contact.pk).update(custom_fields={"skin_type": "油性"})
    response = role_client("admin").post(
        f"{BASE}{skin.pk}/",
        {"label_zh": "肤质", "label_en": "Skin type", "choices": "干性\n混合", "position": 2},
    )
    assert response.status_code == 422
    assert response.context["in_use"]["油性"][0].value == 1
    assert "cf=skin_type" in response.context["in_use"]["油性"][1]
    skin.refresh_from_db()
    assert skin.choices == ["干性", "油性", "混合"]
    assert Contact.objects.get(pk=contact.pk).custom_fields == {"skin_type": "油性"}
    # An option nobody uses can go.
    response = role_client("admin").post(
        f"{BASE}{skin.pk}/",
        {"label_zh": "肤质", "label_en": "Skin type", "choices": "油性\n混合", "position": 2},
    )
    assert response.status_code == 302
    skin.refresh_from_db()
    assert skin.choices == ["油性", "混合"]


def test_removing_an_option_in_use_by_multi_choice_is_refused(db, admin_user, contact):
    field = services.custom_field_create(
        actor=admin_user, key="interests", label_zh="兴趣", label_en="Interests", kind="multi_choice",
        choices=["美妆", "健身"],
    )  # fmt: skip
    Contact.objects.filter(pk=contact.pk).update(custom_fields={"interests": ["美妆", "健身"]})
    with pytest.raises(services.OptionsInUse) as exc:
        services.custom_field_update(
            actor=admin_user, field=field, label_zh="兴趣", label_en="Interests", choices=["美妆"],
            required=False, position=0,
        )  # fmt: skip
    assert list(exc.value.usage) == ["健身"]
    field.refresh_from_db()
    assert field.choices == ["美妆", "健身"]


def test_making_a_field_required_keeps_existing_contacts(role_client, skin, contact):
    response = role_client("admin").post(
        f"{BASE}{skin.pk}/",
        {
            "label_zh": "肤质",
            "label_en": "Skin type",
            "choices": "干性\n油性\n混合",
            "required": "on",
            "position": 2,
        },
    )
    assert response.status_code == 302
    skin.refresh_from_db()
    assert skin.required
    # The contact without a value is untouched and its page still works.
    assert Contact.objects.get(pk=contact.pk).custom_fields == {}
    assert role_client("operator").get(f"/contacts/{contact.pk}/").status_code == 200


def test_archive_confirm_shows_count_then_keeps_values_and_restore_brings_them_back(
    role_client, skin, contact
):
    Contact.objects.filter(pk=contact.pk).update(custom_fields={"skin_type": "油性"})
    c = role_client("admin")
    page = c.get(f"{BASE}{skin.pk}/archive/")
    assert page.context["usage"].value == 1 and "恢复" in page.content.decode()  # says it can be restored
    assert c.post(f"{BASE}{skin.pk}/archive/").status_code == 302
    skin.refresh_from_db()
    assert skin.archived_at is not None
    assert Contact.objects.get(pk=contact.pk).custom_fields == {"skin_type": "油性"}
    # Archived: gone from the contact form, shown read-only on the contact page.
    form_page = role_client("operator").get(f"/contacts/{contact.pk}/edit/")
    assert "cf_skin_type" not in form_page.context["form"].fields
    detail = role_client("operator").get(f"/contacts/{contact.pk}/")
    assert [r["key"] for r in detail.context["archived_custom_rows"]] == ["skin_type"]
    c = role_client("admin")
    assert c.post(f"{BASE}{skin.pk}/restore/").status_code == 302
    skin.refresh_from_db()
    assert skin.archived_at is None
    detail = role_client("operator").get(f"/contacts/{contact.pk}/")
    assert {r["key"]: r["value"] for r in detail.context["custom_rows"]} == {"skin_type": "油性"}
    assert [e.action for e in AuditEntry.objects.filter(object_type="customfield").order_by("id")] == [
        "customfield.archived",
        "customfield.restored",
    ]


def test_purge_needs_the_key_typed_and_is_audited(role_client, admin_user, archived, contact, other_contact):
    Contact.objects.filter(pk=contact.pk).update(custom_fields={"old_card": "A-1", "keep": "x"})
    Contact.objects.filter(pk=other_contact.pk).update(custom_fields={"old_card": "B-2"})
    c = role_client("admin")
    assert c.get(f"{BASE}{archived.pk}/purge/").context["usage"].value == 2
    response = c.post(f"{BASE}{archived.pk}/purge/", {"confirm_key": "old-card"})
    assert response.status_code == 422 and "confirm_key" in response.context["form"].errors
    assert Contact.objects.get(pk=contact.pk).custom_fields["old_card"] == "A-1"
    assert not AuditEntry.objects.filter(action="customfield.values_purged").exists()
    assert c.post(f"{BASE}{archived.pk}/purge/", {"confirm_key": "old_card"}).status_code == 302
    assert Contact.objects.get(pk=contact.pk).custom_fields == {"keep": "x"}
    assert Contact.objects.get(pk=other_contact.pk).custom_fields == {}
    entry = AuditEntry.objects.get(action="customfield.values_purged")
    assert entry.actor == admin_user and entry.before == {"key": "old_card", "contacts": 2}


def test_purge_of_an_active_field_is_refused(role_client, skin, contact):
    Contact.objects.filter(pk=contact.pk).update(custom_fields={"skin_type": "油性"})
    c = role_client("admin")
    assert c.post(f"{BASE}{skin.pk}/purge/", {"confirm_key": "skin_type"}).status_code == 302
    assert Contact.objects.get(pk=contact.pk).custom_fields == {"skin_type": "油性"}
    with pytest.raises(services.CustomFieldError):
        services.custom_field_purge_values(actor=None, field=skin, confirm_key="skin_type")


def test_settings_nav_and_taxonomy_page_link_here(role_client):
    html = role_client("admin").get("/contacts/settings/taxonomy/").content.decode()
    assert html.count(BASE) >= 2  # the settings menu and the page's own link
