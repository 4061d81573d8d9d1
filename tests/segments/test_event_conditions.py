"""The `events` condition: counts and sums of events of a kind in a window, against hand-computed
fixtures; contacts with no events count as 0."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest

from contacts.models import Contact, Event, EventKind
from segments.rules import compile_tree

NOW = datetime(2025, 6, 15, 4, 0, tzinfo=UTC)
_keys = count()


def event(contact, kind, ago, amount=None):
    Event.objects.create(
        contact=contact,
        kind=kind,
        occurred_at=NOW - ago,
        amount=None if amount is None else Decimal(amount),
        source="ui",
        idempotency_key=f"test-{next(_keys)}",
    )


def matching(measure, op, value, days=90, kind="purchase", now=NOW) -> set[str]:
    node = {"type": "events", "kind": kind, "measure": measure, "op": op, "value": value, "days": days}
    q = compile_tree({"type": "group", "match": "all", "children": [node]}, now=now)
    return set(Contact.objects.filter(q).values_list("name", flat=True))


@pytest.fixture
def buyers(db):
    never, once, thrice, old, chatty = (
        Contact.objects.create(name=n) for n in ["never", "once", "thrice", "old", "chatty"]
    )
    event(once, EventKind.PURCHASE, timedelta(days=90), "200.00")  # exactly at the window's start
    for days, amount in [(1, "0.10"), (2, "0.20"), (3, None)]:
        event(thrice, EventKind.PURCHASE, timedelta(days=days), amount)
    event(old, EventKind.PURCHASE, timedelta(days=90, seconds=1), "500.00")  # just outside
    event(old, EventKind.PURCHASE, timedelta(hours=-1), "500.00")  # in the future of `now`
    for days in range(5):
        event(chatty, EventKind.MESSAGE_IN, timedelta(days=days))
    return never


def test_counts(buyers):
    assert matching("count", "gte", "3") == {"thrice"}
    assert matching("count", "gte", "1") == {"once", "thrice"}
    assert matching("count", "eq", "1") == {"once"}
    # "fewer than 1 purchase" includes contacts with no events at all
    assert matching("count", "lt", "1") == {"never", "old", "chatty"}
    assert matching("count", "lte", "0") == {"never", "old", "chatty"}
    assert matching("count", "gt", "4", kind="message_in") == {"chatty"}


def test_sums_are_exact_decimals(buyers):
    # 0.10 + 0.20 + (no amount) is exactly 0.30, even on SQLite's floats
    assert matching("sum", "eq", "0.3") == {"thrice"}
    assert matching("sum", "lte", "0.30") == {"never", "thrice", "old", "chatty"}
    assert matching("sum", "gte", "200") == {"once"}
    assert matching("sum", "gt", "200") == set()
    assert matching("sum", "lt", "0.01") == {"never", "old", "chatty"}


def test_the_window_moves_with_now(buyers):
    # "thrice" bought exactly 1 day ago: the window includes its first instant, and a second later not.
    assert matching("count", "gte", "1", days=1) == {"thrice"}
    assert matching("count", "gte", "1", days=1, now=NOW + timedelta(seconds=1)) == set()
    assert matching("count", "gte", "2", days=2) == {"thrice"}
    assert matching("count", "gte", "1", days=90, now=NOW + timedelta(hours=1)) == {"thrice", "old"}


def sql_of(op, value):
    node = {"type": "events", "kind": "purchase", "measure": "sum", "op": op, "value": value, "days": 90}
    q = compile_tree({"type": "group", "match": "all", "children": [node]}, now=NOW)
    return str(Contact.objects.filter(q).query)


def test_one_grouped_subquery_over_the_window_not_one_per_contact(buyers):
    sql = sql_of("gte", "200")
    assert sql.count("contacts_event") == 1 and "GROUP BY" in sql and "HAVING" in sql
    assert '"contacts_contact"."id" IN (SELECT' in sql and "NOT" not in sql
    # When 0 passes, the contacts whose total fails are left out instead (contacts without events stay in).
    assert 'NOT ("contacts_contact"."id" IN (SELECT' in sql_of("lt", "100")


@pytest.mark.parametrize(
    ("measure", "op", "value"), [("count", "gte", "1"), ("count", "lt", "1"), ("sum", "lte", "100")]
)
def test_among_narrows_the_subquery_without_changing_the_answer(buyers, measure, op, value):
    """An incremental refresh compiles with among= (the touched contacts): same answer for those contacts."""
    node = {"type": "events", "kind": "purchase", "measure": measure, "op": op, "value": value, "days": 90}
    rule = {"type": "group", "match": "all", "children": [node]}
    everyone = set(Contact.objects.filter(compile_tree(rule, now=NOW)).values_list("id", flat=True))
    ids = sorted(Contact.objects.values_list("id", flat=True))
    for among in (ids[:2], ids[2:], ids[1:4]):
        narrowed = Contact.objects.filter(compile_tree(rule, now=NOW, among=among), id__in=among)
        assert set(narrowed.values_list("id", flat=True)) == everyone & set(among)
