"""segments.selectors.rule_count, the builder's live count: its shortcut for a lone event condition (the
grouped events counted without reading contacts, rules.count_alone) gives the same number as the general
compiled filter, for every user, and as the rule's meaning (the Python oracle of test_property).

The property runs on whichever database the suite runs on (SQLite by default, PostgreSQL in CI)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contacts.models import Contact, Event
from contacts.selectors import contacts_visible_to, sees_every_contact
from segments.rules import compile_tree, count_alone
from segments.selectors import rule_count
from tests.segments import test_property as oracle

world = oracle.world  # the fixture: tiers, tags, custom fields, users
NOW = datetime(2025, 6, 15, 4, 0, tzinfo=UTC)


def alone(node: dict) -> dict:
    return {"type": "group", "match": "all", "children": [node]}


def events(measure="sum", op="gte", value="200", days=90, kind="purchase") -> dict:
    return {"type": "events", "kind": kind, "measure": measure, "op": op, "value": value, "days": days}


# --- which rules take the shortcut -----------------------------------------------------------------


@pytest.mark.parametrize(
    "node",
    [
        events(),
        events("count", "gte", "3"),
        events("count", "gt", "0"),
        events("count", "eq", "2"),
        events("sum", "gt", "0"),
        events("sum", "lt", "-1"),  # refunds could make a total negative; 0 does not pass
    ],
)
def test_a_lone_event_condition_that_needs_events_counts_alone(db, node):
    assert count_alone(alone(node), now=NOW) is not None
    nested = {"type": "group", "match": "any", "children": [alone(node)]}
    assert count_alone(nested, now=NOW) is not None


@pytest.mark.parametrize(
    "tree",
    [
        alone(events("count", "lt", "1")),  # contacts without events pass: not in the events table
        alone(events("count", "lte", "0")),
        alone(events("sum", "lte", "100")),
        alone(events("sum", "eq", "0")),
        alone(events("count", "gte", "0")),
        {"type": "group", "match": "none", "children": [events()]},
        {"type": "group", "match": "all", "children": [events(), events("count", "gte", "2")]},
        {"type": "group", "match": "any", "children": [events(), events("count", "gte", "2")]},
        alone({"type": "field", "field": "opted_out", "op": "is_false"}),
    ],
)
def test_anything_else_takes_the_general_path(db, tree):
    assert count_alone(tree, now=NOW) is None


def test_only_a_user_who_sees_every_contact_may_take_it(operator, manager, admin_user):
    assert sees_every_contact(admin_user)
    assert not sees_every_contact(manager)
    assert not sees_every_contact(operator)
    assert not sees_every_contact(AnonymousUser())


def test_the_shortcut_reads_no_contacts(admin_user, operator):
    for user, reads_contacts in [(admin_user, False), (operator, True)]:
        with CaptureQueriesContext(connection) as queries:
            rule_count(user, alone(events()), now=NOW)
        counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
        assert len(counts) == 1 and ("contacts_contact" in counts[0]) == reads_contacts


def test_a_scoped_user_counts_only_their_own(operator, other_operator, admin_user):
    mine, theirs = Contact.objects.create(owner=operator), Contact.objects.create(owner=other_operator)
    for n, contact in enumerate([mine, theirs]):
        Event.objects.create(
            contact=contact,
            kind="purchase",
            occurred_at=NOW - timedelta(days=1),
            amount=Decimal("250"),
            source="ui",
            idempotency_key=f"k{n}",
        )
    rule = alone(events())
    assert rule_count(admin_user, rule, now=NOW) == 2
    assert rule_count(operator, rule, now=NOW) == 1
    assert rule_count(AnonymousUser(), rule, now=NOW) == 0


# --- the property ----------------------------------------------------------------------------------


def wrapped(node):
    """A condition as a whole rule: alone in 1–3 nested groups, mostly of "all" / "any" (the shortcut
    unwraps them), sometimes "none" (it must not)."""
    matches = st.lists(st.sampled_from(["all", "all", "any", "any", "none"]), min_size=1, max_size=3)
    return matches.map(lambda ms: _nest(node, ms))


def _nest(node, matches):
    for match in matches:
        node = {"type": "group", "match": match, "children": [node]}
    return node


def rules(now, world):
    lone_events = oracle.events().flatmap(wrapped)
    mixed = oracle.trees(oracle.conditions(now, world))
    return st.lists(oracle.weighted((lone_events, 3), (mixed, 1)), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_rule_count_equals_the_general_path_and_the_meaning(world, data):
    now = data.draw(st.sampled_from(oracle.NOWS), label="now")
    population = data.draw(st.lists(oracle.people(now, world), min_size=0, max_size=12), label="population")
    drawn = data.draw(rules(now, world), label="rules")
    users = list(get_user_model().objects.filter(pk__in=world.user_ids).order_by("pk"))
    with transaction.atomic():
        oracle.save(population, now)
        for rule in drawn:
            meaning = sum(1 for p in population if oracle.holds(rule, p, now, world))
            for user in users:
                general = contacts_visible_to(user).filter(compile_tree(rule, now=now)).count()
                assert rule_count(user, rule, now=now) == general, (user.username, rule)
                if sees_every_contact(user):
                    assert general == meaning, rule
        transaction.set_rollback(True)
