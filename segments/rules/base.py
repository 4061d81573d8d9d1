"""What every condition type is made of: the error it raises, the reader of its parameters, the parsers
of its values, and the base class it extends.

Rules arrive as JSON from the builder and the API, so every parser accepts any JSON value and either
returns a cleaned value or raises RuleError — never anything else.
"""

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from django.db.models import Model, Q, QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

# The largest id a bigint primary key can hold; larger ints would overflow the database driver.
MAX_ID = 2**63 - 1
# A list of ids or options longer than this is not something a person builds; refuse instead of
# sending a huge IN (...) to the database.
MAX_LIST = 200
TEXT_MAX_LENGTH = 500  # the same limit as a custom text field's value

_INTEGER = re.compile(r"^-?[0-9]{1,18}$")
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class RuleError(ValueError):
    """A rule that must be rejected. `path` names the offending node or value from the root of the tree
    ("children.2.children.0.value"; "" is the root group); `message` says what is wrong, in the active
    language."""

    def __init__(self, message: str, path: str | int = ""):
        self.message = str(message)
        self.path = str(path)
        super().__init__(f"{self.path}: {self.message}" if self.path else self.message)

    def under(self, *prefix: str | int) -> "RuleError":
        """The same error seen from further up the tree."""
        return RuleError(self.message, join_path(*prefix, self.path))


def join_path(*parts: str | int) -> str:
    return ".".join(str(part) for part in parts if part != "")


def shown(value: Any) -> str:
    """A bad value quoted back in a message, cut short: the input may be anything, of any size."""
    text = str(value)
    return text if len(text) <= 40 else text[:40] + "…"


class Params:
    """Reads one node's parameters: every error names its key, and a key nobody read is rejected,
    so a typo ("vaule") is an error instead of a condition that silently means something else."""

    def __init__(self, node: dict):
        self.node = node
        self.read = {"type"}

    def has(self, key: str) -> bool:
        return key in self.node

    def take(self, key: str, parse: Callable[[Any], Any]) -> Any:
        self.read.add(key)
        if key not in self.node:
            raise RuleError(_("This value is required."), key)
        try:
            return parse(self.node[key])
        except RuleError as error:
            raise error.under(key) from None

    def refuse(self, key: str, message: str) -> None:
        """A key this node must not carry (e.g. a value for an operator that takes none)."""
        self.read.add(key)
        if key in self.node:
            raise RuleError(message, key)

    def finish(self) -> None:
        for key in self.node:
            if key not in self.read:
                raise RuleError(_("Unknown key “%(key)s”.") % {"key": shown(key)}, key)


# --- parsers: value -> cleaned value, or RuleError with a path relative to the value ---------------


def integer(value: Any, *, low: int, high: int) -> int:
    """An int, or digits in a string (HTML forms send text); never a bool or a float."""
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool):
        raise RuleError(_("Enter a whole number."))
    if not low <= value <= high:
        raise RuleError(_("Enter a number from %(low)s to %(high)s.") % {"low": low, "high": high})
    return value


def object_id(value: Any) -> int:
    return integer(value, low=1, high=MAX_ID)


def decimal_text(value: Any, *, digits: int, places: int) -> str:
    """A number as a canonical decimal string ("200", "12.50"): money is never a float. Accepts an int
    or a string with at most `digits` digits before the point and `places` after it."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, float):
        raise RuleError(_("Enter the number as text, e.g. “12.50”, so it stays exact."))
    pattern = rf"^-?[0-9]{{1,{digits}}}(\.[0-9]{{1,{places}}})?$" if places else rf"^-?[0-9]{{1,{digits}}}$"
    if not isinstance(value, str) or not re.match(pattern, value.strip()):
        if not places:
            raise RuleError(_("Enter a whole number of at most %(digits)s digits.") % {"digits": digits})
        raise RuleError(
            _("Enter a number with at most %(digits)s digits and %(places)s decimal places.")
            % {"digits": digits, "places": places}
        )
    number = Decimal(value.strip())
    return str(abs(number) if number == 0 else number)  # "-0" is "0"


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise RuleError(_("Enter text."))
    value = value.strip()
    if not value:
        raise RuleError(_("Enter a value."))
    if len(value) > TEXT_MAX_LENGTH:
        raise RuleError(_("At most %(n)d characters.") % {"n": TEXT_MAX_LENGTH})
    # PostgreSQL cannot compare NUL, and a lone surrogate (valid in JSON) cannot be encoded at all.
    if "\x00" in value or not _encodable(value):
        raise RuleError(_("The text contains a character that cannot be used."))
    return value


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def iso_date(value: Any) -> str:
    """YYYY-MM-DD in 1900…2999 (a bounded range keeps "the day after" and "N days before" computable)."""
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed and 1900 <= parsed.year <= 2999:
            return parsed.isoformat()
    raise RuleError(_("Enter a date from 1900-01-01 to 2999-12-31 as YYYY-MM-DD."))


def one_of(value: Any, options: Iterable[str]) -> str:
    options = list(options)
    if not isinstance(value, str) or value not in options:
        raise RuleError(
            _("“%(value)s” is not one of: %(options)s.")
            % {"value": shown(value), "options": ", ".join(options)}
        )
    return value


def nonempty_list(value: Any, parse_item: Callable[[Any], Any]) -> list:
    """A list of at least one item, each parsed, duplicates dropped (first one kept, order kept)."""
    if not isinstance(value, list) or not value:
        raise RuleError(_("Choose at least one."))
    if len(value) > MAX_LIST:
        raise RuleError(_("Choose at most %(n)d.") % {"n": MAX_LIST})
    cleaned = []
    for index, item in enumerate(value):
        try:
            parsed = parse_item(item)
        except RuleError as error:
            raise error.under(index) from None
        if parsed not in cleaned:
            cleaned.append(parsed)
    return cleaned


def ordered_pair(value: Any, parse_item: Callable[[Any], Any], *, key: Callable = lambda v: v) -> list:
    """[low, high] with low <= high (compared through `key`), for "between"."""
    if not isinstance(value, list) or len(value) != 2:
        raise RuleError(_("Enter two values: from and to."))
    low, high = each_item(value, parse_item)
    if key(low) > key(high):
        raise RuleError(_("The first value must not be greater than the second."))
    return [low, high]


def each_item(value: list, parse_item: Callable[[Any], Any]) -> list:
    """Each item parsed, errors pointing at the item; duplicates kept (unlike nonempty_list)."""
    cleaned = []
    for index, item in enumerate(value):
        try:
            cleaned.append(parse_item(item))
        except RuleError as error:
            raise error.under(index) from None
    return cleaned


def ensure_exist(model: type[Model], ids: list[int], message: str) -> None:
    """Every id names a row of `model`; the error points at the first that does not (message has %(id)s).
    One query, whatever the number of ids."""
    found = set(model._default_manager.filter(pk__in=ids).values_list("pk", flat=True))
    for index, pk in enumerate(ids):
        if pk not in found:
            raise RuleError(message % {"id": pk}, index)


# --- describing ------------------------------------------------------------------------------------


def quoted(value: str) -> str:
    return _("“%(value)s”") % {"value": value}


def listing(items: Iterable[Any]) -> str:
    return pgettext("separator between items of a list in a rule", ", ").join(str(item) for item in items)


def names_by_id(model: type[Model], ids: list[int], name: Callable[[Any], str]) -> list[str]:
    """Names for ids in their order; a row deleted since the rule was saved shows as "#7 (deleted)"
    (the rule is then broken, but people still need to read what it was)."""
    rows = {row.pk: row for row in model._default_manager.filter(pk__in=ids)}
    return [name(rows[pk]) if pk in rows else _("#%(id)s (deleted)") % {"id": pk} for pk in ids]


# --- the base class --------------------------------------------------------------------------------


class Condition:
    """One kind of condition. Subclasses set `type` (the "type" key in the JSON) and `label` (for the
    builder), register themselves with @register, and implement:

    - validate(node) -> the cleaned node (a dict, JSON-serialisable, including "type"); raise RuleError
      with a path relative to the node for anything wrong. validate(validate(n)) == validate(n).
    - to_q(node, *, now, among=None) -> a Q for Contact whose negation is its exact complement, so "none of" groups
      (a NOT in SQL) mean what they say. Lookups on Contact columns are (Django adds "IS NOT NULL" under
      a negation); an expression (EXISTS, a subquery, a JSON value) must never be SQL NULL — coalesce it
      or guard it with IS NOT NULL. Sets of rows go in as EXISTS or subqueries, never as ids read into
      Python. `among`, when given, is the set of contacts the caller restricts the query to (an incremental
      refresh of a thousand touched contacts): a subquery may be narrowed to them, as the Q is then only
      asked about those contacts; without it the Q must hold for every contact.
    - describe(node) -> a phrase in the active language; must not fail on a node that was valid when saved,
      even if rows it names have since been deleted.

    And may implement:

    - count_alone(node, *, now) -> a query (values of one column) with exactly one row per contact the
      condition selects, read from another table without reading contacts, or None (the default) when it
      has none. Used only to count a rule that is this condition alone, for a user who sees every contact
      (segments.selectors.rule_count): the count is then that of the query, with no probe of the contacts
      per member. It must be exact: each row one distinct contact (GROUP BY it), each a contact that exists
      (the column a non-null foreign key to Contact), and no contact the condition selects left out (so
      never a condition that selects contacts without rows in that table).
    """

    type: ClassVar[str]
    label: ClassVar[str]

    def validate(self, node: dict) -> dict:
        raise NotImplementedError

    def to_q(self, node: dict, *, now: datetime, among: Sequence[int] | None = None) -> Q:
        raise NotImplementedError

    def describe(self, node: dict) -> str:
        raise NotImplementedError

    def count_alone(self, node: dict, *, now: datetime) -> QuerySet | None:
        return None
