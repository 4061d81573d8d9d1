"""The `field` condition: a Contact field or a custom field (`cf:<key>`) compared with an operator that
fits its kind (see kinds.py for the kinds, their operators and their semantics).

    {"type": "field", "field": "city", "op": "equals", "value": "上海"}
    {"type": "field", "field": "total_spent", "op": "between", "value": ["100", "500.50"]}
    {"type": "field", "field": "last_active_at", "op": "more_than_days_ago", "value": 30}
    {"type": "field", "field": "cf:taste", "op": "in", "value": ["辣"]}
    {"type": "field", "field": "opted_out", "op": "is_false"}
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext_lazy

from contacts.models import Contact, CustomField, CustomFieldKind, Gender, Source
from contacts.selectors import custom_field_label

from .base import Condition, Params, RuleError, shown
from .kinds import (
    Accessor,
    BooleanKind,
    ChoiceKind,
    Column,
    CustomValue,
    DateKind,
    DateTimeKind,
    Kind,
    MultiChoiceKind,
    NumberKind,
    TextKind,
)
from .registry import register

CUSTOM_PREFIX = "cf:"
_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,40}$")  # CustomField.key is a SlugField(max_length=40)


@dataclass(frozen=True)
class Field:
    name: str  # as written in the rule: "city", "cf:taste"
    label: str
    kind: Kind
    access: Accessor
    archived: bool = False


def _column(name: str, kind: Kind, **access: bool) -> Field:
    return Field(name, Contact._meta.get_field(name).verbose_name, kind, Column(name, **access))


CONTACT_FIELDS = {
    field.name: field
    for field in (
        _column("name", TextKind(), blank=True),
        _column("city", TextKind(), blank=True),
        _column("email", TextKind(), blank=True),
        _column("phone", TextKind(), blank=True),
        _column("gender", ChoiceKind(Gender.choices)),
        _column("source", ChoiceKind(Source.choices)),
        _column("birthday", DateKind(), nullable=True),
        _column("joined_at", DateTimeKind()),
        _column("last_active_at", DateTimeKind(never_is_old=True), nullable=True),
        _column("last_purchase_at", DateTimeKind(never_is_old=True), nullable=True),
        _column("first_purchase_at", DateTimeKind(), nullable=True),
        _column("order_count", NumberKind("integer")),
        _column("total_spent", NumberKind("money")),
        _column("opted_out", BooleanKind()),
    )
}


def _custom(custom_field: CustomField) -> Field:
    options = [(option, option) for option in custom_field.choices if isinstance(option, str)]
    kinds = {
        CustomFieldKind.TEXT: TextKind(),
        CustomFieldKind.NUMBER: NumberKind("decimal"),
        CustomFieldKind.DATE: DateKind(),
        CustomFieldKind.CHOICE: ChoiceKind(options),
        CustomFieldKind.MULTI_CHOICE: MultiChoiceKind(options),
    }
    return Field(
        f"{CUSTOM_PREFIX}{custom_field.key}",
        custom_field_label(custom_field),
        kinds[custom_field.kind],
        CustomValue(custom_field.key, numeric=custom_field.kind == CustomFieldKind.NUMBER),
        archived=custom_field.archived_at is not None,
    )


def find_field(name: Any) -> Field | None:
    """The field a rule names, or None. Custom fields are read from the database (one small query)."""
    if not isinstance(name, str):
        return None
    if not name.startswith(CUSTOM_PREFIX):
        return CONTACT_FIELDS.get(name)
    key = name.removeprefix(CUSTOM_PREFIX)
    custom_field = CustomField.objects.filter(key=key).first() if _SLUG.match(key) else None
    return None if custom_field is None else _custom(custom_field)


def _usable_field(name: Any) -> Field:
    field = find_field(name)
    if field is None:
        raise RuleError(_("Unknown field “%(field)s”.") % {"field": shown(name)})
    if field.archived:
        raise RuleError(_("The custom field “%(field)s” has been deleted.") % {"field": field.label})
    return field


def field_choices() -> list[dict]:
    """The fields a rule may use, with their kinds and operators, for the builder's menus."""
    custom = CustomField.objects.filter(archived_at__isnull=True).order_by("position", "id")
    fields = [*CONTACT_FIELDS.values(), *(_custom(f) for f in custom)]
    return [
        {
            "name": f.name,
            "label": str(f.label),
            "kind": f.kind.name,
            "operators": list(f.kind.operators(f.access)),
        }
        for f in fields
    ]


@register
class FieldCondition(Condition):
    type = "field"
    label = gettext_lazy("Contact field")

    def validate(self, node: dict) -> dict:
        params = Params(node)
        field = params.take("field", _usable_field)
        op = params.take("op", lambda value: _operator(field, value))
        cleaned = {"type": self.type, "field": field.name, "op": op, **field.kind.clean(op, params)}
        params.finish()
        return cleaned

    def to_q(self, node: dict, *, now: datetime, among: Sequence[int] | None = None) -> Q:
        field = _usable_field(node["field"])
        return field.kind.q(field.access, node["op"], node.get("value"), now)

    def describe(self, node: dict) -> str:
        name = node.get("field")
        # A custom field deleted since the rule was saved is named by its key, values as stored.
        field = find_field(name) or Field(str(name), str(name), Kind(), Column(""))
        op, value = node.get("op"), node.get("value")
        words = {"field": field.label, "op": op, "value": "" if value is None else field.kind.show(value)}
        if op == "between":
            words |= {"low": field.kind.show(value[0]), "high": field.kind.show(value[1])}
        elif op in ("within_last_days", "more_than_days_ago"):
            words["value"] = value  # a number, which picks the plural form
        described = _PHRASES.get(op, "%(field)s %(op)s %(value)s") % words
        if getattr(field.kind, "never_is_old", False) and op in ("before", "more_than_days_ago"):
            return _("%(condition)s, or never") % {"condition": described}
        return described


def _operator(field: Field, value: Any) -> str:
    operators = field.kind.operators(field.access)
    if value not in operators:
        raise RuleError(
            _("Unknown operator “%(op)s” for %(field)s; use one of: %(operators)s.")
            % {"op": shown(value), "field": field.label, "operators": ", ".join(operators)}
        )
    return value


_PHRASES = {
    "equals": gettext_lazy("%(field)s is %(value)s"),
    "not_equals": gettext_lazy("%(field)s is not %(value)s"),
    "contains": gettext_lazy("%(field)s contains %(value)s"),
    "not_contains": gettext_lazy("%(field)s does not contain %(value)s"),
    "starts_with": gettext_lazy("%(field)s starts with %(value)s"),
    "is_empty": gettext_lazy("%(field)s is empty"),
    "is_not_empty": gettext_lazy("%(field)s is not empty"),
    "in": gettext_lazy("%(field)s is one of %(value)s"),
    "not_in": gettext_lazy("%(field)s is none of %(value)s"),
    "has_any": gettext_lazy("%(field)s include any of %(value)s"),
    "has_all": gettext_lazy("%(field)s include all of %(value)s"),
    "has_none": gettext_lazy("%(field)s include none of %(value)s"),
    "eq": gettext_lazy("%(field)s = %(value)s"),
    "ne": gettext_lazy("%(field)s ≠ %(value)s"),
    "gt": gettext_lazy("%(field)s > %(value)s"),
    "gte": gettext_lazy("%(field)s ≥ %(value)s"),
    "lt": gettext_lazy("%(field)s < %(value)s"),
    "lte": gettext_lazy("%(field)s ≤ %(value)s"),
    "between": gettext_lazy("%(field)s is between %(low)s and %(high)s"),
    "before": gettext_lazy("%(field)s is before %(value)s"),
    "after": gettext_lazy("%(field)s is after %(value)s"),
    "within_last_days": ngettext_lazy(
        "%(field)s is within the last %(value)s day", "%(field)s is within the last %(value)s days", "value"
    ),
    "more_than_days_ago": ngettext_lazy(
        "%(field)s is more than %(value)s day ago", "%(field)s is more than %(value)s days ago", "value"
    ),
    "is_true": gettext_lazy("%(field)s: yes"),
    "is_false": gettext_lazy("%(field)s: no"),
}
