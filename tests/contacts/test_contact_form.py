import pytest

from contacts.models import AuditEntry, Contact


def test_operator_creates_own_contact(role_client, operator):
    response = role_client("operator").post(
        "/contacts/new/",
        {
            "name": "新客户",
            "phone": "139-0000-1111",
            "gender": "female",
            "source": "friend",
            "time_zone": "Asia/Shanghai",
            "joined_at": "2026-11-01T10:00",
        },  # fmt: skip
    )
    contact = Contact.objects.get(name="新客户")
    assert response.status_code == 302 and response["Location"] == f"/contacts/{contact.pk}/"
    assert contact.phone == "+8613900001111" and contact.owner == operator
    assert AuditEntry.objects.filter(contact=contact, action="contact.created", actor=operator).exists()


@pytest.mark.parametrize(
    "field,value,needle",
    [("phone", "12345", "phone"), ("email", "not-an-email", "email"), ("name", "", "name"),
     ("birthday", "2026-02-30", "birthday"), ("time_zone", "Mars/Base", "time_zone")],
)  # fmt: skip
def test_invalid_input_gives_field_errors_and_saves_nothing(role_client, field, value, needle):
    data = {"name": "坏数据", "phone": "", "gender": "unknown", "source": "friend", "time_zone": "Asia/Shanghai",
            "joined_at": "2026-11-01T10:00", field: value}  # fmt: skip
    response = role_client("operator").post("/contacts/new/", data)
    assert response.status_code == 422
    assert needle in response.context["form"].errors
    assert not Contact.objects.exists()


def test_duplicate_phone_links_to_existing_contact(role_client, contact):
    data = {"name": "另一个", "phone": "+86 138 0013 8000", "gender": "unknown", "source": "friend",
            "time_zone": "Asia/Shanghai", "joined_at": "2026-11-01T10:00"}  # fmt: skip
    response = role_client("operator").post("/contacts/new/", data)
    assert response.status_code == 422
    assert f'href="/contacts/{contact.pk}/"' in response.content.decode()
    assert Contact.objects.count() == 1


def test_duplicate_owned_by_colleague_says_so_without_a_link(role_client, contact):
    data = {"name": "另一个", "phone": "13800138000", "gender": "unknown", "source": "friend",
            "time_zone": "Asia/Shanghai", "joined_at": "2026-11-01T10:00"}  # fmt: skip
    response = role_client("other").post("/contacts/new/", data)
    assert response.status_code == 422
    assert f"/contacts/{contact.pk}/" not in response.content.decode()
    assert "phone" in response.context["form"].errors


def test_duplicate_external_userid(role_client, contact):
    Contact.objects.filter(pk=contact.pk).update(external_userid="wm123")
    data = {"name": "另一个", "external_userid": "wm123", "gender": "unknown", "source": "friend",
            "time_zone": "Asia/Shanghai", "joined_at": "2026-11-01T10:00"}  # fmt: skip
    response = role_client("manager").post("/contacts/new/", data)
    assert response.status_code == 422 and "external_userid" in response.context["form"].errors


def test_edit_audits_only_changed_fields(role_client, contact, operator):
    data = {"name": "张三丰", "phone": "13800138000", "gender": "male", "source": "friend", "city": "上海",
            "time_zone": "Asia/Shanghai", "joined_at": contact.joined_at.strftime("%Y-%m-%dT%H:%M")}  # fmt: skip
    response = role_client("operator").post(f"/contacts/{contact.pk}/edit/", data)
    assert response.status_code == 302
    entry = AuditEntry.objects.get(contact=contact, action="contact.updated")
    changed = set(entry.after) - {"joined_at"}  # the form shows minutes; seconds may differ
    assert changed == {"name", "gender"}
    assert entry.before["name"] == "张三" and entry.after["name"] == "张三丰"


def test_operator_form_has_no_owner_field(role_client, contact):
    assert "owner" not in role_client("operator").get("/contacts/new/").context["form"].fields
    assert "owner" in role_client("manager").get("/contacts/new/").context["form"].fields


def test_other_operator_cannot_edit(role_client, contact):
    response = role_client("other").post(f"/contacts/{contact.pk}/edit/", {"name": "黑客"})
    assert response.status_code == 404
    contact.refresh_from_db()
    assert contact.name == "张三"
