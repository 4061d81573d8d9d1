import re

import pytest
from django.utils import timezone

from contacts.models import AuditEntry, Contact, Event, Note

# Who may open the contact owned by `operator`: the owner, their manager, an admin; never another operator.
SEES_OWNED = {"operator": True, "other": False, "manager": True, "admin": True}


@pytest.mark.parametrize("role", SEES_OWNED)
@pytest.mark.parametrize("page", ["", "edit/", "timeline/"])
def test_pages_by_role(role_client, contact, role, page):
    response = role_client(role).get(f"/contacts/{contact.pk}/{page}")
    assert response.status_code == (200 if SEES_OWNED[role] else 404)


@pytest.mark.parametrize("page", ["", "edit/", "timeline/"])
def test_anonymous_redirected(client, contact, page):
    response = client.get(f"/contacts/{contact.pk}/{page}")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("role", SEES_OWNED)
def test_writes_by_role(role_client, contact, tag, tier, role):
    c = role_client(role)
    expected = 200 if SEES_OWNED[role] else 404
    assert (
        c.post(f"/contacts/{contact.pk}/tags/", {"tags": [tag.pk]}, HTTP_HX_REQUEST="true").status_code
        == expected
    )
    assert (
        c.post(
            f"/contacts/{contact.pk}/quick/", {"field": "tier", "tier": tier.pk}, HTTP_HX_REQUEST="true"
        ).status_code
        == expected
    )
    assert (
        c.post(f"/contacts/{contact.pk}/notes/", {"body": "回访"}, HTTP_HX_REQUEST="true").status_code
        == expected
    )
    contact.refresh_from_db()
    assert (contact.tier_id == tier.pk) == SEES_OWNED[role]
    assert Note.objects.filter(contact=contact).exists() == SEES_OWNED[role]


def test_tag_edit_shows_in_timeline_and_audit(role_client, contact, tag, operator):
    c = role_client("operator")
    response = c.post(f"/contacts/{contact.pk}/tags/", {"tags": [tag.pk]}, HTTP_HX_REQUEST="true")
    assert "timeline-changed" in response["HX-Trigger"]
    assert list(contact.tags.all()) == [tag]
    entry = AuditEntry.objects.get(contact=contact, action="contact.tag_added")
    assert entry.actor == operator and entry.after == {"tag": str(tag)}
    assert "口味偏好: 辣" in c.get(f"/contacts/{contact.pk}/timeline/").content.decode()
    c.post(f"/contacts/{contact.pk}/tags/", {}, HTTP_HX_REQUEST="true")
    assert not contact.tags.exists()
    assert AuditEntry.objects.filter(contact=contact, action="contact.tag_removed").count() == 1


def test_unknown_tag_rejected(role_client, contact):
    response = role_client("operator").post(
        f"/contacts/{contact.pk}/tags/", {"tags": [999999]}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422 and not contact.tags.exists()


def test_operator_cannot_reassign_owner(role_client, contact, other_operator):
    response = role_client("operator").post(
        f"/contacts/{contact.pk}/quick/",
        {"field": "owner", "owner": other_operator.pk},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422
    contact.refresh_from_db()
    assert contact.owner.username == "operator"


def test_manager_reassigns_and_opt_out_records_time(role_client, contact, other_operator):
    c = role_client("manager")
    c.post(
        f"/contacts/{contact.pk}/quick/",
        {"field": "owner", "owner": other_operator.pk},
        HTTP_HX_REQUEST="true",
    )
    c.post(
        f"/contacts/{contact.pk}/quick/",
        {"field": "opted_out", "opted_out": "on", "opted_out_reason": "嫌打扰"},
    )
    contact.refresh_from_db()
    assert contact.owner == other_operator
    assert contact.opted_out and contact.opted_out_reason == "嫌打扰" and contact.opted_out_at is not None
    entry = AuditEntry.objects.filter(contact=contact, action="contact.updated").order_by("id").first()
    assert entry.before == {"owner": "李运营"} and entry.after == {"owner": "赵运营"}
    c.post(f"/contacts/{contact.pk}/quick/", {"field": "opted_out"})
    contact.refresh_from_db()
    assert not contact.opted_out and contact.opted_out_at is None and contact.opted_out_reason == ""


def test_timeline_is_newest_first_and_paginates(role_client, contact):
    now = timezone.now()
    Event.objects.bulk_create(
        [
            Event(contact=contact, kind="check_in", occurred_at=now, source="ui", idempotency_key=f"same-{i}")
            for i in range(25)
        ]
        + [
            Event(
                contact=contact,
                kind="purchase",
                amount="9.90",
                occurred_at=now.replace(year=now.year - 1),
                source="ui",
                idempotency_key="old",
            )
        ]  # fmt: skip
    )
    Note.objects.create(
        contact=contact,
        body="最新的备注",
        created_at=now.replace(microsecond=0) + timezone.timedelta(minutes=1),
    )
    from contacts.selectors import contact_timeline

    items, before = contact_timeline(contact, before=None, size=10)
    assert items[0].obj.body == "最新的备注"
    while before:
        more, before = contact_timeline(contact, before=before, size=10)
        items += more
    ids = [(i.kind, i.obj.pk) for i in items]
    assert (
        len(ids) == len(set(ids)) == 27
    )  # 25 same-instant events, the old one, the note: none lost or doubled
    assert items[-1].obj.idempotency_key == "old"
    c = role_client("operator")
    body = c.get(f"/contacts/{contact.pk}/").content.decode()
    more_url = re.search(r'hx-get="(/contacts/\d+/timeline/\?before=[^"]+)"', body).group(1)
    older = c.get(more_url.replace("&amp;", "&"), HTTP_HX_REQUEST="true").content.decode()
    assert older.count("<li") == 7 and "<html" not in older


def test_note_validation_error_is_shown(role_client, contact):
    response = role_client("operator").post(
        f"/contacts/{contact.pk}/notes/", {"body": "   "}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and "is-invalid" in response.content.decode()
    assert not Note.objects.exists()


def test_contact_deleted_is_404(role_client, contact):
    pk = contact.pk
    Contact.objects.filter(pk=pk).delete()
    assert role_client("admin").get(f"/contacts/{pk}/").status_code == 404


def test_detail_shows_purchase_totals_from_the_pipeline(role_client, contact):
    from decimal import Decimal

    from contacts.events import EventIn, events_record
    from scrm.pipeline import process_pending_events

    now = timezone.now()
    events_record(events=[
        EventIn(contact.pk, "purchase", now, "o1", Decimal("1200.50"), order_id="P-1"),
        EventIn(contact.pk, "purchase", now, "o2", Decimal("99.00"), order_id="P-2"),
    ], source="ui")  # fmt: skip
    process_pending_events()
    body = role_client("operator").get(f"/contacts/{contact.pk}/").content.decode()
    totals = body[body.index('id="activity-totals"') :][:1500]
    assert re.search(r"¥1,?299\.50<", totals) and ">2<" in totals  # grouping follows the locale
