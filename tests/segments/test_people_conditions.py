"""`tier`, `tier_rank`, `owner` and `team` against hand-computed fixtures."""

from datetime import UTC, datetime

import pytest

from contacts.models import Contact, Tier
from segments.rules import compile_tree

NOW = datetime(2025, 6, 15, 4, 0, tzinfo=UTC)


def matching(node) -> set[str]:
    q = compile_tree({"type": "group", "match": "all", "children": [node]}, now=NOW)
    return set(Contact.objects.filter(q).values_list("name", flat=True))


@pytest.fixture
def tiers(db):
    return {
        name: Tier.objects.create(name=name, rank=rank)
        for name, rank in [("银卡", 1), ("金卡", 3), ("钻石", 5)]
    }


@pytest.fixture
def tiered(tiers):
    Contact.objects.create(name="no tier")
    for name, tier in tiers.items():
        Contact.objects.create(name=name, tier=tier)


def test_tier(tiers, tiered):
    gold, diamond = tiers["金卡"].pk, tiers["钻石"].pk
    assert matching({"type": "tier", "op": "in", "tiers": [gold, diamond]}) == {"金卡", "钻石"}
    assert matching({"type": "tier", "op": "not_in", "tiers": [gold]}) == {"no tier", "银卡", "钻石"}
    assert matching({"type": "tier", "op": "is_empty"}) == {"no tier"}
    assert matching({"type": "tier", "op": "is_not_empty"}) == {"银卡", "金卡", "钻石"}


def test_tier_rank(tiers, tiered):
    assert matching({"type": "tier_rank", "min": 3}) == {"金卡", "钻石"}  # 金卡及以上
    assert matching({"type": "tier_rank", "max": 3}) == {"银卡", "金卡"}
    assert matching({"type": "tier_rank", "min": 2, "max": 4}) == {"金卡"}
    assert matching({"type": "tier_rank", "min": 0, "max": None}) == {"银卡", "金卡", "钻石"}
    assert matching({"type": "tier_rank", "min": 6}) == set()


def test_tier_rank_follows_a_re_ranked_tier(tiers, tiered):
    rule = {"type": "tier_rank", "min": 3}
    Tier.objects.filter(pk=tiers["银卡"].pk).update(rank=4)
    assert matching(rule) == {"银卡", "金卡", "钻石"}


@pytest.fixture
def owned(db, operator, other_operator, manager, admin_user):
    Contact.objects.create(name="pool")
    for user in (operator, other_operator, manager, admin_user):
        Contact.objects.create(name=user.username, owner=user)


def test_owner(owned, operator, other_operator):
    assert matching({"type": "owner", "op": "in", "users": [operator.pk, other_operator.pk]}) == {
        "operator",
        "other",
    }
    assert matching({"type": "owner", "op": "not_in", "users": [operator.pk]}) == {
        "pool",
        "other",
        "manager",
        "admin",
    }
    assert matching({"type": "owner", "op": "is_empty"}) == {"pool"}
    assert matching({"type": "owner", "op": "is_not_empty"}) == {"operator", "other", "manager", "admin"}


def test_team_is_the_manager_and_who_reports_to_them(owned, manager, admin_user, operator):
    assert matching({"type": "team", "manager": manager.pk}) == {"operator", "other", "manager"}
    assert matching({"type": "team", "manager": admin_user.pk}) == {"admin"}
    assert matching({"type": "team", "manager": operator.pk}) == {"operator"}
    rule = {"type": "group", "match": "none", "children": [{"type": "team", "manager": manager.pk}]}
    q = compile_tree(rule, now=NOW)
    assert set(Contact.objects.filter(q).values_list("name", flat=True)) == {"pool", "admin"}


def test_team_follows_an_operator_moving_teams(owned, manager, admin_user, other_operator):
    rule = {"type": "team", "manager": admin_user.pk}
    other_operator.manager = admin_user
    other_operator.save(update_fields=["manager"])
    assert matching(rule) == {"admin", "other"}
