"""When a step is due, and what the guards make of that time. Pure functions of datetimes and zones.

Days are calendar days in the customer's time zone: "day 2 at 10:00" is 10:00 their time two days after the
day they were enrolled, and the frequency cap counts touches per local calendar day ("at most 1 a day, 3 in
any 7 days": today and the six days before).
"""

import zoneinfo
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from functools import lru_cache

from .models import OffsetKind, SopStep


@lru_cache(maxsize=256)
def zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("Asia/Shanghai")


def at_local(day: date, clock: time, tz: zoneinfo.ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=tz)


def step_due(
    step: SopStep, *, enrolled_at: datetime, previous_sent_at: datetime | None, tz_name: str
) -> datetime:
    """When `step` falls due for one customer. Never before the previous step was sent (or the enrollment)."""
    floor = previous_sent_at or enrolled_at
    if step.offset_kind == OffsetKind.HOURS_AFTER:
        return floor + timedelta(hours=step.offset_hours)
    tz = zone(tz_name)
    local_day = enrolled_at.astimezone(tz).date() + timedelta(days=step.offset_days)
    return max(at_local(local_day, step.offset_time, tz), floor)


def quiet_until(moment: datetime, *, start: time, end: time, tz_name: str) -> datetime | None:
    """The end of the quiet hours `moment` falls in (in the customer's zone), or None when it is not quiet.
    A window may wrap midnight (21:00–09:00); start == end means no quiet hours."""
    if start == end:
        return None
    tz = zone(tz_name)
    local = moment.astimezone(tz)
    clock = local.time()
    if start < end:
        quiet = start <= clock < end
        end_day = local.date()
    else:
        quiet = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    return at_local(end_day, end, tz) if quiet else None


def cap_allows_at(
    moment: datetime, recent: Sequence[datetime], *, per_day: int, per_week: int, tz_name: str
) -> datetime | None:
    """None when one more marketing touch at `moment` stays within the cap, given the customer's `recent`
    marketing touches; otherwise the start of the first local day on which it would."""
    tz = zone(tz_name)
    today = moment.astimezone(tz).date()
    days = sorted((t.astimezone(tz).date() for t in recent if t.astimezone(tz).date() > today - timedelta(days=7)),
                  reverse=True)  # fmt: skip
    blocked_until: date | None = None
    if sum(1 for d in days if d == today) >= per_day:
        blocked_until = today + timedelta(days=1)
    if len(days) >= per_week:
        # The per_week-th most recent touch must leave the 7-day window.
        week_free = days[per_week - 1] + timedelta(days=7)
        if week_free > today:
            blocked_until = max(blocked_until or week_free, week_free)
    return at_local(blocked_until, time(0, 0), tz) if blocked_until else None
