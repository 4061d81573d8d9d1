"""Custom field values on the contact: edited in the contact form, shown on the detail page, filtered in the list."""

from datetime import date
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from contacts.models import AuditEntry, Contact, CustomField, CustomFieldKind
from contacts.selectors import ContactFilters, CustomFieldFilter, custom_field_choices, filter_contacts


@pytest.fixture
def fields(db):
    specs = [
        ("wechat_name", "微信昵称", "WeChat name", CustomFieldKind.TEXT, []),
        ("balance", "卡余额", "Card balance", CustomFieldKind.NUMBER, []),
        ("anniversary", "纪念日", "Anniversary", CustomFieldKind.DATE, []),
        ("skin_type", "肤质", "Skin type", CustomFieldKind.CHOICE, ["干性", "油性", "混合"]),
        ("interests", "兴趣", "Interests", CustomFieldKind.MULTI_CHOICE, ["美妆", "健身", "旅行"]),
    ]
    return {
        key: CustomField.objects.create(
            key=key, label_zh=zh, label_en=en, kind=kind, choices=choices, position=i
        )
        for i, (key, zh, en, kind, choices) in enumerate(specs)
    }


def _form(contact=None, **custom):
    data = {"name": contact.name if contact else "新客户", "phone": contact.phone if contact else "",
            "gender": "unknown", "source": "friend", "time_zone": "Asia/Shanghai", "joined_at": "2026-11-01T10:00"}  # fmt: skip
    data.update({f"cf_{key}": value for key, value in custom.items()})
    return data


GOOD = {
    "wechat_name": "小张",
    "balance": "1,200.50",
    "anniversary": "2024/5/1",
    "skin_type": "油性",
    "interests": ["旅行", "美妆"],
}
STORED = {
    "wechat_name": "小张",
    "balance": "1200.5",
    "anniversary": "2024-05-01",
    "skin_type": "油性",
    "interests": ["美妆", "旅行"],
}


def test_create_saves_every_type_in_storage_form(role_client, fields, operator):
    response = role_client("operator").post("/contacts/new/", _form(**GOOD))
    assert response.status_code == 302
    contact = Contact.objects.get(name="新客户")
    assert contact.custom_fields == STORED
    created = AuditEntry.objects.get(contact=contact, action="contact.created")
    assert created.after["custom_fields"] == STORED


def test_edit_saves_changes_audits_them_and_keeps_archived_values(role_client, fields, contact):
    fields["wechat_name"].archived_at = timezone.now()
    fields["wechat_name"].save()
    Contact.objects.filter(pk=contact.pk).update(custom_fields={"wechat_name": "旧昵称", "balance": "5"})
    c = role_client("operator")
    page = c.get(f"/contacts/{contact.pk}/edit/")
    assert page.context["form"]["cf_balance"].value() == "5"
    assert "旧昵称" in page.content.decode()  # the archived value, read-only
    assert "cf_wechat_name" not in page.context["form"].fields
    response = c.post(f"/contacts/{contact.pk}/edit/", _form(contact, balance="6", skin_type="干性"))
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.custom_fields == {"wechat_name": "旧昵称", "balance": "6", "skin_type": "干性"}
    entry = AuditEntry.objects.get(contact=contact, action="contact.updated")
    assert entry.before["custom_fields"] == {"wechat_name": "旧昵称", "balance": "5"}
    assert entry.after["custom_fields"]["skin_type"] == "干性"
    # The timeline says it in words, per field.
    detail = c.get(f"/contacts/{contact.pk}/").content.decode()
    assert "卡余额：5 → 6" in detail and "肤质：— → 干性" in detail  # zh: full-width colon


def test_clearing_a_value_removes_the_key(role_client, fields, contact):
    Contact.objects.filter(pk=contact.pk).update(custom_fields={"balance": "5", "interests": ["健身"]})
    role_client("operator").post(f"/contacts/{contact.pk}/edit/", _form(contact, balance="", interests=[]))
    contact.refresh_from_db()
    assert contact.custom_fields == {}


@pytest.mark.parametrize(
    "key,value,needle",
    [
        ("balance", "12abc", "not a number"),
        ("anniversary", "2024-02-30", "not a valid date"),
        ("skin_type", "中性", "not one of the options"),
        ("interests", ["美妆", "潜水"], "not one of the options"),
        ("wechat_name", "x" * 501, "500"),
    ],
)
def test_bad_values_give_field_errors_and_save_nothing(role_client, fields, contact, key, value, needle):
    settings_en = {settings.LANGUAGE_COOKIE_NAME: "en"}
    c = role_client("operator")
    c.cookies.load(settings_en)
    response = c.post(f"/contacts/{contact.pk}/edit/", _form(contact, **{key: value}))
    assert response.status_code == 422
    errors = response.context["form"].errors
    assert list(errors) == [f"cf_{key}"] and needle in errors[f"cf_{key}"][0]
    assert Contact.objects.get(pk=contact.pk).custom_fields == {}


def test_required_field_missing_is_an_error_on_new_writes(role_client, fields, contact):
    fields["skin_type"].required = True
    fields["skin_type"].save()
    c = role_client("operator")
    assert c.get(f"/contacts/{contact.pk}/").status_code == 200  # existing contact still fine
    response = c.post(f"/contacts/{contact.pk}/edit/", _form(contact, balance="3"))
    assert response.status_code == 422 and "cf_skin_type" in response.context["form"].errors
    assert c.post("/contacts/new/", _form()).status_code == 422
    assert c.post(f"/contacts/{contact.pk}/edit/", _form(contact, skin_type="混合")).status_code == 302


@pytest.mark.parametrize(
    "lang,labels", [("zh-hans", ["微信昵称", "肤质"]), ("en", ["WeChat name", "Skin type"])]
)
def test_detail_page_shows_values_with_labels_in_the_users_language(
    role_client, fields, contact, lang, labels
):
    Contact.objects.filter(pk=contact.pk).update(custom_fields=STORED)
    c = role_client("operator")
    c.cookies.load({settings.LANGUAGE_COOKIE_NAME: lang})
    response = c.get(f"/contacts/{contact.pk}/")
    html = response.content.decode()
    rows = {row["label"]: row["value"] for row in response.context["custom_rows"]}
    assert rows[labels[0]] == "小张" and rows[labels[1]] == "油性"
    for label in labels:
        assert f">{label}</dt>" in html
    assert "1200.5" in html and "2024-05-01" in html and "旅行" in html


@pytest.mark.parametrize("role,status", [("operator", 200), ("other", 404), ("manager", 200), ("admin", 200)])
def test_custom_values_follow_contact_visibility(role_client, fields, contact, role, status):
    Contact.objects.filter(pk=contact.pk).update(custom_fields={"wechat_name": "小张"})
    response = role_client(role).get(f"/contacts/{contact.pk}/")
    assert response.status_code == status
    assert ("小张" in response.content.decode()) == (status == 200)


# --- the list filter ---------------------------------------------------------------------------------


@pytest.fixture
def people(fields, operator):
    def make(name, values):
        return Contact.objects.create(name=name, owner=operator, custom_fields=values)

    return {
        "a": make("甲", {"wechat_name": "Lily 小张", "balance": "9.5", "anniversary": "2024-01-31",
                         "skin_type": "油性", "interests": ["美妆", "旅行"]}),
        "b": make("乙", {"wechat_name": "小李", "balance": "100", "anniversary": "2024-12-01",
                         "skin_type": "干性", "interests": ["健身"]}),
        "c": make("丙", {"balance": "-3", "interests": ["美妆"]}),
        "d": make("丁", {}),
    }  # fmt: skip


def _names(custom: CustomFieldFilter) -> set[str]:
    return set(
        filter_contacts(Contact.objects.all(), ContactFilters(custom=custom)).values_list("name", flat=True)
    )


@pytest.mark.parametrize(
    "custom,expected",
    [
        (CustomFieldFilter("wechat_name", "text", value="lily"), {"甲"}),
        (CustomFieldFilter("wechat_name", "text", value="小"), {"甲", "乙"}),
        (CustomFieldFilter("wechat_name", "text", value="小李", op="equals"), {"乙"}),
        (CustomFieldFilter("wechat_name", "text", value="小", op="equals"), set()),
        (CustomFieldFilter("balance", "number", min=Decimal("9.5")), {"甲", "乙"}),
        (CustomFieldFilter("balance", "number", min=Decimal("10")), {"乙"}),  # numeric, not text, order
        (CustomFieldFilter("balance", "number", max=Decimal("9.5")), {"甲", "丙"}),
        (CustomFieldFilter("balance", "number", min=Decimal("-5"), max=Decimal("0")), {"丙"}),
        (CustomFieldFilter("anniversary", "date", date_from=date(2024, 2, 1)), {"乙"}),
        (CustomFieldFilter("anniversary", "date", date_to=date(2024, 1, 31)), {"甲"}),
        (CustomFieldFilter("skin_type", "choice", value="油性"), {"甲"}),
        (CustomFieldFilter("interests", "multi_choice", value="美妆"), {"甲", "丙"}),
        (CustomFieldFilter("interests", "multi_choice", value="健身"), {"乙"}),
        (CustomFieldFilter("skin_type", "choice"), {"甲", "乙"}),  # no condition: has a value
        (CustomFieldFilter("anniversary", "date"), {"甲", "乙"}),
    ],
)
def test_filter_by_each_type(people, custom, expected):
    assert _names(custom) == expected


@pytest.mark.parametrize(
    "query,expected",
    [
        ("cf=skin_type&cf_value=干性", {"乙"}),
        ("cf=interests&cf_value=旅行", {"甲"}),
        ("cf=balance&cf_min=0&cf_max=50", {"甲"}),
        ("cf=anniversary&cf_from=2024-01-01&cf_to=2024-06-30", {"甲"}),
        ("cf=wechat_name&cf_op=equals&cf_value=Lily 小张", {"甲"}),
        ("cf=wechat_name&cf_op=equals&cf_value=lily 小张", set()),  # equals is exact
        ("cf=wechat_name", {"甲", "乙"}),
    ],
)
def test_list_page_filters_by_custom_field(role_client, people, query, expected):
    response = role_client("operator").get(f"/contacts/?{query}")
    assert response.status_code == 200
    assert {c.name for c in response.context["page"].rows} == expected
    assert not response.context["ignored"]


@pytest.mark.parametrize(
    "query",
    ["cf=skin_type&cf_value=中性", "cf=balance&cf_min=abc", "cf=nope&cf_value=x", "cf=anniversary&cf_from=x"],
)
def test_bad_custom_filter_values_are_ignored_with_a_message(role_client, people, query):
    response = role_client("operator").get(f"/contacts/?{query}")
    assert response.status_code == 200
    assert response.context["ignored"]
    assert len(response.context["page"].rows) == 4


def test_archived_field_is_not_offered_in_the_filter(role_client, people, fields):
    fields["skin_type"].archived_at = timezone.now()
    fields["skin_type"].save()
    response = role_client("operator").get("/contacts/?cf=skin_type&cf_value=油性")
    assert response.context["ignored"] and len(response.context["page"].rows) == 4
    assert ("skin_type", "肤质") not in custom_field_choices()
    assert 'name="cf"' in response.content.decode()


def test_filter_respects_visibility(role_client, people, other_operator):
    Contact.objects.create(name="别人的", owner=other_operator, custom_fields={"skin_type": "油性"})
    response = role_client("operator").get("/contacts/?cf=skin_type&cf_value=油性")
    assert {c.name for c in response.context["page"].rows} == {"甲"}
    response = role_client("manager").get("/contacts/?cf=skin_type&cf_value=油性")
    assert {c.name for c in response.context["page"].rows} == {"甲", "别人的"}


def test_custom_field_choices_in_the_active_language(fields):
    from django.utils import translation

    with translation.override("en"):
        assert custom_field_choices()[0] == ("wechat_name", "WeChat name")
    with translation.override("zh-hans"):
        assert custom_field_choices()[0] == ("wechat_name", "微信昵称")
