"""Row validation: one row of cells -> the values to save, or the reason the row cannot be imported.

Only mapped columns with a value count: an empty cell never erases what a contact already has.
Everything a row needs from the database (owners, tiers, custom fields) is looked up once per job.
"""

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..custom_fields import MULTI_SEPARATORS, active_fields, clean_custom_values, parse_date_text
from ..events import validate_event_fields
from ..models import EventKind, Gender, Source, Tier
from ..phones import InvalidPhone, normalise_phone
from ..selectors import owners_assignable_by
from .mapping import CUSTOM_PREFIX, KEY_FIELDS, column_targets

EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
MAX_LENGTHS = {"name": 100, "email": 254, "external_userid": 64, "city": 50}
TAG_MAX_LENGTH = 50
FIELD_LABELS = {"name": gettext_lazy("Name"), "email": gettext_lazy("Email"),
                "external_userid": gettext_lazy("External user ID"), "city": gettext_lazy("City")}  # fmt: skip


def _choices_by_text(choices) -> dict[str, str]:
    """Value, English label and the Chinese in brackets of a label, all lower-cased -> value."""
    result = {}
    for value, label in choices:
        label = str(label)
        result[value.lower()] = value
        result[label.lower()] = value
        for part in re.findall(r"[(（]([^)）]+)[)）]", label):
            result[part.lower()] = value
        result[re.sub(r"\s*[(（].*$", "", label).lower()] = value
    return result


GENDERS = {**_choices_by_text(Gender.choices), "男": "male", "女": "female", "未知": "unknown", "m": "male",
           "f": "female", "男性": "male", "女性": "female"}  # fmt: skip
SOURCES = {**_choices_by_text(Source.choices), "好友": "friend", "社群": "group", "群": "group",
           "公众号": "official_account", "小程序": "mini_program", "门店": "store", "导入": "import"}  # fmt: skip
KINDS = {**_choices_by_text(EventKind.choices), "购买": "purchase", "下单": "purchase", "订单": "purchase",
         "退款": "refund", "签到": "check_in"}  # fmt: skip


@dataclass
class ContactRow:
    line: int
    cells: list[str]
    values: dict = field(default_factory=dict)  # model field (owner_id, tier_id, …) -> cleaned value
    tags: tuple[str, ...] = ()
    custom: dict = field(default_factory=dict)

    def match_keys(self) -> list[tuple[str, str]]:
        return [(name, self.values[name]) for name in KEY_FIELDS if self.values.get(name)]


@dataclass
class EventRow:
    line: int
    cells: list[str]
    keys: list[tuple[str, str]]
    kind: str
    occurred_at: datetime
    amount: Decimal | None
    order_id: str


class RowError(Exception):
    def __init__(self, line: int, cells: list[str], reason: str):
        super().__init__(reason)
        self.line, self.cells, self.reason = line, cells, reason


def _cell(cells: list[str], index: int | None) -> str:
    return cells[index].strip() if index is not None and index < len(cells) else ""


def _clean_keys(get, errors: list[str]) -> dict:
    values = {}
    ext = get("external_userid")
    if ext:
        values["external_userid"] = ext
    phone = get("phone")
    if phone:
        try:
            values["phone"] = normalise_phone(phone)
        except InvalidPhone:
            errors.append(_("Phone “%(value)s” is not a valid phone number.") % {"value": phone})
    email = get("email")
    if email:
        if EMAIL.match(email):
            values["email"] = email.lower()
        else:
            errors.append(_("Email “%(value)s” is not a valid email address.") % {"value": email})
    return values


# The columns ContactRowParser.parse reads by name (mapped or not).
READ_FIELDS = ("external_userid", "phone", "email", "name", "city", "gender", "source", "birthday", "owner", "tier",
               "tags")  # fmt: skip


class ContactRowParser:
    def __init__(self, *, actor, headers: list[str], mapping: dict[str, str]):
        self.columns = column_targets(headers, mapping)
        self.fields = active_fields()
        self.custom_columns = {
            target.removeprefix(CUSTOM_PREFIX): index
            for target, index in self.columns.items()
            if target.startswith(CUSTOM_PREFIX)
        }
        self.plain_columns = list(self.columns.items())
        self.blank = dict.fromkeys((*READ_FIELDS, *self.columns), "")
        self.tiers = {tier.name.lower(): tier.pk for tier in Tier.objects.all()}
        self.owners, self.outsiders = _owner_lookup(actor) if "owner" in self.columns else ({}, {})

    def parse(self, line: int, cells: list[str]) -> ContactRow:
        # Every cell the checks below read, stripped once ("" where unmapped or missing): a dict's bound
        # __getitem__ is a third of what a closure per lookup cost (a million rows: ~4 s).
        found = dict(self.blank)
        width = len(cells)
        for name, index in self.plain_columns:
            if index < width:
                found[name] = cells[index].strip()
        get = found.__getitem__
        errors: list[str] = []
        values = _clean_keys(get, errors)
        name = get("name")
        if name:
            values["name"] = name
        if get("city"):
            values["city"] = get("city")
        for key, limit in MAX_LENGTHS.items():
            if len(values.get(key, "")) > limit:
                label = FIELD_LABELS[key]
                errors.append(_("%(field)s is longer than %(n)d characters.") % {"field": label, "n": limit})
        self._clean_choices(get, values, errors)
        self._clean_relations(get, values, errors)
        tags = self._clean_tags(get("tags"), errors)
        custom = self._clean_custom(cells, errors)
        if not values.get("name") and not errors:
            errors.append(_("The name is empty."))
        if not any(values.get(key) for key in KEY_FIELDS) and not errors:
            errors.append(_("No external user ID, phone or email to match the contact by."))
        if errors:
            raise RowError(line, cells, " ".join(errors))
        return ContactRow(line, cells, values, tags, custom)

    def _clean_choices(self, get, values: dict, errors: list[str]) -> None:
        gender = get("gender")
        if gender:
            if gender.lower() in GENDERS:
                values["gender"] = GENDERS[gender.lower()]
            else:
                errors.append(_("Unknown gender “%(value)s”.") % {"value": gender})
        source = get("source")
        if source:
            if source.lower() in SOURCES:
                values["source"] = SOURCES[source.lower()]
            else:
                errors.append(_("Unknown source “%(value)s”.") % {"value": source})
        birthday = get("birthday")
        if birthday:
            parsed = parse_date_text(birthday)
            if parsed is None or parsed > date.today():
                errors.append(_("Birthday “%(value)s” is not a valid date.") % {"value": birthday})
            else:
                values["birthday"] = parsed

    def _clean_relations(self, get, values: dict, errors: list[str]) -> None:
        owner = get("owner")
        if owner:
            if owner in self.owners:
                values["owner_id"] = self.owners[owner]
            elif owner in self.outsiders:
                errors.append(_("Owner “%(value)s” is not in your team.") % {"value": owner})
            else:
                errors.append(_("Unknown owner “%(value)s”.") % {"value": owner})
        tier = get("tier")
        if tier:
            if tier.lower() in self.tiers:
                values["tier_id"] = self.tiers[tier.lower()]
            else:
                errors.append(_("Unknown tier “%(value)s”.") % {"value": tier})

    def _clean_tags(self, text: str, errors: list[str]) -> tuple[str, ...]:
        if not text:
            return ()
        names = tuple(dict.fromkeys(part.strip() for part in MULTI_SEPARATORS.split(text) if part.strip()))
        for name in names:
            if len(name) > TAG_MAX_LENGTH:
                errors.append(
                    _("Tag “%(value)s” is longer than %(n)d characters.")
                    % {"value": name, "n": TAG_MAX_LENGTH}
                )
        return names

    def _clean_custom(self, cells: list[str], errors: list[str]) -> dict:
        if not self.custom_columns:
            return {}
        raw = {key: _cell(cells, index) for key, index in self.custom_columns.items()}
        raw = {key: value for key, value in raw.items() if value}
        if not raw:
            return {}
        cleaned, problems = clean_custom_values(raw, fields=self.fields, partial=True)
        labels = {f.key: f.label_zh for f in self.fields}
        errors.extend(f"{labels.get(key, key)}: {message}" for key, message in problems.items())
        return cleaned


def _owner_lookup(actor) -> tuple[dict[str, int], dict[str, int]]:
    """(name -> id of users the actor may assign, name -> id of other active users); a username wins over a
    display name, and a display name two users share names neither."""
    User = get_user_model()
    assignable = set(owners_assignable_by(actor).values_list("pk", flat=True))
    by_username, by_display, shared = {}, {}, set()
    for pk, username, display in User.objects.filter(is_active=True).values_list(
        "pk", "username", "display_name"
    ):
        by_username[username] = pk
        if display:
            if display in by_display and by_display[display] != pk:
                shared.add(display)
            by_display[display] = pk
    names = {name: pk for name, pk in by_display.items() if name not in shared}
    names.update(by_username)
    return (
        {name: pk for name, pk in names.items() if pk in assignable},
        {name: pk for name, pk in names.items() if pk not in assignable},
    )


# --- events -----------------------------------------------------------------------------------------

_DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M")


def parse_datetime_text(text: str, tz: ZoneInfo) -> datetime | None:
    """An aware datetime from ISO 8601 or the usual spreadsheet forms; a date alone is midnight; naive
    times are in `tz` (the importer's time zone)."""
    text = text.strip()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
        for fmt in _DATETIME_FORMATS:
            try:
                value = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        if value is None:
            day = parse_date_text(text)
            value = datetime.combine(day, time(0)) if day else None
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=tz)


class EventRowParser:
    def __init__(self, *, headers: list[str], mapping: dict[str, str], tz: ZoneInfo):
        self.columns = column_targets(headers, mapping)
        self.tz = tz

    def parse(self, line: int, cells: list[str]) -> EventRow:
        def get(name):
            return _cell(cells, self.columns.get(name))

        errors: list[str] = []
        keys = list(_clean_keys(get, errors).items())
        if not keys and not errors:
            errors.append(_("No external user ID, phone or email to find the contact by."))
        kind_text = get("kind")
        kind = KINDS.get(kind_text.lower(), kind_text)
        occurred_text = get("occurred_at")
        occurred_at = parse_datetime_text(occurred_text, self.tz) if occurred_text else None
        if occurred_text and occurred_at is None:
            errors.append(_("Time “%(value)s” is not a valid date and time.") % {"value": occurred_text})
        amount, amount_text = None, get("amount").replace(",", "").lstrip("¥￥")
        if amount_text:
            try:
                amount = Decimal(amount_text)
            except InvalidOperation:
                errors.append(_("Amount “%(value)s” is not a number.") % {"value": get("amount")})
        order_id = get("order_id")
        field_errors = validate_event_fields(
            kind=kind, occurred_at=occurred_at, amount=amount, order_id=order_id
        )
        if occurred_text and occurred_at is None:
            field_errors.pop("occurred_at", None)  # already said why
        if amount_text and amount is None:
            field_errors.pop("amount", None)
        errors.extend(message for message in field_errors.values())
        if errors:
            raise RowError(line, cells, " ".join(dict.fromkeys(errors)))
        return EventRow(line, cells, keys, kind, occurred_at, amount, order_id)
