"""Property: for random small populations and random rule trees (depth ≤ 3), the contacts the compiled
query returns are exactly those a plain Python evaluation of the same tree accepts.

The oracle below is written from the rules' documented meaning (segments/rules/kinds.py and each
condition's docstring), not from the compiler: absolute dates compare the contact's local calendar day,
birthdays walk the days of the window one by one, events are filtered and added up in Python.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contacts.models import (
    Contact,
    ContactTag,
    CustomField,
    CustomFieldKind,
    Event,
    Gender,
    Source,
    Tag,
    TagGroup,
    Tier,
)
from segments.rules import compile_tree, validate_tree

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOWS = [
    datetime(2025, 6, 15, 4, 0, tzinfo=UTC),
    datetime(2024, 12, 31, 17, 30, tzinfo=UTC),  # already New Year's Day in Shanghai
    datetime(2025, 2, 27, 20, 0, tzinfo=UTC),  # 28 February of a common year in Shanghai
    datetime(2024, 2, 28, 12, 0, tzinfo=UTC),  # 28 February of a leap year
]
TEXTS = ["ann", "Ann", "AN", "e", "Zed", "小", "小张", "上海", "x"]
CUSTOM = {
    "nickname": (CustomFieldKind.TEXT, []),
    "score": (CustomFieldKind.NUMBER, []),
    "anniv": (CustomFieldKind.DATE, []),
    "taste": (CustomFieldKind.CHOICE, ["辣", "甜", "咸"]),
    "hobbies": (CustomFieldKind.MULTI_CHOICE, ["a", "b", "c"]),
}
NUMBERS = {
    "order_count": ["0", "1", "2", "4"],
    "total_spent": ["0", "0.01", "199.99", "200", "200.01", "1000.5"],
    "cf:score": ["-3", "0", "9", "12", "12.5", "100"],
}
RECENCY = ("last_active_at", "last_purchase_at")


@dataclass
class Person:
    """What the oracle knows about one contact."""

    name: str
    city: str
    email: str
    gender: str
    source: str
    birthday: date | None
    joined_at: datetime
    last_active_at: datetime | None
    last_purchase_at: datetime | None
    first_purchase_at: datetime | None
    order_count: int
    total_spent: Decimal
    opted_out: bool
    tier_id: int | None
    owner_id: int | None
    tag_ids: frozenset
    custom: dict
    events: list = field(default_factory=list)  # (kind, occurred_at, amount or None)
    id: int | None = None


@pytest.fixture
def world(db, operator, other_operator, manager, admin_user):
    """Tiers, tags (one group without tags), custom fields and users shared by every example."""
    tiers = [Tier.objects.create(name=f"T{rank}", rank=rank) for rank in (1, 2, 3)]
    groups = {}
    for name, tag_names in [("g1", ["t1", "t2"]), ("g2", ["t3", "t4"]), ("g3", [])]:
        group = TagGroup.objects.create(name=name)
        groups[group.pk] = [Tag.objects.create(group=group, name=t).pk for t in tag_names]
    for key, (kind, choices) in CUSTOM.items():
        CustomField.objects.create(key=key, label_zh=key, label_en=key, kind=kind, choices=choices)
    users = [operator, other_operator, manager, admin_user]
    return SimpleNamespace(
        rank={tier.pk: tier.rank for tier in tiers},
        group_tags=groups,
        tag_ids=[pk for tags in groups.values() for pk in tags],
        user_ids=[user.pk for user in users],
        manager_of={user.pk: user.manager_id for user in get_user_model().objects.all()},
    )


# --- populations -----------------------------------------------------------------------------------


def today_in(now, zone=SHANGHAI) -> date:
    return now.astimezone(zone).date()


def midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=SHANGHAI)


def weighted(*choices):
    """One of the strategies, each `weight` times as likely (a plain `|` favours the first ones)."""
    return st.sampled_from([s for s, weight in choices for _ in range(weight)]).flatmap(
        lambda strategy: strategy
    )


def moments(now):
    """Instants mostly on the boundaries rules draw: N days before `now` exactly or a second off, a local
    midnight or a second before it; sometimes anywhere in the last year."""
    exact = st.sampled_from([1, 7, 30, 90]).map(lambda d: now - timedelta(days=d))
    nudged = st.tuples(st.sampled_from([1, 7, 30, 90]), st.sampled_from([-1, 1])).map(
        lambda t: now - timedelta(days=t[0], seconds=t[1])
    )
    midnights = st.tuples(st.integers(-40, 2), st.sampled_from([-1, 0])).map(
        lambda t: midnight(today_in(now) + timedelta(days=t[0])) + timedelta(seconds=t[1])
    )
    around_now = st.sampled_from([now, now + timedelta(hours=1), now - timedelta(seconds=1)])
    anywhere = st.integers(-400 * 24, 24).map(lambda h: now + timedelta(hours=h))
    return weighted((exact, 3), (nudged, 2), (midnights, 2), (around_now, 1), (anywhere, 1))


def near_days(now):
    return st.integers(-40, 3).map(lambda k: today_in(now) + timedelta(days=k))


def birthdays(now):
    def born_1990(day: date) -> date:
        return day.replace(year=1992 if (day.month, day.day) == (2, 29) else 1990)

    special = st.sampled_from(
        [date(1992, 2, 29), date(1990, 2, 28), date(1991, 3, 1), date(1980, 12, 31), date(1981, 1, 1)]
    )
    upcoming = st.integers(-2, 10).map(lambda k: born_1990(today_in(now) + timedelta(days=k)))
    anything = st.dates(date(1950, 1, 1), date(2010, 12, 31))
    return weighted((st.none(), 1), (special, 3), (upcoming, 3), (near_days(now), 1), (anything, 1))


def custom_values(now):
    dates = (near_days(now) | st.dates(date(2020, 1, 1), date(2026, 1, 1))).map(date.isoformat)
    optional = {
        "nickname": st.sampled_from(["", "Ann", "ann lee", "小张", "Zed"]),
        "score": st.sampled_from(NUMBERS["cf:score"]),
        "anniv": dates,
        "taste": st.sampled_from(CUSTOM["taste"][1]),
        "hobbies": st.lists(st.sampled_from(["a", "b", "c"]), unique=True).map(sorted),
    }
    return st.fixed_dictionaries({}, optional=optional)


def people(now, world):
    amounts = st.sampled_from([None, "0.10", "0.20", "100.00", "99.99"])
    one_event = st.tuples(st.sampled_from(["purchase", "purchase", "message_in"]), moments(now), amounts)
    return st.builds(
        Person,
        name=st.sampled_from(["Ann", "ann lee", "BOB", "张三", "Zed"]),
        city=st.sampled_from(["", "上海", "北京", "shanghai"]),
        email=st.sampled_from(["", "ann@x.com", "ZED@X.COM"]),
        gender=st.sampled_from(Gender.values),
        source=st.sampled_from(Source.values),
        birthday=birthdays(now),
        joined_at=moments(now),
        last_active_at=st.none() | moments(now),
        last_purchase_at=st.none() | moments(now),
        first_purchase_at=st.none() | moments(now),
        order_count=st.integers(0, 4),
        total_spent=st.sampled_from(NUMBERS["total_spent"]).map(Decimal),
        opted_out=st.booleans(),
        tier_id=st.none() | st.sampled_from(sorted(world.rank)),
        owner_id=st.none() | st.sampled_from(world.user_ids),
        tag_ids=st.frozensets(st.sampled_from(world.tag_ids)),
        custom=custom_values(now),
        events=st.lists(one_event, max_size=4),
    )


def save(people_list, now):
    for index, person in enumerate(people_list):
        values = {k: getattr(person, k) for k in ("name", "city", "email", "gender", "source", "birthday",
                  "joined_at", "last_active_at", "last_purchase_at", "first_purchase_at", "order_count",
                  "total_spent", "opted_out", "tier_id", "owner_id")}  # fmt: skip
        contact = Contact.objects.create(
            **values,
            phone=f"+861380013{index:04d}",
            custom_fields=person.custom,
            opted_out_at=now if person.opted_out else None,
        )
        person.id = contact.pk
        ContactTag.objects.bulk_create(ContactTag(contact=contact, tag_id=pk) for pk in person.tag_ids)
        Event.objects.bulk_create(
            Event(
                contact=contact,
                kind=kind,
                occurred_at=at,
                amount=amount and Decimal(amount),
                source="ui",
                idempotency_key=f"{contact.pk}-{i}",
            )  # fmt: skip
            for i, (kind, at, amount) in enumerate(person.events)
        )


# --- rule trees ------------------------------------------------------------------------------------


def nonempty_subsets(values):
    return st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True)


def ordered_pair(values, key=lambda v: v):
    return st.tuples(values, values).map(lambda pair: sorted(pair, key=key))


def node(name, op, value=None):
    return {"type": "field", "field": name, "op": op} | ({} if value is None else {"value": value})


def field_families(now):
    texts = st.sampled_from(TEXTS)
    text_ops = st.sampled_from(["equals", "not_equals", "contains", "not_contains", "starts_with"])
    text = st.builds(node, st.sampled_from(["name", "city", "email", "cf:nickname"]), text_ops, texts)
    empties = st.builds(
        node,
        st.sampled_from(
            ["city", "email", "birthday", *RECENCY, "first_purchase_at", *(f"cf:{k}" for k in CUSTOM)]
        ),
        st.sampled_from(["is_empty", "is_not_empty"]),
    )
    choices = st.builds(
        node, st.just("gender"), st.sampled_from(["in", "not_in"]), nonempty_subsets(Gender.values)
    ) | (
        st.builds(node, st.just("source"), st.sampled_from(["in", "not_in"]), nonempty_subsets(Source.values))
    )
    taste = st.builds(
        node, st.just("cf:taste"), st.sampled_from(["in", "not_in"]), nonempty_subsets(["辣", "甜", "咸"])
    )
    hobbies = st.builds(
        node,
        st.just("cf:hobbies"),
        st.sampled_from(["has_any", "has_all", "has_none"]),
        nonempty_subsets(["a", "b", "c"]),
    )
    boolean = st.builds(node, st.just("opted_out"), st.sampled_from(["is_true", "is_false"]))
    return [text, empties, choices, taste | hobbies, boolean, numbers(), dates(now)]


def numbers():
    def number_node(name):
        values = st.sampled_from(NUMBERS[name])
        one = st.builds(node, st.just(name), st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]), values)
        return one | st.builds(node, st.just(name), st.just("between"), ordered_pair(values, key=Decimal))

    return st.one_of(*(number_node(name) for name in NUMBERS))


def dates(now):
    names = st.sampled_from(["birthday", "cf:anniv", "joined_at", *RECENCY, "first_purchase_at"])
    days = near_days(now).map(date.isoformat)
    absolute = st.builds(node, names, st.sampled_from(["before", "after"]), days)
    between = st.builds(node, names, st.just("between"), ordered_pair(days))
    relative = st.builds(
        node,
        names,
        st.sampled_from(["within_last_days", "more_than_days_ago"]),
        st.sampled_from([0, 1, 7, 30, 90]),
    )
    return absolute | between | relative


def other_families(world):
    tags = st.builds(
        lambda op, tags: {"type": "tags", "op": op, "tags": tags},
        st.sampled_from(["has_any", "has_all", "has_none"]),
        nonempty_subsets(world.tag_ids),
    )
    tag_group = st.builds(
        lambda op, group: {"type": "tags", "op": op, "group": group},
        st.sampled_from(["has_any", "has_all", "has_none"]),
        st.sampled_from(sorted(world.group_tags)),
    )
    tier = id_set("tier", "tiers", sorted(world.rank))
    owner = id_set("owner", "users", world.user_ids)
    ranks = st.tuples(st.sampled_from([None, 0, 1, 2, 3, 4]), st.sampled_from([None, 0, 1, 2, 3, 4])).filter(
        lambda r: r != (None, None) and (None in r or r[0] <= r[1])
    )
    tier_rank = ranks.map(lambda r: {"type": "tier_rank", "min": r[0], "max": r[1]})
    team = st.sampled_from(world.user_ids).map(lambda pk: {"type": "team", "manager": pk})
    return [tags | tag_group, tier | owner, tier_rank, team, events(), birthday_within()]


def conditions(now, world):
    """Each family about equally often (a plain `|` of strategies favours the first ones), and the
    families with boundaries in time (dates, events, birthdays) twice as often."""
    families = [*field_families(now), *other_families(world), dates(now), events(), birthday_within()]
    return st.sampled_from(families).flatmap(lambda family: family)


def id_set(kind, key, ids):
    listed = st.builds(
        lambda op, chosen: {"type": kind, "op": op, key: chosen},
        st.sampled_from(["in", "not_in"]),
        nonempty_subsets(ids),
    )
    return listed | st.sampled_from(["is_empty", "is_not_empty"]).map(lambda op: {"type": kind, "op": op})


def events():
    def build(kind, measure, op, count, amount, days):
        value = count if measure == "count" else amount
        return {"type": "events", "kind": kind, "measure": measure, "op": op, "value": value, "days": days}

    return st.builds(
        build,
        st.sampled_from(["purchase", "purchase", "message_in"]),
        st.sampled_from(["count", "sum"]),
        st.sampled_from(["gte", "gt", "lte", "lt", "eq"]),
        st.sampled_from(["0", "1", "2", "3"]),
        st.sampled_from(["0", "0.1", "0.30", "100", "100.1", "200"]),
        st.sampled_from([1, 30, 90]),  # the windows moments() puts events on the edges of
    )


def birthday_within():
    zones = st.sampled_from([None, "UTC", "America/Los_Angeles", "Asia/Shanghai"])
    # 58 and 258 end windows on 28 February of a common year for some of NOWS; 364–366 wrap a whole year.
    days = st.sampled_from([0, 1, 3, 7, 30, 58, 62, 258, 364, 365, 366])
    return st.builds(
        lambda d, tz: {"type": "birthday_within", "days": d} | ({"tz": tz} if tz else {}), days, zones
    )


def trees(leaves, depth=1):
    child = leaves if depth == 3 else leaves | trees(leaves, depth + 1)
    return st.builds(
        lambda match, children: {"type": "group", "match": match, "children": children},
        st.sampled_from(["all", "any", "none"]),
        st.lists(child, min_size=1, max_size=3),
    )


# --- the oracle ------------------------------------------------------------------------------------

NEGATIONS = {
    "not_equals": "equals",
    "not_contains": "contains",
    "not_in": "in",
    "ne": "eq",
    "has_none": "has_any",
}
COMPARE = {
    "eq": lambda a, b: a == b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}


def holds(rule, person, now, world) -> bool:
    if rule["type"] == "group":
        results = [holds(child, person, now, world) for child in rule["children"]]
        return {"all": all(results), "any": any(results), "none": not any(results)}[rule["match"]]
    return ORACLES[rule["type"]](rule, person, now, world)


def field_holds(rule, person, now, world) -> bool:
    name, op, wanted = rule["field"], rule["op"], rule.get("value")
    if op in NEGATIONS:
        return not field_holds(rule | {"op": NEGATIONS[op]}, person, now, world)
    raw = person.custom.get(name[3:]) if name.startswith("cf:") else getattr(person, name)
    empty = raw is None or raw == "" or raw == []
    if op in ("is_empty", "is_not_empty"):
        return empty == (op == "is_empty")
    if op in ("is_true", "is_false"):
        return raw == (op == "is_true")
    if empty:  # no value: only "never active / never bought" counts as long ago
        return name in RECENCY and op in ("before", "more_than_days_ago")
    if op in ("equals", "contains", "starts_with"):
        return {"equals": raw == wanted, "contains": wanted.lower() in raw.lower(),
                "starts_with": raw.lower().startswith(wanted.lower())}[op]  # fmt: skip
    if op in ("in", "has_any", "has_all"):
        have = set(raw) if isinstance(raw, list) else {raw}
        return set(wanted) <= have if op == "has_all" else bool(have & set(wanted))
    if name in NUMBERS:
        number = Decimal(raw)
        if op == "between":
            return Decimal(wanted[0]) <= number <= Decimal(wanted[1])
        return COMPARE[op](number, Decimal(wanted))
    return date_holds(op, wanted, raw, now)


def date_holds(op, wanted, raw, now) -> bool:
    if isinstance(raw, datetime):
        if op == "within_last_days":
            return now - timedelta(days=wanted) <= raw <= now
        if op == "more_than_days_ago":
            return raw < now - timedelta(days=wanted)
        day = raw.astimezone(SHANGHAI).date()  # absolute dates are Shanghai calendar days
    else:
        day = date.fromisoformat(raw) if isinstance(raw, str) else raw
        age = (today_in(now) - day).days
        if op in ("within_last_days", "more_than_days_ago"):
            return 0 <= age <= wanted if op == "within_last_days" else age > wanted
    if op == "between":
        return date.fromisoformat(wanted[0]) <= day <= date.fromisoformat(wanted[1])
    return day < date.fromisoformat(wanted) if op == "before" else day > date.fromisoformat(wanted)


def tags_holds(rule, person, now, world) -> bool:
    wanted = set(rule["tags"] if "tags" in rule else world.group_tags[rule["group"]])
    return {"has_any": bool(person.tag_ids & wanted), "has_all": wanted <= person.tag_ids,
            "has_none": not person.tag_ids & wanted}[rule["op"]]  # fmt: skip


def id_set_holds(attribute, key):
    def check(rule, person, now, world) -> bool:
        value = getattr(person, attribute)
        return {"is_empty": value is None, "is_not_empty": value is not None,
                "in": value in rule.get(key, []), "not_in": value not in rule.get(key, [])}[rule["op"]]  # fmt: skip

    return check


def tier_rank_holds(rule, person, now, world) -> bool:
    rank = world.rank.get(person.tier_id)
    low, high = rule["min"], rule["max"]
    return rank is not None and (low is None or rank >= low) and (high is None or rank <= high)


def team_holds(rule, person, now, world) -> bool:
    owner = person.owner_id
    return owner is not None and rule["manager"] in (owner, world.manager_of[owner])


def events_holds(rule, person, now, world) -> bool:
    since = now - timedelta(days=rule["days"])
    chosen = [amount for kind, at, amount in person.events if kind == rule["kind"] and since <= at <= now]
    total = len(chosen) if rule["measure"] == "count" else sum(Decimal(a) for a in chosen if a is not None)
    return COMPARE[rule["op"]](Decimal(total), Decimal(rule["value"]))


def celebrated(birthday: date, year: int) -> date:
    try:
        return birthday.replace(year=year)
    except ValueError:  # 29 February in a common year
        return date(year, 2, 28)


def birthday_holds(rule, person, now, world) -> bool:
    if person.birthday is None:
        return False
    today = today_in(now, ZoneInfo(rule.get("tz", "Asia/Shanghai")))
    window = (today + timedelta(days=k) for k in range(rule["days"] + 1))
    return any(celebrated(person.birthday, day.year) == day for day in window)


ORACLES = {
    "field": field_holds,
    "tags": tags_holds,
    "tier": id_set_holds("tier_id", "tiers"),
    "owner": id_set_holds("owner_id", "users"),
    "tier_rank": tier_rank_holds,
    "team": team_holds,
    "events": events_holds,
    "birthday_within": birthday_holds,
}


# --- the property ----------------------------------------------------------------------------------


def with_each_condition_alone(rules):
    """The trees, then each of their conditions as a rule of its own (a condition alone is not masked
    by its neighbours, so an off-by-one at a boundary shows in far fewer examples)."""
    yield from rules
    stack = list(rules)
    while stack:
        node = stack.pop()
        if node["type"] == "group":
            stack.extend(node["children"])
        else:
            yield {"type": "group", "match": "all", "children": [node]}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_query_selects_what_the_rule_means(world, data):
    now = data.draw(st.sampled_from(NOWS), label="now")
    population = data.draw(st.lists(people(now, world), min_size=2, max_size=12), label="population")
    rules = data.draw(st.lists(trees(conditions(now, world)), min_size=1, max_size=5), label="rules")
    with transaction.atomic():
        save(population, now)
        for rule in with_each_condition_alone(rules):
            assert validate_tree(rule) == rule  # generated in cleaned form: it round-trips
            selected = set(Contact.objects.filter(compile_tree(rule, now=now)).values_list("id", flat=True))
            assert selected == {p.id for p in population if holds(rule, p, now, world)}, rule
        transaction.set_rollback(True)
