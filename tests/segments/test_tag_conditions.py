"""The `tags` condition against hand-computed fixtures: by tag and by whole tag group."""

from datetime import UTC, datetime

import pytest

from contacts.models import Contact, ContactTag, Tag, TagGroup
from segments.rules import compile_tree

NOW = datetime(2025, 6, 15, 4, 0, tzinfo=UTC)


@pytest.fixture
def tags(db):
    taste = TagGroup.objects.create(name="口味偏好")
    stage = TagGroup.objects.create(name="阶段")
    TagGroup.objects.create(name="空组")  # a group with no tags
    return {
        "spicy": Tag.objects.create(group=taste, name="辣"),
        "sweet": Tag.objects.create(group=taste, name="甜"),
        "vip": Tag.objects.create(group=stage, name="VIP"),
    }


@pytest.fixture
def tagged(tags):
    for name, tag_names in [
        ("none", []),
        ("spicy", ["spicy"]),
        ("both", ["spicy", "sweet"]),
        ("vip", ["vip"]),
    ]:
        contact = Contact.objects.create(name=name)
        ContactTag.objects.bulk_create(ContactTag(contact=contact, tag=tags[t]) for t in tag_names)


def matching(node) -> set[str]:
    q = compile_tree({"type": "group", "match": "all", "children": [node]}, now=NOW)
    return set(Contact.objects.filter(q).values_list("name", flat=True))


def by_tags(op, *tags):
    return {"type": "tags", "op": op, "tags": [tag.pk for tag in tags]}


def by_group(op, name):
    return {"type": "tags", "op": op, "group": TagGroup.objects.get(name=name).pk}


def test_by_tag(tags, tagged):
    spicy, sweet, vip = tags["spicy"], tags["sweet"], tags["vip"]
    assert matching(by_tags("has_any", spicy, vip)) == {"spicy", "both", "vip"}
    assert matching(by_tags("has_all", spicy, sweet)) == {"both"}
    assert matching(by_tags("has_all", spicy)) == {"spicy", "both"}
    assert matching(by_tags("has_none", spicy, vip)) == {"none"}


def test_by_group(tags, tagged):
    assert matching(by_group("has_any", "口味偏好")) == {"spicy", "both"}
    assert matching(by_group("has_all", "口味偏好")) == {"both"}
    assert matching(by_group("has_none", "口味偏好")) == {"none", "vip"}


def test_a_tag_added_to_the_group_later_counts_without_resaving(tags, tagged):
    rule = by_group("has_all", "口味偏好")
    Tag.objects.create(group=tags["spicy"].group, name="咸")
    assert matching(rule) == set()


def test_an_empty_group(tags, tagged):
    # Nobody has a tag of a group with no tags; everybody has "all" of them.
    assert matching(by_group("has_any", "空组")) == set()
    assert matching(by_group("has_all", "空组")) == {"none", "spicy", "both", "vip"}
    assert matching(by_group("has_none", "空组")) == {"none", "spicy", "both", "vip"}


def test_tags_compile_to_exists_not_to_lists_of_contacts(tags, tagged):
    q = compile_tree(
        {"type": "group", "match": "all", "children": [by_tags("has_any", tags["spicy"])]}, now=NOW
    )
    sql = str(Contact.objects.filter(q).query)
    assert "EXISTS" in sql and "contacts_contacttag" in sql
