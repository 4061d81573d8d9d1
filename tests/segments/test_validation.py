"""validate_tree: bad rules are rejected with a message and the path of the offending node; good rules
come back cleaned and round-trip exactly; no JSON input makes it fail any other way."""

import json
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contacts.models import Contact, CustomField, CustomFieldKind
from segments.rules import RuleError, compile_tree, describe_tree, validate_tree

NOW = datetime(2025, 6, 15, 4, 0, tzinfo=UTC)


def group(*children, match="all"):
    return {"type": "group", "match": match, "children": list(children)}


def city_is(value="上海"):
    return {"type": "field", "field": "city", "op": "equals", "value": value}


def error_of(tree) -> RuleError:
    with translation.override("en"), pytest.raises(RuleError) as caught:
        validate_tree(tree)
    return caught.value


@pytest.fixture
def taste(db):
    return CustomField.objects.create(
        key="taste", label_zh="口味", label_en="Taste", kind=CustomFieldKind.CHOICE, choices=["辣", "甜"]
    )


# --- structure -------------------------------------------------------------------------------------


@pytest.mark.parametrize("tree", [None, [], "group", 3, city_is(), {"type": "x"}])
def test_the_root_must_be_a_group(db, tree):
    error = error_of(tree)
    assert (error.path, error.message) == ("", "A rule must be a group of conditions.")


def test_an_empty_group_is_rejected_where_it_is(db):
    assert error_of(group()).path == ""
    error = error_of(group(city_is(), group(city_is(), group())))
    assert error.path == "children.1.children.1"
    assert error.message == "This group is empty; add a condition or remove the group."


def test_groups_nest_five_deep_and_no_deeper(db):
    five = group(group(group(group(group(city_is())))))
    assert validate_tree(five) == five
    error = error_of(group(group(group(group(group(group(city_is())))))))
    assert error.path == "children.0.children.0.children.0.children.0.children.0"
    assert error.message == "Groups nest at most 5 deep."


def test_group_keys(db):
    assert error_of({"type": "group", "match": "some", "children": [city_is()]}).path == "match"
    assert error_of({"type": "group", "match": "all", "children": city_is()}).path == "children"
    assert error_of({"type": "group", "match": "all"}).path == "children"
    assert error_of(group(city_is()) | {"note": "x"}).path == "note"
    assert error_of(group(*[city_is()] * 51)).path == "children"
    assert error_of(group(city_is(), ["not", "a", "node"])).path == "children.1"


def test_unknown_or_missing_condition_type(db):
    error = error_of(group(city_is(), {"type": "horoscope", "sign": "leo"}))
    assert (error.path, error.message) == ("children.1.type", "Unknown condition type “horoscope”.")
    assert error_of(group({"field": "city"})).path == "children.0.type"


def test_unknown_key_in_a_condition(db):
    error = error_of(group(city_is() | {"vaule": "x"}))
    assert (error.path, error.message) == ("children.0.vaule", "Unknown key “vaule”.")


def test_the_path_reaches_into_nested_groups(db):
    tree = group(
        city_is(), city_is(), group({"type": "field", "field": "order_count", "op": "gt", "value": "many"})
    )
    assert error_of(tree).path == "children.2.children.0.value"


# --- fields ----------------------------------------------------------------------------------------


def field(name, op, value=None, **extra):
    node = {"type": "field", "field": name, "op": op} | extra
    return node if value is None else node | {"value": value}


@pytest.mark.parametrize(
    ("node", "path", "message"),
    [
        (field("shoe_size", "eq", "42"), "field", "Unknown field “shoe_size”."),
        (field("cf:nothing", "equals", "x"), "field", "Unknown field “cf:nothing”."),
        (field("cf:bad key!", "equals", "x"), "field", "Unknown field “cf:bad key!”."),
        (field(["city"], "equals", "x"), "field", "Unknown field “['city']”."),
        (field("order_count", "contains", "3"), "op", None),
        (field("gender", "is_empty"), "op", None),  # gender always has a value
        (field("city", "equals"), "value", "This value is required."),
        (field("city", "equals", 5), "value", "Enter text."),
        (field("city", "equals", "   "), "value", "Enter a value."),
        (field("city", "equals", "a\x00b"), "value", None),
        (field("city", "equals", "x" * 501), "value", None),
        (field("city", "is_empty", "x"), "value", "This operator takes no value."),
        (
            field("order_count", "gt", 2.5),
            "value",
            "Enter the number as text, e.g. “12.50”, so it stays exact.",
        ),
        (field("order_count", "gt", "2.5"), "value", None),  # orders are whole
        (field("order_count", "gt", True), "value", None),
        (field("total_spent", "gte", "199.999"), "value", None),  # money has two places
        (field("total_spent", "gte", "1e3"), "value", None),
        (field("total_spent", "between", ["300"]), "value", "Enter two values: from and to."),
        (field("total_spent", "between", ["300", "200"]), "value", None),
        (field("total_spent", "between", ["300", "abc"]), "value.1", None),
        (field("gender", "in", []), "value", "Choose at least one."),
        (field("gender", "in", "female"), "value", "Choose at least one."),
        (field("gender", "in", ["female", "alien"]), "value.1", None),
        (field("birthday", "before", "2024-02-30"), "value", None),
        (field("birthday", "before", "2024/02/01"), "value", None),
        (field("birthday", "before", "0001-01-01"), "value", None),
        (field("joined_at", "between", ["2025-02-01", "2025-01-01"]), "value", None),
        (field("last_active_at", "within_last_days", -1), "value", None),
        (field("last_active_at", "within_last_days", 36501), "value", None),
        (field("last_active_at", "within_last_days", "30 days"), "value", "Enter a whole number."),
        (field("opted_out", "equals", "yes"), "op", None),
        (field("opted_out", "is_true", True), "value", None),
    ],
)
def test_bad_field_conditions(db, node, path, message):
    error = error_of(group(city_is(), node))
    assert error.path == f"children.1.{path}"
    if message:
        assert error.message == message


def test_an_unknown_operator_lists_the_ones_that_fit(db):
    error = error_of(group(field("order_count", "contains", "3")))
    assert (
        error.message
        == "Unknown operator “contains” for orders; use one of: eq, ne, gt, gte, lt, lte, between."
    )


def test_custom_field_options_and_archived_fields(db, taste):
    assert error_of(group(field("cf:taste", "in", ["辣", "酸"]))).path == "children.0.value.1"
    assert error_of(group(field("cf:taste", "contains", "辣"))).path == "children.0.op"
    taste.archived_at = timezone.now()
    taste.save(update_fields=["archived_at"])
    error = error_of(group(field("cf:taste", "in", ["辣"])))
    assert (error.path, error.message) == ("children.0.field", "The custom field “Taste” has been deleted.")


# --- references to rows ----------------------------------------------------------------------------


def test_a_tag_that_does_not_exist(db, tag):
    error = error_of(group(city_is(), {"type": "tags", "op": "has_any", "tags": [tag.pk, tag.pk + 100]}))
    assert (error.path, error.message) == ("children.1.tags.1", f"tag {tag.pk + 100} no longer exists")


def test_a_tag_deleted_after_saving_breaks_the_rule_instead_of_changing_it(db, tag):
    saved = validate_tree(group({"type": "tags", "op": "has_all", "tags": [tag.pk]}))
    tag_id = tag.pk
    tag.delete()
    with translation.override("en"), pytest.raises(RuleError) as caught:
        compile_tree(saved, now=NOW)
    assert (caught.value.path, caught.value.message) == (
        "children.0.tags.0",
        f"tag {tag_id} no longer exists",
    )


@pytest.mark.parametrize(
    ("node", "path"),
    [
        ({"type": "tags", "op": "has_any", "tags": []}, "tags"),
        ({"type": "tags", "op": "has_any", "tags": [True]}, "tags.0"),
        ({"type": "tags", "op": "has_any", "tags": [2**70]}, "tags.0"),
        ({"type": "tags", "op": "has_any", "tags": [0]}, "tags.0"),
        ({"type": "tags", "op": "has_any", "group": 999}, "group"),
        ({"type": "tags", "op": "has_any"}, ""),
        ({"type": "tags", "op": "has_any", "tags": [1], "group": 1}, ""),
        ({"type": "tags", "op": "has_some", "tags": [1]}, "op"),
        ({"type": "tier", "op": "in", "tiers": [999]}, "tiers.0"),
        ({"type": "tier", "op": "in"}, "tiers"),
        ({"type": "tier", "op": "is_empty", "tiers": [1]}, "tiers"),
        ({"type": "tier_rank"}, ""),
        ({"type": "tier_rank", "min": 3, "max": 2}, "min"),
        ({"type": "tier_rank", "min": -1}, "min"),
        ({"type": "tier_rank", "max": "high"}, "max"),
        ({"type": "owner", "op": "in", "users": [999]}, "users.0"),
        ({"type": "owner", "op": "mine"}, "op"),
        ({"type": "team", "manager": 999}, "manager"),
        ({"type": "team"}, "manager"),
    ],
)
def test_bad_references(db, tier, tag, manager, node, path):
    assert error_of(group(node)).path == f"children.0.{path}".rstrip(".")


def test_messages_for_missing_rows(db):
    assert (
        error_of(group({"type": "tier", "op": "in", "tiers": [999]})).message == "tier 999 no longer exists"
    )
    assert (
        error_of(group({"type": "owner", "op": "in", "users": [999]})).message == "user 999 no longer exists"
    )
    assert error_of(group({"type": "team", "manager": 999})).message == "user 999 no longer exists"
    assert (
        error_of(group({"type": "tags", "op": "has_any", "group": 9})).message
        == "tag group 9 no longer exists"
    )


# --- events and birthdays --------------------------------------------------------------------------


def events(**changes):
    return {
        "type": "events",
        "kind": "purchase",
        "measure": "count",
        "op": "gte",
        "value": "3",
        "days": 90,
    } | changes


@pytest.mark.parametrize(
    ("node", "path"),
    [
        (events(kind="hug"), "kind"),
        (events(measure="avg"), "measure"),
        (events(op="ne"), "op"),
        (events(value="2.5"), "value"),  # a count is whole
        (events(value=3.0), "value"),
        (events(measure="sum", value="1.234"), "value"),
        (events(days=0), "days"),
        (events(days=3651), "days"),
        ({"type": "events", "kind": "purchase", "measure": "count", "op": "gte", "value": "3"}, "days"),
        ({"type": "birthday_within", "days": 367}, "days"),
        ({"type": "birthday_within", "days": 7, "tz": "Mars/Olympus"}, "tz"),
        ({"type": "birthday_within", "days": 7, "tz": None}, "tz"),
        ({"type": "birthday_within"}, "days"),
    ],
)
def test_bad_events_and_birthdays(db, node, path):
    assert error_of(group(node)).path == f"children.0.{path}"


# --- cleaning and round trips ----------------------------------------------------------------------


def test_values_are_cleaned_to_one_canonical_form(db, tag, tier):
    tree = group(
        field("city", "contains", "  上海 "),
        field("total_spent", "gte", 200),
        field("total_spent", "between", ["-0", "0100.50"]),
        field("order_count", "gt", " 2 "),
        field("last_active_at", "more_than_days_ago", "30"),
        {"type": "tags", "op": "has_any", "tags": [tag.pk, str(tag.pk)]},
        {"type": "tier_rank", "min": 1},
        events(value=3, days="90"),
    )
    cleaned = validate_tree(tree)
    assert [child.get("value") for child in cleaned["children"][:5]] == [
        "上海",
        "200",
        ["0", "100.50"],
        "2",
        30,
    ]
    assert cleaned["children"][5]["tags"] == [tag.pk]
    assert cleaned["children"][6] == {"type": "tier_rank", "min": 1, "max": None}
    assert cleaned["children"][7] == events()


def test_between_checks_order_after_cleaning(db):
    # As text "100.50" < "99" would pass: the order is numeric.
    assert error_of(group(field("total_spent", "between", ["100.50", "99"]))).path == "children.0.value"


def test_a_valid_tree_round_trips_exactly(db, tag, tier, manager, taste):
    tree = group(
        field("name", "starts_with", "张"),
        field("gender", "not_in", ["female", "unknown"]),
        field("birthday", "between", ["1990-01-01", "1999-12-31"]),
        field("joined_at", "within_last_days", 7),
        field("opted_out", "is_false"),
        field("cf:taste", "is_empty"),
        group(
            {"type": "tags", "op": "has_none", "group": tag.group_id},
            {"type": "tier", "op": "not_in", "tiers": [tier.pk]},
            group({"type": "owner", "op": "is_empty"}, {"type": "team", "manager": manager.pk}, match="none"),
            match="any",
        ),
        events(measure="sum", op="lt", value="200.00"),
        {"type": "birthday_within", "days": 0, "tz": "Europe/Paris"},
    )
    cleaned = validate_tree(tree)
    assert cleaned == tree
    assert json.loads(json.dumps(cleaned)) == cleaned
    assert validate_tree(cleaned) == cleaned


# --- no input breaks it ----------------------------------------------------------------------------

WORDS = st.sampled_from(
    ["group", "all", "any", "none", "field", "tags", "tier", "city", "cf:taste", "order_count", "total_spent",
     "last_active_at", "birthday", "gender", "female", "in", "equals", "gte", "between", "has_any", "is_empty",
     "within_last_days", "purchase", "count", "sum", "Asia/Shanghai", "2024-02-29", "2025-02-29", "12.5", "3",
     "辣", "", " "]
)  # fmt: skip
KEYS = st.sampled_from(
    ["type", "match", "children", "field", "op", "value", "tags", "group", "tiers", "users", "manager", "min",
     "max", "kind", "measure", "days", "tz"]
)  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.integers(min_value=-3, max_value=400)
    | st.floats()
    | st.text(max_size=12)
    | WORDS
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6) | KEYS, inner, max_size=4)
    ),
    max_leaves=12,
)


def valid_conditions(tag, tier, user) -> list[dict]:
    """One valid node of each condition type and kind of field, for near-valid inputs to grow from."""
    return [
        field("city", "contains", "上海"),
        field("name", "is_empty"),
        field("gender", "in", ["female"]),
        field("order_count", "between", ["1", "3"]),
        field("total_spent", "gte", "199.99"),
        field("birthday", "after", "1990-01-01"),
        field("last_active_at", "more_than_days_ago", 30),
        field("opted_out", "is_true"),
        field("cf:taste", "not_in", ["辣"]),
        {"type": "tags", "op": "has_all", "tags": [tag.pk]},
        {"type": "tags", "op": "has_none", "group": tag.group_id},
        {"type": "tier", "op": "in", "tiers": [tier.pk]},
        {"type": "tier_rank", "min": 1, "max": None},
        {"type": "owner", "op": "not_in", "users": [user.pk]},
        {"type": "team", "manager": user.pk},
        events(measure="sum", value="0.30"),
        {"type": "birthday_within", "days": 7, "tz": "UTC"},
    ]


def near_valid(node: dict):
    """The node as it is, with one key's value replaced by anything, with an extra key, or with a key less."""
    keys = sorted(node)
    return st.one_of(
        st.just(node),
        st.builds(lambda key, value: node | {key: value}, st.sampled_from(keys), JSONISH),
        st.builds(lambda key, value: node | {key: value}, KEYS, JSONISH),
        st.sampled_from(keys).map(lambda gone: {k: v for k, v in node.items() if k != gone}),
    )


def weighted(*choices):
    """One of the strategies, each `weight` times as likely (a plain `|` favours the first ones)."""
    return st.sampled_from([s for s, weight in choices for _ in range(weight)]).flatmap(
        lambda strategy: strategy
    )


def rule_inputs(tag, tier, user):
    leaves = weighted(
        (st.sampled_from(valid_conditions(tag, tier, user)).flatmap(near_valid), 5), (JSONISH, 1)
    )
    matches = weighted((st.sampled_from(["all", "any", "none"]), 8), (JSONISH, 1))
    groups = st.recursive(
        leaves,
        lambda inner: st.builds(
            lambda match, children: {"type": "group", "match": match, "children": children},
            matches,
            st.lists(inner, max_size=4),
        ),
        max_leaves=8,
    )
    return weighted((groups.map(lambda node: group(node)), 4), (groups, 2), (JSONISH, 1))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_json_is_accepted_or_rejected_with_a_rule_error(db, taste, tag, tier, manager, data):
    tree = data.draw(rule_inputs(tag, tier, manager), label="tree")
    try:
        cleaned = validate_tree(tree)
    except RuleError as error:
        assert isinstance(error.message, str) and isinstance(error.path, str)
        return
    # What is accepted is clean: stable, serialisable, compilable to one query, describable.
    assert validate_tree(cleaned) == cleaned
    assert json.loads(json.dumps(cleaned)) == cleaned
    q = compile_tree(cleaned, now=NOW)
    with CaptureQueriesContext(connection) as queries:
        Contact.objects.filter(q).count()
    assert len(queries) == 1
    assert isinstance(describe_tree(cleaned), str)
