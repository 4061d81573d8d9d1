import pytest

from contacts.models import AuditEntry, ContactTag, Tag, TagGroup, Tier

PAGES = ["/contacts/settings/taxonomy/", "/contacts/settings/tag-groups/new/", "/contacts/settings/tags/new/",
         "/contacts/settings/tiers/new/"]  # fmt: skip


@pytest.mark.parametrize("url", PAGES)
@pytest.mark.parametrize("role,status", [("operator", 404), ("other", 404), ("manager", 404), ("admin", 200)])
def test_settings_pages_are_for_admins(role_client, url, role, status):
    assert role_client(role).get(url).status_code == status


def test_anonymous_redirected(client, db):
    assert client.get(PAGES[0]).status_code == 302


def test_admin_manages_groups_tags_tiers_with_audit(role_client, contact):
    c = role_client("admin")
    assert c.post("/contacts/settings/tag-groups/new/", {"name": "兴趣", "position": 1}).status_code == 302
    group = TagGroup.objects.get(name="兴趣")
    assert (
        c.post(
            "/contacts/settings/tags/new/", {"group": group.pk, "name": "健身", "colour": "#123456"}
        ).status_code
        == 302
    )
    tag = Tag.objects.get(name="健身")
    assert (
        c.post("/contacts/settings/tiers/new/", {"name": "钻石", "rank": 4, "colour": "#000000"}).status_code
        == 302
    )
    assert {e.action for e in AuditEntry.objects.all()} == {"taggroup.created", "tag.created", "tier.created"}
    # A group with tags cannot be deleted; deleting the tag removes it from contacts.
    ContactTag.objects.create(contact=contact, tag=tag)
    c.post(f"/contacts/settings/tag-group/{group.pk}/delete/")
    assert TagGroup.objects.filter(pk=group.pk).exists()
    c.post(f"/contacts/settings/tag/{tag.pk}/delete/")
    assert not contact.tags.exists()
    c.post(f"/contacts/settings/tag-group/{group.pk}/delete/")
    assert not TagGroup.objects.filter(pk=group.pk).exists()


@pytest.mark.parametrize(
    "url,data,field",
    [("/contacts/settings/tiers/new/", {"name": "金卡", "rank": 9, "colour": "#ffffff"}, "name"),
     ("/contacts/settings/tiers/new/", {"name": "新", "rank": 3, "colour": "#ffffff"}, "rank"),
     ("/contacts/settings/tiers/new/", {"name": "新", "rank": 5, "colour": "red"}, "colour"),
     ("/contacts/settings/tags/new/", {"name": "辣", "colour": "#ffffff"}, "__all__")],
)  # fmt: skip
def test_taxonomy_bad_input(role_client, tier, tag, url, data, field):
    if "tags" in url:
        data["group"] = tag.group_id
    before = (Tier.objects.count(), Tag.objects.count())
    response = role_client("admin").post(url, data)
    assert response.status_code == 422 and field in response.context["form"].errors
    assert (Tier.objects.count(), Tag.objects.count()) == before


def test_unknown_kind_delete_is_404(role_client, tier):
    assert role_client("admin").post(f"/contacts/settings/planet/{tier.pk}/delete/").status_code == 404
