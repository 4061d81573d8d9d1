"""describe_tree: the rule in words, in the active language."""

import pytest
from django.utils import translation

from contacts.models import CustomField, CustomFieldKind, Tag, Tier
from segments.rules import RuleError, describe_tree


def group(*children, match="all"):
    return {"type": "group", "match": match, "children": list(children)}


def in_english(tree) -> str:
    with translation.override("en"):
        return describe_tree(tree)


@pytest.fixture
def issue_rule(tier, tag):
    """The issue's example: 金卡及以上 AND 口味偏好=辣 AND 30 天未互动 AND 近 90 天消费 ≥ 200 元."""
    return group(
        {"type": "tier", "op": "in", "tiers": [tier.pk]},
        {"type": "tags", "op": "has_any", "tags": [tag.pk]},
        {"type": "field", "field": "last_active_at", "op": "more_than_days_ago", "value": 30},
        {"type": "events", "kind": "purchase", "measure": "sum", "op": "gte", "value": "200", "days": 90},
    )


def test_the_issue_rule_in_english(issue_rule):
    assert in_english(issue_rule) == (
        "all of: tier is 金卡; has any of tags 辣; last active at is more than 30 days ago, or never; "
        "amount of “Purchase” events in the last 90 days ≥ 200"
    )


def test_in_chinese_it_is_text(issue_rule):
    # The zh_Hans catalogue gets these strings when the lead updates it; names stay as stored.
    with translation.override("zh-hans"):
        described = describe_tree(issue_rule)
    assert isinstance(described, str) and "金卡" in described and "辣" in described


def test_groups_nest_in_brackets(db, tier):
    tree = group(
        {"type": "field", "field": "opted_out", "op": "is_false"},
        group(
            {"type": "owner", "op": "is_empty"},
            group({"type": "tier_rank", "min": 3, "max": None}, match="none"),
            match="any",
        ),
        match="none",
    )
    assert in_english(tree) == (
        "none of: do not disturb (免打扰): no; any of (unassigned (公海); none of (tier rank is at least 3))"
    )


@pytest.mark.parametrize(
    ("node", "words"),
    [
        ({"type": "field", "field": "city", "op": "not_contains", "value": "海"}, "city does not contain “海”"),
        ({"type": "field", "field": "email", "op": "is_empty"}, "email is empty"),
        ({"type": "field", "field": "gender", "op": "in", "value": ["female", "male"]}, "gender is one of Female, Male"),
        ({"type": "field", "field": "source", "op": "not_in", "value": ["store"]}, "source channel is none of Store (门店)"),
        ({"type": "field", "field": "total_spent", "op": "between", "value": ["100", "199.99"]},
         "total spent is between 100 and 199.99"),
        ({"type": "field", "field": "order_count", "op": "lt", "value": "2"}, "orders < 2"),
        ({"type": "field", "field": "joined_at", "op": "within_last_days", "value": 1}, "joined at is within the last 1 day"),
        ({"type": "field", "field": "birthday", "op": "before", "value": "1990-01-01"}, "birthday is before 1990-01-01"),
        ({"type": "tier_rank", "min": 2, "max": 4}, "tier rank is between 2 and 4"),
        ({"type": "tier_rank", "min": None, "max": 4}, "tier rank is at most 4"),
        ({"type": "tier", "op": "is_empty"}, "has no tier"),
        ({"type": "owner", "op": "is_not_empty"}, "has an owner"),
        ({"type": "events", "kind": "purchase", "measure": "count", "op": "lt", "value": "1", "days": 30},
         "number of “Purchase” events in the last 30 days < 1"),
        ({"type": "birthday_within", "days": 0}, "birthday is today"),
        ({"type": "birthday_within", "days": 7, "tz": "Europe/Paris"}, "birthday is within the next 7 days (Europe/Paris time)"),
    ],
)  # fmt: skip
def test_each_condition_in_words(db, node, words):
    assert in_english(group(node)) == f"all of: {words}"


def test_people_and_tag_groups_by_name(db, tag, operator, manager):
    tree = group(
        {"type": "owner", "op": "in", "users": [operator.pk, manager.pk]},
        {"type": "team", "manager": manager.pk},
        {"type": "tags", "op": "has_none", "group": tag.group_id},
    )
    assert in_english(tree) == (
        "all of: owner is 李运营, 王经理; owned by the team of 王经理; has no tag in the group 口味偏好"
    )


def test_custom_fields_by_label_in_the_active_language(db):
    CustomField.objects.create(
        key="taste", label_zh="口味", label_en="Taste", kind=CustomFieldKind.CHOICE, choices=["辣"]
    )
    tree = group({"type": "field", "field": "cf:taste", "op": "in", "value": ["辣"]})
    assert in_english(tree) == "all of: Taste is one of 辣"
    with translation.override("zh-hans"):
        assert "口味" in describe_tree(tree)


def test_a_broken_rule_can_still_be_read(db, tag, tier):
    tree = group(
        {"type": "tags", "op": "has_all", "tags": [tag.pk]}, {"type": "tier", "op": "in", "tiers": [tier.pk]}
    )
    tag_id, tier_id = tag.pk, tier.pk
    Tag.objects.filter(pk=tag_id).delete()
    Tier.objects.filter(pk=tier_id).delete()
    assert in_english(tree) == f"all of: has all of tags #{tag_id} (deleted); tier is #{tier_id} (deleted)"


def test_a_deleted_custom_field_is_named_by_its_key(db):
    tree = group({"type": "field", "field": "cf:gone", "op": "equals", "value": "x"})
    assert in_english(tree) == "all of: cf:gone is x"


def test_garbage_is_a_rule_error(db):
    for tree in (None, [], group({"type": "horoscope"}), group(["x"])):
        with pytest.raises(RuleError):
            describe_tree(tree)
