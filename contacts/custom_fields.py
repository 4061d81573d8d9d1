"""Validation of custom field values, shared by every door (contact form, import, API).

Storage forms in Contact.custom_fields (JSON), chosen so values compare and sort exactly:
text -> str; number -> str of a normalised Decimal ("12.5"); date -> "YYYY-MM-DD";
choice -> one option string; multi_choice -> list of option strings in the field's option order.
"""

import re
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext as _

from .models import CustomField, CustomFieldKind

TEXT_MAX_LENGTH = 500
MULTI_SEPARATORS = re.compile(r"[,，、;；]")
_DATE_PATTERNS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$"),
)


def active_fields() -> list[CustomField]:
    return list(CustomField.objects.filter(archived_at__isnull=True).order_by("position", "id"))


def _is_empty(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def parse_date_text(text: str) -> date | None:
    """A date from the forms people type in China (2024-05-01, 2024/5/1, 2024年5月1日); None if impossible."""
    text = text.strip()
    if "T" in text or " " in text:  # an ISO datetime or "2024-05-01 00:00:00" from Excel: keep the date part
        text = re.split(r"[T ]", text, maxsplit=1)[0]
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            try:
                return date(*(int(part) for part in match.groups()))
            except ValueError:
                return None
    return None


def _clean_text(field: CustomField, value) -> str:
    if not isinstance(value, str | int | float | Decimal) or isinstance(value, bool):
        raise ValueError(_("Enter text."))
    text = str(value).strip()
    if len(text) > TEXT_MAX_LENGTH:
        raise ValueError(_("At most %(n)d characters.") % {"n": TEXT_MAX_LENGTH})
    return text


def _clean_number(field: CustomField, value) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError(_("Enter a number."))
    try:
        number = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError(_("“%(value)s” is not a number.") % {"value": value}) from None
    if not number.is_finite() or abs(number) >= Decimal("1e15"):
        raise ValueError(_("“%(value)s” is not a number we can store.") % {"value": value})
    normalised = format(number.normalize(), "f")
    return normalised if normalised != "-0" else "0"


def _clean_date(field: CustomField, value) -> str:
    if isinstance(value, date):
        return value.isoformat()[:10]
    parsed = parse_date_text(value) if isinstance(value, str) else None
    if parsed is None:
        raise ValueError(_("“%(value)s” is not a valid date (use YYYY-MM-DD).") % {"value": value})
    return parsed.isoformat()


def _clean_choice(field: CustomField, value) -> str:
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else None
    if text not in field.choices:
        raise ValueError(
            _("“%(value)s” is not one of the options: %(options)s.")
            % {"value": value, "options": "、".join(field.choices)}
        )
    return text


def _clean_multi_choice(field: CustomField, value) -> list[str]:
    if isinstance(value, str):
        items = [part.strip() for part in MULTI_SEPARATORS.split(value)]
    elif isinstance(value, list | tuple):
        items = [str(part).strip() if isinstance(part, str | int) else part for part in value]
    else:
        raise ValueError(_("Enter a list of options."))
    chosen = {_clean_choice(field, item) for item in items if not _is_empty(item)}
    return [option for option in field.choices if option in chosen]


_CLEANERS = {
    CustomFieldKind.TEXT: _clean_text,
    CustomFieldKind.NUMBER: _clean_number,
    CustomFieldKind.DATE: _clean_date,
    CustomFieldKind.CHOICE: _clean_choice,
    CustomFieldKind.MULTI_CHOICE: _clean_multi_choice,
}


def clean_custom_values(
    raw: Mapping[str, object], *, fields: list[CustomField] | None = None, partial: bool = False
) -> tuple[dict[str, object], dict[str, str]]:
    """Validate `raw` (key -> value) against the active fields.

    Returns (cleaned, errors). An empty value means "no value" and is left out of `cleaned`.
    With partial=True only the keys given are checked (an update that does not mention a field keeps it).
    """
    fields = active_fields() if fields is None else fields
    by_key = {f.key: f for f in fields}
    cleaned: dict[str, object] = {}
    errors: dict[str, str] = {}
    for key in raw:
        if key not in by_key:
            errors[key] = _("Unknown custom field “%(key)s”.") % {"key": key}
    for key, field in by_key.items():
        if key not in raw:
            if field.required and not partial:
                errors[key] = _("This field is required.")
            continue
        value = raw[key]
        if _is_empty(value):
            if field.required:
                errors[key] = _("This field is required.")
            continue
        try:
            result = _CLEANERS[field.kind](field, value)
        except ValueError as exc:
            errors[key] = str(exc)
            continue
        if _is_empty(result):
            if field.required:
                errors[key] = _("This field is required.")
            continue
        cleaned[key] = result
    return cleaned, errors


def merge_custom_values(
    existing: Mapping[str, object], cleaned: Mapping[str, object], *, given_keys: Iterable[str]
):
    """The stored dict after an update: keys not given are kept; a given key with no value is removed."""
    merged = dict(existing or {})
    for key in given_keys:
        if key in cleaned:
            merged[key] = cleaned[key]
        else:
            merged.pop(key, None)
    return merged
