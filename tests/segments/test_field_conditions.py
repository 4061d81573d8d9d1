"""The `field` condition against hand-computed fixtures: text, choice, number, date, datetime, boolean
and custom fields, including no value, empty strings and boundaries."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from contacts.models import Contact, CustomField, CustomFieldKind, Gender, Source
from segments.rules import compile_tree, field_choices

NOW = datetime(2025, 6, 15, 4, 0, tzinfo=UTC)  # 12:00 on 15 June in Asia/Shanghai
UTC = UTC


def matching(name, op, value=None, *, now=NOW) -> set[str]:
    """Names of the contacts matching one field condition."""
    node = {"type": "field", "field": name, "op": op} | ({} if value is None else {"value": value})
    q = compile_tree({"type": "group", "match": "all", "children": [node]}, now=now)
    return set(Contact.objects.filter(q).values_list("name", flat=True))


def make(name, **fields):
    if fields.get("opted_out"):
        fields["opted_out_at"] = NOW
    return Contact.objects.create(name=name, **fields)


# --- text ------------------------------------------------------------------------------------------


@pytest.fixture
def people(db):
    make("Ann Lee", city="上海", email="ann@example.com")
    make("ann", city="", email="ANN@EXAMPLE.COM")
    make("Bob", city="上海市", email="")
    make("张三", city="北京")


def test_equals_is_exact_and_contains_ignores_case(people):
    assert matching("name", "equals", "ann") == {"ann"}
    assert matching("name", "equals", "  ann ") == {"ann"}  # the value is trimmed when cleaned
    assert matching("name", "not_equals", "ann") == {"Ann Lee", "Bob", "张三"}
    assert matching("name", "contains", "ANN") == {"Ann Lee", "ann"}
    assert matching("name", "not_contains", "ann") == {"Bob", "张三"}
    assert matching("name", "starts_with", "an") == {"Ann Lee", "ann"}
    assert matching("email", "contains", "Example") == {"Ann Lee", "ann"}


def test_text_with_chinese_and_like_wildcards(people):
    assert matching("city", "starts_with", "上海") == {"Ann Lee", "Bob"}
    assert matching("city", "equals", "上海") == {"Ann Lee"}
    assert matching("city", "contains", "%") == set()  # a wildcard is a literal character
    assert matching("name", "contains", "_") == set()


def test_empty_text(people):
    assert matching("city", "is_empty") == {"ann"}
    assert matching("city", "is_not_empty") == {"Ann Lee", "Bob", "张三"}
    assert matching("email", "is_empty") == {"Bob", "张三"}


# --- choice and boolean ----------------------------------------------------------------------------


def test_choices(db):
    make("f", gender=Gender.FEMALE, source=Source.STORE)
    make("m", gender=Gender.MALE, source=Source.FRIEND)
    make("u", gender=Gender.UNKNOWN, source=Source.STORE)
    assert matching("gender", "in", ["female", "male"]) == {"f", "m"}
    assert matching("gender", "not_in", ["female", "male"]) == {"u"}
    assert matching("source", "in", ["store"]) == {"f", "u"}
    assert matching("source", "not_in", ["store"]) == {"m"}


def test_boolean(db):
    make("quiet", opted_out=True)
    make("open")
    assert matching("opted_out", "is_true") == {"quiet"}
    assert matching("opted_out", "is_false") == {"open"}


# --- numbers ---------------------------------------------------------------------------------------


@pytest.fixture
def spenders(db):
    for name, spent, orders in [("a", "199.99", 0), ("b", "200.00", 1), ("c", "200.01", 2), ("d", "0", 5)]:
        make(name, total_spent=Decimal(spent), order_count=orders)


def test_money_boundaries(spenders):
    assert matching("total_spent", "gte", "200") == {"b", "c"}
    assert matching("total_spent", "gt", "200.00") == {"c"}
    assert matching("total_spent", "lt", "200") == {"a", "d"}
    assert matching("total_spent", "lte", "199.99") == {"a", "d"}
    assert matching("total_spent", "eq", "200.0") == {"b"}
    assert matching("total_spent", "ne", "200") == {"a", "c", "d"}
    assert matching("total_spent", "between", ["199.99", "200"]) == {"a", "b"}
    assert matching("total_spent", "between", ["0.01", "0.01"]) == set()


def test_whole_numbers(spenders):
    assert matching("order_count", "gt", "1") == {"c", "d"}
    assert matching("order_count", "eq", 0) == {"a"}
    assert matching("order_count", "between", ["1", "2"]) == {"b", "c"}
    assert matching("order_count", "lt", "-1") == set()


# --- datetimes -------------------------------------------------------------------------------------


@pytest.fixture
def activity(db):
    make("never", last_active_at=None)
    make("29d23h", last_active_at=NOW - timedelta(days=29, hours=23))
    make("30d", last_active_at=NOW - timedelta(days=30))
    make("30d+1s", last_active_at=NOW - timedelta(days=30, seconds=1))
    make("future", last_active_at=NOW + timedelta(hours=1))
    # 23:59:59 on 31 May and 00:00 on 1 June in Shanghai (UTC+8)
    make("may31-late", last_active_at=datetime(2025, 5, 31, 15, 59, 59, tzinfo=UTC))
    make("jun1-midnight", last_active_at=datetime(2025, 5, 31, 16, 0, tzinfo=UTC))


def test_within_and_more_than_days(activity):
    assert matching("last_active_at", "within_last_days", 30) == {
        "29d23h",
        "30d",
        "may31-late",
        "jun1-midnight",
    }
    # "30 天未互动" includes contacts never active.
    assert matching("last_active_at", "more_than_days_ago", 30) == {"never", "30d+1s"}
    assert matching("last_active_at", "more_than_days_ago", 0) == {
        "never", "29d23h", "30d", "30d+1s", "may31-late", "jun1-midnight"
    }  # fmt: skip


def test_absolute_days_are_shanghai_calendar_days(activity):
    before_june = {"never", "29d23h", "30d", "30d+1s", "may31-late"}
    assert matching("last_active_at", "before", "2025-06-01") == before_june
    assert matching("last_active_at", "after", "2025-05-31") == {"jun1-midnight", "future"}
    assert matching("last_active_at", "between", ["2025-05-31", "2025-05-31"]) == {"may31-late"}
    assert matching("last_active_at", "between", ["2025-06-01", "2025-06-15"]) == {"jun1-midnight", "future"}


def test_no_activity(activity):
    assert matching("last_active_at", "is_empty") == {"never"}
    assert "never" not in matching("last_active_at", "is_not_empty")


def test_never_counts_as_long_ago_only_for_recency_fields(db):
    make(
        "bought-long-ago",
        first_purchase_at=NOW - timedelta(days=100),
        last_purchase_at=NOW - timedelta(days=100),
    )
    make("never-bought")
    assert matching("last_purchase_at", "more_than_days_ago", 90) == {"bought-long-ago", "never-bought"}
    assert matching("last_purchase_at", "before", "2025-06-01") == {"bought-long-ago", "never-bought"}
    assert matching("first_purchase_at", "more_than_days_ago", 90) == {"bought-long-ago"}
    assert matching("first_purchase_at", "before", "2025-06-01") == {"bought-long-ago"}
    assert matching("last_purchase_at", "within_last_days", 365) == {"bought-long-ago"}


def test_joined_at(db):
    make("new", joined_at=NOW - timedelta(days=2))
    make("old", joined_at=NOW - timedelta(days=400))
    assert matching("joined_at", "within_last_days", 7) == {"new"}
    assert matching("joined_at", "more_than_days_ago", 365) == {"old"}


# --- dates -----------------------------------------------------------------------------------------


@pytest.fixture
def birthdays(db):
    make("none")
    make("today", birthday=date(1990, 6, 15))  # today in Shanghai at NOW
    make("yesterday", birthday=date(1990, 6, 14))
    make("old", birthday=date(1950, 1, 1))


def test_dates(birthdays):
    assert matching("birthday", "before", "1990-06-15") == {"yesterday", "old"}
    assert matching("birthday", "after", "1990-06-14") == {"today"}
    assert matching("birthday", "between", ["1990-06-14", "1990-06-15"]) == {"today", "yesterday"}
    assert matching("birthday", "is_empty") == {"none"}
    assert matching("birthday", "is_not_empty") == {"today", "yesterday", "old"}
    assert matching("birthday", "more_than_days_ago", 365 * 60) == {"old"}  # older than about 60 years


def test_relative_dates_use_the_shanghai_day(db):
    make("d0", birthday=date(2025, 6, 15))
    make("d1", birthday=date(2025, 6, 14))
    make("d2", birthday=date(2025, 6, 13))
    late_evening_utc = datetime(2025, 6, 14, 17, 0, tzinfo=UTC)  # already 15 June 01:00 in Shanghai
    assert matching("birthday", "within_last_days", 1, now=late_evening_utc) == {"d0", "d1"}
    assert matching("birthday", "more_than_days_ago", 1, now=late_evening_utc) == {"d2"}
    assert matching("birthday", "within_last_days", 0, now=late_evening_utc) == {"d0"}


# --- custom fields ---------------------------------------------------------------------------------


@pytest.fixture
def custom(db):
    specs = [
        ("nickname", CustomFieldKind.TEXT, []),
        ("score", CustomFieldKind.NUMBER, []),
        ("anniversary", CustomFieldKind.DATE, []),
        ("taste", CustomFieldKind.CHOICE, ["辣", "甜", "咸"]),
        ("hobbies", CustomFieldKind.MULTI_CHOICE, ["美妆", "健身", "旅行"]),
    ]
    for key, kind, choices in specs:
        CustomField.objects.create(key=key, label_zh=key, label_en=key, kind=kind, choices=choices)
    make("nothing", custom_fields={})
    make("a", custom_fields={"nickname": "小张", "score": "9", "anniversary": "2024-05-01", "taste": "辣",
                             "hobbies": ["美妆", "旅行"]})  # fmt: skip
    make("b", custom_fields={"nickname": "Zed", "score": "12.5", "anniversary": "2024-12-31", "taste": "甜",
                             "hobbies": ["健身"]})  # fmt: skip
    make("c", custom_fields={"score": "-3", "hobbies": []})


def test_custom_text(custom):
    assert matching("cf:nickname", "equals", "小张") == {"a"}
    assert matching("cf:nickname", "contains", "zE") == {"b"}
    assert matching("cf:nickname", "not_equals", "小张") == {"nothing", "b", "c"}
    assert matching("cf:nickname", "not_contains", "zed") == {"nothing", "a", "c"}
    assert matching("cf:nickname", "starts_with", "小") == {"a"}
    assert matching("cf:nickname", "is_empty") == {"nothing", "c"}
    assert matching("cf:nickname", "is_not_empty") == {"a", "b"}


def test_custom_numbers_compare_as_numbers_not_text(custom):
    assert matching("cf:score", "gt", "10") == {"b"}  # as text "9" > "10"
    assert matching("cf:score", "lt", "10") == {"a", "c"}
    assert matching("cf:score", "eq", "12.50") == {"b"}
    assert matching("cf:score", "ne", "12.5") == {"nothing", "a", "c"}
    assert matching("cf:score", "between", ["-3", "9"]) == {"a", "c"}
    assert matching("cf:score", "is_empty") == {"nothing"}


def test_custom_dates(custom):
    assert matching("cf:anniversary", "before", "2024-12-31") == {"a"}
    assert matching("cf:anniversary", "after", "2024-05-01") == {"b"}
    assert matching("cf:anniversary", "between", ["2024-05-01", "2024-12-31"]) == {"a", "b"}
    assert matching("cf:anniversary", "within_last_days", 200) == {"b"}  # from 2024-11-27
    assert matching("cf:anniversary", "more_than_days_ago", 200) == {"a"}
    assert matching("cf:anniversary", "is_empty") == {"nothing", "c"}


def test_custom_single_choice(custom):
    assert matching("cf:taste", "in", ["辣", "咸"]) == {"a"}
    assert matching("cf:taste", "not_in", ["辣"]) == {"nothing", "b", "c"}
    assert matching("cf:taste", "is_empty") == {"nothing", "c"}


def test_custom_multiple_choice(custom):
    assert matching("cf:hobbies", "has_any", ["旅行", "健身"]) == {"a", "b"}
    assert matching("cf:hobbies", "has_all", ["美妆", "旅行"]) == {"a"}
    assert matching("cf:hobbies", "has_all", ["美妆", "健身"]) == set()
    assert matching("cf:hobbies", "has_none", ["美妆"]) == {"nothing", "b", "c"}
    assert matching("cf:hobbies", "is_empty") == {"nothing", "c"}  # no key, or an empty list
    assert matching("cf:hobbies", "is_not_empty") == {"a", "b"}


def test_field_choices_for_the_builder(custom):
    by_name = {f["name"]: f for f in field_choices()}
    assert by_name["last_active_at"]["operators"] == [
        "before", "after", "between", "within_last_days", "more_than_days_ago", "is_empty", "is_not_empty"
    ]  # fmt: skip
    assert by_name["gender"]["operators"] == ["in", "not_in"]  # a gender is always set
    assert by_name["opted_out"]["operators"] == ["is_true", "is_false"]
    assert by_name["cf:hobbies"]["kind"] == "multi_choice"
    assert by_name["cf:score"]["operators"][-2:] == ["is_empty", "is_not_empty"]
    CustomField.objects.filter(key="score").update(archived_at=NOW)
    assert "cf:score" not in {f["name"] for f in field_choices()}
