"""compile_tree: groups combine conditions (all / any / none, nested), the whole tree is one SQL query,
and a new condition type plugs in without touching the compiler."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from contacts.models import Contact, ContactTag, Tag, TagGroup, Tier
from segments.rules import (
    Condition,
    RuleError,
    compile_tree,
    describe_tree,
    register,
    unregister,
    validate_tree,
)

NOW = datetime(2025, 6, 15, 4, 0, tzinfo=UTC)


def group(*children, match="all"):
    return {"type": "group", "match": match, "children": list(children)}


def city(value):
    return {"type": "field", "field": "city", "op": "equals", "value": value}


def names(tree, now=NOW) -> set[str]:
    return set(Contact.objects.filter(compile_tree(tree, now=now)).values_list("name", flat=True))


@pytest.fixture
def town(db):
    for name, city_name, orders in [("a", "上海", 0), ("b", "上海", 3), ("c", "北京", 3), ("d", "", 1)]:
        Contact.objects.create(name=name, city=city_name, order_count=orders)


def test_all_any_none(town):
    many_orders = {"type": "field", "field": "order_count", "op": "gte", "value": "3"}
    assert names(group(city("上海"), many_orders)) == {"b"}
    assert names(group(city("上海"), many_orders, match="any")) == {"a", "b", "c"}
    assert names(group(city("上海"), many_orders, match="none")) == {"d"}


def test_nested_groups(town):
    some_orders = {"type": "field", "field": "order_count", "op": "gte", "value": "1"}
    tree = group(some_orders, group(city("上海"), group(city("北京"), match="none"), match="any"))
    # orders >= 1 and (上海 or not 北京)
    assert names(tree) == {"b", "d"}
    assert names(group(group(group(city("北京")), match="none"), match="none")) == {"c"}


def test_none_of_is_the_exact_complement_with_missing_values(db):
    Contact.objects.create(name="never active")
    Contact.objects.create(name="recent", last_active_at=NOW - timedelta(days=1))
    Contact.objects.create(name="long ago", last_active_at=NOW - timedelta(days=100))
    for op in ("within_last_days", "more_than_days_ago"):
        condition = {"type": "field", "field": "last_active_at", "op": op, "value": 30}
        positive, negative = names(group(condition)), names(group(condition, match="none"))
        assert positive | negative == {"never active", "recent", "long ago"} and not positive & negative


def test_the_whole_tree_is_one_query(db, tag, tier, manager):
    tree = group(
        {"type": "tier_rank", "min": 1},
        {"type": "tags", "op": "has_any", "tags": [tag.pk]},
        group(
            {"type": "team", "manager": manager.pk},
            {"type": "events", "kind": "purchase", "measure": "count", "op": "gte", "value": "3", "days": 90},
            {"type": "birthday_within", "days": 7},
            match="any",
        ),
    )
    q = compile_tree(tree, now=NOW)
    with CaptureQueriesContext(connection) as queries:
        list(Contact.objects.filter(q))
    assert len(queries) == 1


def test_a_team_stays_in_sql_and_a_rank_range_becomes_tier_ids(db, tier, manager):
    q = compile_tree(group({"type": "tier_rank", "min": 1}, {"type": "team", "manager": manager.pk}), now=NOW)
    sql = str(Contact.objects.filter(q).query)
    assert '"owner_id" IN (SELECT' in sql
    assert f'"tier_id" IN ({tier.pk})' in sql  # ids in the statement: the (tier, id) index can serve it


def test_a_re_ranked_tier_counts_at_the_next_compile(db):
    silver = Tier.objects.create(name="银卡", rank=2)
    Contact.objects.create(name="银卡客户", tier=silver)
    rule = group({"type": "tier_rank", "min": 3})
    assert not Contact.objects.filter(compile_tree(rule, now=NOW)).exists()
    Tier.objects.filter(pk=silver.pk).update(rank=3)
    assert list(Contact.objects.filter(compile_tree(rule, now=NOW)).values_list("name", flat=True)) == [
        "银卡客户"
    ]
    Tier.objects.filter(pk=silver.pk).update(
        rank=1
    )  # no tier in range: matches nobody, and "none of" everybody
    assert not Contact.objects.filter(compile_tree(rule, now=NOW)).exists()
    none_of = {"type": "group", "match": "none", "children": [{"type": "tier_rank", "min": 3}]}
    assert Contact.objects.filter(compile_tree(none_of, now=NOW)).count() == 1


def test_four_condition_rule_sql(db, capsys):
    """The issue's benchmark rule (tier, tag, no tag, inactivity) — printed for the report."""
    gold = Tier.objects.create(name="金卡", rank=3)
    taste = TagGroup.objects.create(name="口味偏好")
    spicy, sweet = (Tag.objects.create(group=taste, name=n) for n in ("辣", "甜"))
    tree = group(
        {"type": "tier_rank", "min": gold.rank},
        {"type": "tags", "op": "has_any", "tags": [spicy.pk]},
        {"type": "tags", "op": "has_none", "tags": [sweet.pk]},
        {"type": "field", "field": "last_active_at", "op": "more_than_days_ago", "value": 30},
    )
    match = Contact.objects.create(name="match", tier=gold)
    ContactTag.objects.create(contact=match, tag=spicy)
    ContactTag.objects.create(contact=Contact.objects.create(name="sweet", tier=gold), tag=sweet)
    qs = Contact.objects.filter(compile_tree(tree, now=NOW)).only("id")
    with capsys.disabled():
        print(f"\n[{connection.vendor}] {qs.query}")
    assert set(qs.values_list("name", flat=True)) == {"match"}


def test_now_must_be_aware(db):
    with pytest.raises(ValueError):
        compile_tree(group(city("上海")), now=datetime(2025, 6, 15))


def test_an_invalid_tree_does_not_compile(db):
    with pytest.raises(RuleError):
        compile_tree(group())


class Initial(Condition):
    """A throwaway type: the name starts with a letter."""

    type = "initial"
    label = "Initial"

    def validate(self, node):
        letter = node.get("letter")
        if not isinstance(letter, str) or len(letter) != 1:
            raise RuleError("Enter one letter.", "letter")
        return {"type": self.type, "letter": letter}

    def to_q(self, node, *, now, among=None):
        return Q(name__startswith=node["letter"])

    def describe(self, node):
        return f"name starts with {node['letter']}"


@pytest.fixture
def initial_type():
    register(Initial)
    yield
    unregister("initial")


def test_a_new_condition_type_plugs_in(town, initial_type):
    tree = group({"type": "initial", "letter": "b"}, city("北京"), match="any")
    assert validate_tree(tree) == tree
    assert names(tree) == {"b", "c"}
    with translation.override("en"):
        assert describe_tree(tree) == "any of: name starts with b; city is “北京”"
    assert validate_tree.__module__ == "segments.rules.tree"
    with pytest.raises(RuleError) as caught:
        validate_tree(group({"type": "initial", "letter": "bb"}))
    assert caught.value.path == "children.0.letter"


def test_registering_is_checked(initial_type):
    class Again(Initial):
        pass

    with pytest.raises(ValueError):
        register(Again)

    class Group(Initial):
        type = "group"

    with pytest.raises(ValueError):
        register(Group)
