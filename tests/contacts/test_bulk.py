from contacts.models import AuditEntry, Contact, ContactTag


def _bulk(client, **data):
    return client.post("/contacts/bulk/", {"next": "/contacts/?q=x", **data})


def test_operator_bulk_tags_and_tiers_own_contacts(role_client, operator, tag, tier):
    mine = [Contact.objects.create(name=f"客{i}", owner=operator) for i in range(3)]
    ContactTag.objects.create(contact=mine[0], tag=tag)
    c = role_client("operator")
    response = _bulk(c, action="add_tag", tag=tag.pk, ids=[m.pk for m in mine])
    assert response.status_code == 302 and response["Location"] == "/contacts/?q=x"
    assert ContactTag.objects.filter(tag=tag).count() == 3
    assert (
        AuditEntry.objects.filter(action="contact.tag_added").count() == 2
    )  # the one that had it is unchanged
    _bulk(c, action="set_tier", tier=tier.pk, ids=[m.pk for m in mine])
    assert Contact.objects.filter(tier=tier).count() == 3
    _bulk(c, action="remove_tag", tag=tag.pk, ids=[mine[1].pk])
    assert ContactTag.objects.filter(tag=tag).count() == 2


def test_bulk_naming_an_invisible_contact_changes_none(role_client, contact, other_contact, tag):
    response = _bulk(
        role_client("operator"), action="add_tag", tag=tag.pk, ids=[contact.pk, other_contact.pk]
    )
    assert response.status_code == 302
    assert not ContactTag.objects.exists() and not AuditEntry.objects.exists()


def test_bulk_with_nonexistent_id_changes_none(role_client, contact, tier):
    _bulk(role_client("admin"), action="set_tier", tier=tier.pk, ids=[contact.pk, 987654])
    contact.refresh_from_db()
    assert contact.tier is None


def test_manager_bulk_assigns_owner_operator_cannot(
    role_client, contact, other_contact, other_operator, operator
):
    _bulk(role_client("operator"), action="assign_owner", owner=other_operator.pk, ids=[contact.pk])
    contact.refresh_from_db()
    assert contact.owner == operator
    _bulk(
        role_client("manager"),
        action="assign_owner",
        owner=other_operator.pk,
        ids=[contact.pk, other_contact.pk],
    )
    contact.refresh_from_db()
    assert contact.owner == other_operator
    assert (
        AuditEntry.objects.filter(action="contact.updated", contact=contact).count() == 1
    )  # other_contact unchanged


def test_manager_cannot_assign_to_someone_outside_the_team(role_client, contact, django_user_model):
    stranger = django_user_model.objects.create_user("stranger")
    _bulk(role_client("manager"), action="assign_owner", owner=stranger.pk, ids=[contact.pk])
    contact.refresh_from_db()
    assert contact.owner.username == "operator"


def test_bulk_bad_input(role_client, contact, tag):
    c = role_client("operator")
    for data in ({"action": "add_tag", "ids": [contact.pk]}, {"action": "explode", "ids": [contact.pk]},
                 {"action": "add_tag", "tag": tag.pk}, {"action": "set_tier", "tier": "abc", "ids": [contact.pk]},
                 {"action": "add_tag", "tag": tag.pk, "ids": ["x"]},
                 {"action": "add_tag", "tag": tag.pk, "ids": ["9" * 20]}):  # fmt: skip
        response = _bulk(c, **data)
        assert response.status_code == 302
    assert not ContactTag.objects.exists()


def test_bulk_anonymous_and_get(client, role_client, contact):
    assert client.post("/contacts/bulk/", {}).status_code == 302
    assert role_client("admin").get("/contacts/bulk/").status_code == 405


def test_bulk_rejects_offsite_next(role_client, contact, tag):
    response = role_client("operator").post(
        "/contacts/bulk/",
        {"next": "https://evil.example/", "action": "add_tag", "tag": tag.pk, "ids": [contact.pk]},
    )
    assert response["Location"] == "/contacts/"
