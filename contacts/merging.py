"""Probable duplicates and merging two contacts into one.

Phone and external user ID are unique in the database (normalised on every door), so two contacts can only
be probable duplicates by email (case-insensitive) or by the same name + city + birthday (index
contact_dupe_person). Groups are read with GROUP BY on those columns and paged by keyset on the group key.

contact_merge moves everything that belongs to the duplicate onto the survivor and deletes the duplicate.
Other apps add what they own (points, enrollments, alerts) through `handlers`: scrm.merge.merge_contacts is
the entry point that passes them, so this app never imports the apps above it.
"""

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import reduce
from operator import or_

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Lower
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .custom_fields import active_fields
from .models import AuditEntry, Contact, ContactTag, Event, Gender, Note
from .selectors import contacts_visible_to
from .services import AUDITED_FIELDS, NotAllowed, audit_record, snapshot
from .touches import contacts_touched

SURVIVOR, DUPLICATE = "survivor", "duplicate"
# The fields the user picks a value for; the rest is combined (totals, tags, opt-out, joined_at).
MERGE_FIELDS = (
    "name", "phone", "email", "external_userid", "gender", "birthday", "city", "source", "owner", "tier",
    "time_zone",
)  # fmt: skip
UNIQUE_FIELDS = ("phone", "external_userid", "email")
CUSTOM_PREFIX = "custom:"
REASONS = {
    "email": gettext_lazy("Same email"),
    "person": gettext_lazy("Same name, city and birthday"),
}
TOTAL_FIELDS = ("order_count", "total_spent", "first_purchase_at", "last_purchase_at", "last_active_at")

MergeHandler = Callable[..., Mapping[str, int] | None]


class MergeError(ValueError):
    """The merge was refused; the message says why. Nothing was changed."""


# --- probable duplicates ---------------------------------------------------------------------------


@dataclass
class DuplicateGroup:
    reason: str
    key: tuple
    contacts: list[Contact] = field(default_factory=list)

    @property
    def survivor(self) -> Contact:
        """The suggested survivor: the most orders, then the most recently active, then the oldest."""
        return min(
            self.contacts, key=lambda c: (-c.order_count, -(c.last_active_at or _EPOCH).timestamp(), c.pk)
        )

    @property
    def others(self) -> list[Contact]:
        survivor = self.survivor
        return [c for c in self.contacts if c.pk != survivor.pk]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _encode_key(key: tuple) -> str:
    raw = json.dumps(list(key), separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_key(token: str, reason: str) -> tuple | None:
    try:
        values = json.loads(base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode()))
        if reason == "email" and len(values) == 1 and isinstance(values[0], str):
            return (values[0],)
        if reason == "person" and len(values) == 3 and all(isinstance(v, str) for v in values):
            return values[0], values[1], date.fromisoformat(values[2])
    except (binascii.Error, ValueError, TypeError):
        pass
    return None


def _group_keys(visible: QuerySet[Contact], reason: str, after: tuple | None, size: int) -> list[tuple]:
    if reason == "email":
        # Served by an index on lower(email) WHERE email <> '' when it exists (ask: migration); else one scan.
        qs = visible.exclude(email="").annotate(key=Lower("email"))
        if after:
            qs = qs.filter(key__gt=after[0])
        rows = qs.values("key").annotate(n=Count("id")).filter(n__gt=1).order_by("key")[:size]
        return [(row["key"],) for row in rows]
    qs = visible.filter(birthday__isnull=False)
    if after:
        name, city, birthday = after
        # The redundant name >= bound keeps it an index range scan on (name, city, birthday).
        qs = qs.filter(
            Q(name__gte=name)
            & (
                Q(name__gt=name)
                | Q(name=name, city__gt=city)
                | Q(name=name, city=city, birthday__gt=birthday)
            )
        )
    rows = (
        qs.values("name", "city", "birthday")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .order_by(*("name", "city", "birthday"))
    )[:size]
    return [(row["name"], row["city"], row["birthday"]) for row in rows]


def _group_members(visible: QuerySet[Contact], reason: str, keys: list[tuple]) -> dict[tuple, list[Contact]]:
    qs = visible.select_related("owner", "tier").order_by("pk")
    if reason == "email":
        # `email <> ''` lets PostgreSQL use a partial index on lower(email) (see _group_keys).
        rows = qs.exclude(email="").annotate(key=Lower("email")).filter(key__in=[k[0] for k in keys])
        key_of = lambda c: (c.key,)  # noqa: E731
    else:
        rows = qs.filter(reduce(or_, (Q(name=n, city=c, birthday=b) for n, c, b in keys)))
        key_of = lambda c: (c.name, c.city, c.birthday)  # noqa: E731
    members: dict[tuple, list[Contact]] = {key: [] for key in keys}
    for contact in rows:
        members.setdefault(key_of(contact), []).append(contact)
    return members


def duplicate_groups(user, *, reason: str, cursor: str | None = None, size: int = 20):
    """One page of probable-duplicate groups among the contacts `user` can see.

    Returns (groups, next_cursor). A forged or stale cursor starts from the first page.
    """
    if reason not in REASONS:
        raise ValueError(reason)
    visible = contacts_visible_to(user)
    after = _decode_key(cursor, reason) if cursor else None
    keys = _group_keys(visible, reason, after, size + 1)
    has_more = len(keys) > size
    keys = keys[:size]
    if not keys:
        return [], None
    members = _group_members(visible, reason, keys)
    groups = [DuplicateGroup(reason, key, members[key]) for key in keys if len(members.get(key, [])) > 1]
    last = keys[-1]
    next_cursor = (
        _encode_key(tuple(v.isoformat() if isinstance(v, date) else v for v in last)) if has_more else None
    )
    return groups, next_cursor


def probable_duplicates_of(user, contact: Contact, limit: int = 5) -> list[Contact]:
    """Other visible contacts that look like the same person (for a hint on the contact page)."""
    conditions = []
    if contact.email:
        # lower(email) with `email <> ''`: the partial index the duplicates page uses (not iexact's UPPER()).
        conditions.append(Q(email_key=contact.email.lower()) & ~Q(email=""))
    if contact.birthday:
        conditions.append(Q(name=contact.name, city=contact.city, birthday=contact.birthday))
    if not conditions:
        return []
    return list(
        contacts_visible_to(user)
        .alias(email_key=Lower("email"))
        .filter(reduce(or_, conditions))
        .exclude(pk=contact.pk)
        .order_by("pk")[:limit]
    )


# --- the merge screen ----------------------------------------------------------------------------


@dataclass
class FieldRow:
    key: str  # a MERGE_FIELDS name or "custom:<key>"
    label: str
    survivor_value: str
    duplicate_value: str
    default: str  # SURVIVOR | DUPLICATE

    @property
    def differs(self) -> bool:
        return self.survivor_value != self.duplicate_value


@dataclass
class MergePreview:
    rows: list[FieldRow]
    events: int
    notes: int
    tags: int
    audit: int


def _is_blank(value) -> bool:
    return value in (None, "", [], Gender.UNKNOWN)


def _attname(name: str) -> str:
    return f"{name}_id" if name in ("owner", "tier") else name


def _display(contact: Contact, name: str) -> str:
    value = getattr(contact, name)
    if name in ("gender", "source"):
        return str(getattr(contact, f"get_{name}_display")()) if not _is_blank(value) else ""
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def _custom_display(value) -> str:
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return "" if value is None else str(value)


def _default_choice(survivor_value, duplicate_value) -> str:
    return DUPLICATE if _is_blank(survivor_value) and not _is_blank(duplicate_value) else SURVIVOR


def merge_preview(survivor: Contact, duplicate: Contact) -> MergePreview:
    """The fields to choose between (defaulting to the non-empty value) and what will move."""
    rows = [
        FieldRow(
            key=name,
            label=str(Contact._meta.get_field(name).verbose_name),
            survivor_value=_display(survivor, name),
            duplicate_value=_display(duplicate, name),
            default=_default_choice(getattr(survivor, _attname(name)), getattr(duplicate, _attname(name))),
        )
        for name in MERGE_FIELDS
    ]
    for custom_field in active_fields():
        mine, theirs = (
            survivor.custom_fields.get(custom_field.key),
            duplicate.custom_fields.get(custom_field.key),
        )
        if mine is None and theirs is None:
            continue
        rows.append(
            FieldRow(
                key=CUSTOM_PREFIX + custom_field.key,
                label=custom_field.label_zh,
                survivor_value=_custom_display(mine),
                duplicate_value=_custom_display(theirs),
                default=_default_choice(mine, theirs),
            )
        )
    survivor_tags = ContactTag.objects.filter(contact=survivor).values("tag_id")
    return MergePreview(
        rows=rows,
        events=Event.objects.filter(contact=duplicate).count(),
        notes=Note.objects.filter(contact=duplicate).count(),
        tags=ContactTag.objects.filter(contact=duplicate).exclude(tag_id__in=survivor_tags).count(),
        audit=AuditEntry.objects.filter(contact=duplicate).count(),
    )


# --- the merge -----------------------------------------------------------------------------------------


def _merge_snapshot(contact: Contact) -> dict:
    return {
        "id": contact.pk,
        **snapshot(contact, AUDITED_FIELDS),
        **snapshot(contact, TOTAL_FIELDS),
        "custom_fields": dict(contact.custom_fields or {}),
    }


def _validate_choices(field_choices: Mapping[str, str], custom_keys: Iterable[str]) -> None:
    allowed = set(MERGE_FIELDS) | {CUSTOM_PREFIX + key for key in custom_keys}
    for key, choice in field_choices.items():
        if key not in allowed:
            raise MergeError(_("Unknown field “%(field)s” in the merge choices.") % {"field": key})
        if choice not in (SURVIVOR, DUPLICATE):
            raise MergeError(
                _("Choose the survivor's or the duplicate's value for “%(field)s”.") % {"field": key}
            )


def _lock_pair(actor, survivor_id: int, duplicate_id: int) -> tuple[Contact, Contact]:
    if survivor_id == duplicate_id:
        raise MergeError(_("A contact cannot be merged with itself."))
    locked = {
        c.pk: c
        for c in contacts_visible_to(actor)
        .filter(pk__in=[survivor_id, duplicate_id])
        .order_by("pk")
        .select_for_update()
    }
    if len(locked) != 2:
        raise NotAllowed("merge")
    return locked[survivor_id], locked[duplicate_id]


def _pick(survivor: Contact, duplicate: Contact, field_choices: Mapping[str, str]) -> dict:
    """Field name -> the chosen value (attnames for owner/tier); unchosen fields keep the non-empty value."""
    picked = {}
    for name in MERGE_FIELDS:
        attr = _attname(name)
        mine, theirs = getattr(survivor, attr), getattr(duplicate, attr)
        choice = field_choices.get(name) or _default_choice(mine, theirs)
        picked[attr] = theirs if choice == DUPLICATE else mine
    return picked


def _merged_custom(survivor: Contact, duplicate: Contact, field_choices: Mapping[str, str]) -> dict:
    merged = {**(duplicate.custom_fields or {}), **(survivor.custom_fields or {})}  # survivor wins by default
    for key, theirs in (duplicate.custom_fields or {}).items():
        mine = (survivor.custom_fields or {}).get(key)
        choice = field_choices.get(CUSTOM_PREFIX + key) or _default_choice(mine, theirs)
        merged[key] = theirs if choice == DUPLICATE else mine
    for key, choice in field_choices.items():  # choosing an empty duplicate value removes the survivor's
        custom_key = key.removeprefix(CUSTOM_PREFIX)
        if (
            key.startswith(CUSTOM_PREFIX)
            and choice == DUPLICATE
            and custom_key not in (duplicate.custom_fields or {})
        ):
            merged.pop(custom_key, None)
    return {key: value for key, value in merged.items() if value is not None}


def _move_related(survivor: Contact, duplicate: Contact) -> dict[str, int]:
    kept_tags = ContactTag.objects.filter(contact=survivor).values("tag_id")
    return {
        "events": Event.objects.filter(contact=duplicate).update(contact=survivor),
        "notes": Note.objects.filter(contact=duplicate).update(contact=survivor),
        "tags": ContactTag.objects.filter(contact=duplicate)
        .exclude(tag_id__in=kept_tags)
        .update(contact=survivor),
        "audit": AuditEntry.objects.filter(contact=duplicate).update(contact=survivor),
    }


def _combine_activity(survivor: Contact, duplicate: Contact) -> None:
    """Totals of both: counts and money add up, first is the earlier, last the later."""
    survivor.order_count += duplicate.order_count
    survivor.total_spent += duplicate.total_spent
    for name, pick in (("first_purchase_at", min), ("last_purchase_at", max), ("last_active_at", max)):
        values = [v for v in (getattr(survivor, name), getattr(duplicate, name)) if v is not None]
        setattr(survivor, name, pick(values) if values else None)
    survivor.joined_at = min(survivor.joined_at, duplicate.joined_at)
    if duplicate.opted_out and not survivor.opted_out:  # a customer who said "do not disturb" stays opted out
        survivor.opted_out = True
        survivor.opted_out_at = duplicate.opted_out_at
        survivor.opted_out_reason = duplicate.opted_out_reason


@transaction.atomic
def contact_merge(
    *,
    actor,
    survivor: Contact,
    duplicate: Contact,
    field_choices: Mapping[str, str],
    handlers: Iterable[MergeHandler] = (),
) -> Contact:
    """Merge `duplicate` into `survivor` and delete it. Both must be visible to `actor` (else NotAllowed).

    field_choices: field name (or "custom:<key>") -> "survivor" | "duplicate"; a field not named keeps the
    non-empty value, the survivor's first. Each handler(actor=, survivor=, duplicate=) moves what another app
    owns before the duplicate is deleted and may return counts for the audit entry.
    """
    survivor, duplicate = _lock_pair(actor, survivor.pk, duplicate.pk)
    custom_keys = (
        {f.key for f in active_fields()}
        | set(duplicate.custom_fields or {})
        | set(survivor.custom_fields or {})
    )
    _validate_choices(field_choices, custom_keys)
    before = {"survivor": _merge_snapshot(survivor), "duplicate": _merge_snapshot(duplicate)}
    picked = _pick(survivor, duplicate, field_choices)
    custom = _merged_custom(survivor, duplicate, field_choices)
    # The loser lets go of its unique values first, so the survivor can take them.
    Contact.objects.filter(pk=duplicate.pk).update(**{name: "" for name in UNIQUE_FIELDS})
    moved = _move_related(survivor, duplicate)
    for handler in handlers:
        moved.update(handler(actor=actor, survivor=survivor, duplicate=duplicate) or {})
    _combine_activity(survivor, duplicate)
    duplicate_id = duplicate.pk
    duplicate.delete()
    for attr, value in picked.items():
        setattr(survivor, attr, value)
    survivor.custom_fields = custom
    survivor.save()
    contacts_touched([survivor.pk])  # the duplicate's memberships went with it (CASCADE)
    audit_record(
        actor=actor,
        action="contact.merged",
        obj=survivor,
        contact=survivor,
        before=before,
        after={"survivor": _merge_snapshot(survivor), "merged_id": duplicate_id, "moved": moved},
    )
    return survivor
