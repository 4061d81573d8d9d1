"""`birthday_within`: the next N days by a time zone's calendar, across New Year and 29 February."""

from datetime import UTC, date, datetime

import pytest
import time_machine

from contacts.models import Contact
from segments.rules import compile_tree
from segments.rules.birthdays import month_day_ranges


def matching(days, *, now=None, tz=None) -> set[str]:
    node = {"type": "birthday_within", "days": days} | ({"tz": tz} if tz else {})
    q = compile_tree({"type": "group", "match": "all", "children": [node]}, now=now)
    return set(Contact.objects.filter(q).values_list("name", flat=True))


def shanghai_noon(year, month, day):
    return datetime(year, month, day, 4, 0, tzinfo=UTC)


@pytest.fixture
def born(db):
    Contact.objects.create(name="unknown")
    for name, birthday in [
        ("dec30", date(1980, 12, 30)),
        ("dec31", date(1999, 12, 31)),
        ("jan1", date(2000, 1, 1)),
        ("jan2", date(1970, 1, 2)),
        ("feb28", date(1990, 2, 28)),
        ("feb29", date(1992, 2, 29)),
        ("mar1", date(1991, 3, 1)),
        ("jun14", date(1985, 6, 14)),
        ("jun15", date(1985, 6, 15)),
    ]:
        Contact.objects.create(name=name, birthday=birthday)


def test_today_and_the_next_days(born):
    assert matching(0, now=shanghai_noon(2025, 6, 15)) == {"jun15"}
    assert matching(1, now=shanghai_noon(2025, 6, 14)) == {"jun14", "jun15"}


def test_the_window_wraps_past_new_year(born):
    assert matching(3, now=shanghai_noon(2024, 12, 30)) == {"dec30", "dec31", "jan1", "jan2"}
    assert matching(1, now=shanghai_noon(2024, 12, 31)) == {"dec31", "jan1"}


def test_29_february_is_celebrated_on_the_28th_in_other_years(born):
    assert matching(0, now=shanghai_noon(2025, 2, 28)) == {"feb28", "feb29"}
    assert matching(1, now=shanghai_noon(2025, 2, 27)) == {"feb28", "feb29"}
    assert matching(0, now=shanghai_noon(2025, 3, 1)) == {"mar1"}
    assert matching(62, now=shanghai_noon(2024, 12, 28)) == {
        "dec30",
        "dec31",
        "jan1",
        "jan2",
        "feb28",
        "feb29",
    }


def test_in_a_leap_year_29_february_is_its_own_day(born):
    assert matching(0, now=shanghai_noon(2024, 2, 28)) == {"feb28"}
    assert matching(0, now=shanghai_noon(2024, 2, 29)) == {"feb29"}
    assert matching(1, now=shanghai_noon(2024, 2, 28)) == {"feb28", "feb29"}


def test_a_whole_year_holds_every_birthday(born):
    everyone = {"dec30", "dec31", "jan1", "jan2", "feb28", "feb29", "mar1", "jun14", "jun15"}
    assert matching(365, now=shanghai_noon(2025, 3, 1)) == everyone
    assert matching(366, now=shanghai_noon(2024, 2, 29)) == everyone
    assert matching(363, now=shanghai_noon(2025, 3, 2)) == everyone - {"mar1"}  # to 28 Feb 2026


def test_today_is_by_the_time_zone_of_the_rule(born):
    late_evening_utc = datetime(2025, 6, 14, 17, 0, tzinfo=UTC)  # 15 June 01:00 in Shanghai
    assert matching(0, now=late_evening_utc) == {"jun15"}
    assert matching(0, now=late_evening_utc, tz="UTC") == {"jun14"}
    assert matching(0, now=late_evening_utc, tz="America/Los_Angeles") == {"jun14"}


def test_now_defaults_to_the_current_time(born):
    with time_machine.travel(datetime(2025, 12, 31, 15, 0, tzinfo=UTC), tick=False):  # 23:00 in Shanghai
        assert matching(1) == {"dec31", "jan1"}
    with time_machine.travel(datetime(2025, 12, 31, 16, 0, tzinfo=UTC), tick=False):  # New Year in Shanghai
        assert matching(1) == {"jan1", "jan2"}


@pytest.mark.parametrize(
    ("today", "days", "ranges"),
    [
        (date(2025, 6, 15), 0, [(615, 615)]),
        (date(2025, 12, 30), 3, [(1230, 1231), (101, 102)]),
        (date(2025, 2, 20), 8, [(220, 229)]),  # ends on 28 Feb of a common year
        (date(2024, 2, 20), 8, [(220, 228)]),  # a leap year has its own 29th
        (date(2025, 3, 1), 365, [(101, 1231)]),
    ],
)
def test_month_day_ranges(today, days, ranges):
    assert month_day_ranges(today, days) == ranges
