"""Kinds of field values (text, choice, number, date, …): which operators fit each, how their values are
cleaned, and how they compile — written once against an accessor, so a Contact column and a custom field
value (JSON) share the same operators.

Semantics, chosen once for every kind:
- a negative operator (not_equals, not_contains, not_in, ne, has_none) is the exact complement of its
  positive one, so it includes contacts with no value ("city is not 上海" includes contacts with no city);
- text: `equals` is exact (index-served); `contains` and `starts_with` ignore case;
- dates on datetime columns are calendar days in settings.TIME_ZONE: `before D` is before D starts,
  `after D` is from the day after D, `between` includes both days; "N days" are N × 24 hours from `now`;
  on date values (birthday, custom dates) "within the last N days" is today - N … today;
- recency fields (last active, last purchase) read "no value" as "never", earlier than any date: it
  matches `before` and `more_than_days_ago` ("30 天未互动" includes contacts never active), and not
  `after`, `between` or `within_last_days`. Other dates with no value match none of the date operators.
"""

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import reduce
from operator import and_, or_
from typing import Any

from django.db.models import Q
from django.db.models.lookups import In, IsNull
from django.utils import timezone
from django.utils.translation import gettext as _

from .base import (
    Params,
    RuleError,
    decimal_text,
    integer,
    iso_date,
    listing,
    nonempty_list,
    one_of,
    ordered_pair,
    quoted,
    text,
)
from .expressions import JsonListHas, TextAsNumber, custom_text

MAX_DAYS = 36500  # "more than N days ago" on a birthday is an age; a century is enough
EMPTY_OPERATORS = ("is_empty", "is_not_empty")


# --- accessors: where a field's value lives --------------------------------------------------------


class Column:
    """A Contact column. For a nullable column Django's negation adds "IS NOT NULL", so a plain lookup
    stays an exact complement inside a "none of" group."""

    def __init__(self, name: str, *, nullable: bool = False, blank: bool = False):
        self.name = name
        self.nullable = nullable
        self.blank = blank  # "" means no value (text columns)
        self.can_be_empty = nullable or blank

    def test(self, lookup: str, value: Any) -> Q:
        return Q(**{f"{self.name}__{lookup}": value})

    def empty(self) -> Q:
        nothing = Q(**{f"{self.name}__isnull": True}) if self.nullable else Q()
        return (nothing | Q(**{self.name: ""})) if self.blank else nothing


class CustomValue:
    """A value in Contact.custom_fields (stored as contacts.custom_fields describes: text, numbers as
    text, dates as YYYY-MM-DD, a list for multiple choice). Each test is guarded with IS NOT NULL:
    Django adds no such guard to expressions, and a NULL would make NOT (…) drop the contact."""

    can_be_empty = True

    def __init__(self, key: str, *, numeric: bool = False):
        self.key = key
        self.numeric = numeric

    def _value(self):
        return TextAsNumber(custom_text(self.key)) if self.numeric else custom_text(self.key)

    def test(self, lookup: str, value: Any) -> Q:
        if isinstance(value, date):  # stored as YYYY-MM-DD, so text order is date order
            value = value.isoformat()
        lookup_class = self._value().output_field.get_lookup(lookup)
        return Q(IsNull(self._value(), False)) & Q(lookup_class(self._value(), value))

    def empty(self) -> Q:
        return Q(IsNull(custom_text(self.key), True)) | Q(In(custom_text(self.key), ["", "[]"]))


Accessor = Column | CustomValue


# --- kinds -----------------------------------------------------------------------------------------

# How an operator takes its value: none, one value, [from, to], a non-empty list, or a number of days.
NONE, ONE, PAIR, LIST, DAYS = "none", "one", "pair", "list", "days"


class Kind:
    name = "value"
    shapes: dict[str, str] = {}  # operator -> shape of its value

    def operators(self, access: Accessor) -> tuple[str, ...]:
        return tuple(self.shapes) + (EMPTY_OPERATORS if access.can_be_empty else ())

    def parse(self, value: Any) -> Any:
        raise RuleError(_("This operator takes no value."))

    def order_key(self, value: Any) -> Any:
        return value

    def clean(self, op: str, params: Params) -> dict:
        """{"value": cleaned} for the operator, or {} when it takes none."""
        shape = self.shapes.get(op, NONE)
        if shape == NONE:
            params.refuse("value", _("This operator takes no value."))
            return {}
        parse = {
            ONE: self.parse,
            PAIR: lambda v: ordered_pair(v, self.parse, key=self.order_key),
            LIST: lambda v: nonempty_list(v, self.parse),
            DAYS: lambda v: integer(v, low=0, high=MAX_DAYS),
        }[shape]
        return {"value": params.take("value", parse)}

    def q(self, access: Accessor, op: str, value: Any, now: datetime) -> Q:
        if op == "is_empty":
            return access.empty()
        if op == "is_not_empty":
            return ~access.empty()
        return self.compare(access, op, value, now)

    def compare(self, access: Accessor, op: str, value: Any, now: datetime) -> Q:
        raise NotImplementedError

    def show(self, value: Any) -> str:
        """A cleaned value in words, for describe()."""
        if isinstance(value, list):
            return listing(self.show(item) for item in value)
        return str(value)


class TextKind(Kind):
    name = "text"
    shapes = {"equals": ONE, "not_equals": ONE, "contains": ONE, "not_contains": ONE, "starts_with": ONE}
    _lookups = {"equals": "exact", "contains": "icontains", "starts_with": "istartswith"}

    def parse(self, value: Any) -> str:
        return text(value)

    def compare(self, access, op, value, now):
        if op.startswith("not_"):
            return ~access.test(self._lookups[op.removeprefix("not_")], value)
        return access.test(self._lookups[op], value)

    def show(self, value):
        return quoted(value)


class ChoiceKind(Kind):
    name = "choice"
    shapes = {"in": LIST, "not_in": LIST}

    def __init__(self, choices: list[tuple[str, str]]):
        self.labels = dict(choices)

    def parse(self, value: Any) -> str:
        return one_of(value, self.labels)

    def compare(self, access, op, value, now):
        matches = access.test("in", value)
        return matches if op == "in" else ~matches

    def show(self, value):
        if isinstance(value, list):
            return super().show(value)
        return str(self.labels.get(value, value))


class MultiChoiceKind(ChoiceKind):
    """A custom field holding a list of options."""

    name = "multi_choice"
    shapes = {"has_any": LIST, "has_all": LIST, "has_none": LIST}

    def compare(self, access, op, value, now):
        has = [Q(JsonListHas(access.key, option)) for option in value]
        if op == "has_all":
            return reduce(and_, has)
        return reduce(or_, has) if op == "has_any" else ~reduce(or_, has)


class NumberKind(Kind):
    """Whole numbers (orders), money (2 places) or custom numbers; values are decimal strings."""

    name = "number"
    shapes = {"eq": ONE, "ne": ONE, "gt": ONE, "gte": ONE, "lt": ONE, "lte": ONE, "between": PAIR}
    _sizes = {"integer": (9, 0), "money": (12, 2), "decimal": (15, 10)}

    def __init__(self, style: str):
        self.style = style
        self.digits, self.places = self._sizes[style]

    def parse(self, value: Any) -> str:
        return decimal_text(value, digits=self.digits, places=self.places)

    def order_key(self, value: str) -> Decimal:
        return Decimal(value)

    def _number(self, value: str) -> int | Decimal:
        # An IntegerField lookup would truncate a Decimal; integers are whole by validation.
        return int(value) if self.style == "integer" else Decimal(value)

    def compare(self, access, op, value, now):
        if op == "between":
            low, high = (self._number(v) for v in value)
            return access.test("gte", low) & access.test("lte", high)
        if op in ("eq", "ne"):
            equal = access.test("exact", self._number(value))
            return equal if op == "eq" else ~equal
        return access.test(op, self._number(value))


class DateKind(Kind):
    """Date values: the birthday column, custom date fields."""

    name = "date"
    shapes = {
        "before": ONE,
        "after": ONE,
        "between": PAIR,
        "within_last_days": DAYS,
        "more_than_days_ago": DAYS,
    }

    def parse(self, value: Any) -> str:
        return iso_date(value)

    def compare(self, access, op, value, now):
        if op == "within_last_days":
            today = local_today(now)
            return access.test("gte", today - timedelta(days=value)) & access.test("lte", today)
        if op == "more_than_days_ago":
            return access.test("lt", local_today(now) - timedelta(days=value))
        if op == "between":
            low, high = (date.fromisoformat(v) for v in value)
            return access.test("gte", low) & access.test("lte", high)
        return access.test("lt" if op == "before" else "gt", date.fromisoformat(value))


class DateTimeKind(DateKind):
    """Moments: joined, last active, first and last purchase."""

    name = "datetime"

    def __init__(self, *, never_is_old: bool = False):
        self.never_is_old = never_is_old  # no value = "never" (see the module docstring)

    def compare(self, access, op, value, now):
        matches = self._compare(access, op, value, now)
        if self.never_is_old and op in ("before", "more_than_days_ago"):
            return matches | access.empty()
        return matches

    def _compare(self, access, op, value, now):
        if op == "within_last_days":
            return access.test("gte", now - timedelta(days=value)) & access.test("lte", now)
        if op == "more_than_days_ago":
            return access.test("lt", now - timedelta(days=value))
        if op == "between":
            low, high = (date.fromisoformat(v) for v in value)
            return access.test("gte", start_of(low)) & access.test("lt", start_of(high + timedelta(days=1)))
        day = date.fromisoformat(value)
        if op == "before":
            return access.test("lt", start_of(day))
        return access.test("gte", start_of(day + timedelta(days=1)))


class BooleanKind(Kind):
    name = "boolean"
    shapes = {"is_true": NONE, "is_false": NONE}

    def compare(self, access, op, value, now):
        return access.test("exact", op == "is_true")


def local_today(now: datetime) -> date:
    """The calendar day of `now` where the business is (settings.TIME_ZONE)."""
    return now.astimezone(timezone.get_default_timezone()).date()


def start_of(day: date) -> datetime:
    """Midnight starting `day` in settings.TIME_ZONE, as an aware datetime."""
    return datetime.combine(day, time.min, tzinfo=timezone.get_default_timezone())
