"""The `birthday_within` condition: the birthday falls today or in the next N days (0–366), by the
calendar of a time zone ("today" in Asia/Shanghai is not "today" in UTC for eight hours a day).

    {"type": "birthday_within", "days": 7}
    {"type": "birthday_within", "days": 0, "tz": "Europe/Paris"}      tz defaults to settings.TIME_ZONE

Compiled without per-contact Python: each birthday becomes month * 100 + day (May 1 -> 501) in SQL and
the window becomes one range of those numbers, or two when it wraps past 31 December. Someone born on
29 February celebrates on 28 February in years without one.
"""

import zoneinfo
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .base import Condition, Params, RuleError, integer, shown
from .expressions import MonthDay
from .registry import register

MAX_DAYS = 366


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _time_zone(value: Any) -> str:
    if not isinstance(value, str) or value not in _time_zones():
        raise RuleError(_("“%(value)s” is not a known time zone.") % {"value": shown(value)})
    return value


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def month_day_ranges(today: date, days: int) -> list[tuple[int, int]]:
    """The month*100+day ranges (inclusive) of birthdays celebrated from `today` to `today + days`."""
    if days >= 365:  # 366 consecutive days hold every birthday, 29 February's included
        return [(101, 1231)]
    last = today + timedelta(days=days)
    start, end = today.month * 100 + today.day, last.month * 100 + last.day
    if end == 228 and not _is_leap(last.year):
        end = 229  # 29 February is celebrated on the 28th in years without it
    if last.year == today.year:
        return [(start, end)]
    return [(start, 1231), (101, end)]


@register
class BirthdayWithinCondition(Condition):
    type = "birthday_within"
    label = gettext_lazy("Birthday coming up")

    def validate(self, node: dict) -> dict:
        params = Params(node)
        days = params.take("days", lambda value: integer(value, low=0, high=MAX_DAYS))
        cleaned = {"type": self.type, "days": days}
        if params.has("tz"):
            cleaned["tz"] = params.take("tz", _time_zone)
        params.finish()
        return cleaned

    def to_q(self, node: dict, *, now: datetime, among: Sequence[int] | None = None) -> Q:
        today = now.astimezone(zoneinfo.ZoneInfo(node.get("tz", settings.TIME_ZONE))).date()
        in_window = Q()
        for low, high in month_day_ranges(today, node["days"]):
            in_window |= Q(GreaterThanOrEqual(MonthDay("birthday"), low)) & Q(
                LessThanOrEqual(MonthDay("birthday"), high)
            )
        # Without a birthday MonthDay is NULL; the explicit test keeps the condition TRUE or FALSE.
        return Q(birthday__isnull=False) & in_window

    def describe(self, node: dict) -> str:
        days = node.get("days", 0)
        if days == 0:
            described = _("birthday is today")
        else:
            described = ngettext(
                "birthday is within the next %(days)s day", "birthday is within the next %(days)s days", days
            ) % {"days": days}
        if "tz" in node:
            return _("%(condition)s (%(zone)s time)") % {"condition": described, "zone": node["tz"]}
        return described
