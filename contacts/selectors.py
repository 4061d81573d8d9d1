"""Reads that more than one view (and later the API and other apps) reuse."""

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.db.models import BooleanField, Case, DecimalField, Exists, OuterRef, Q, QuerySet, TextField, When
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import get_language

from accounts.roles import Role, role_of

from .custom_fields import active_fields
from .models import AuditEntry, Contact, ContactTag, CustomField, CustomFieldKind, Event, Note
from .page_extensions import timeline_sources
from .phones import InvalidPhone, normalise_phone, phone_search_digits


def team_member_ids(manager) -> list[int]:
    """The manager and the operators they manage."""
    User = get_user_model()
    return list(User.objects.filter(Q(pk=manager.pk) | Q(manager=manager)).values_list("pk", flat=True))


def contacts_visible_to(user) -> QuerySet[Contact]:
    """The one scope for every view and API query: operators see their own contacts, managers their
    team's and the unassigned pool (公海) so they can hand it out, admins everything."""
    role = role_of(user)
    if role == Role.ADMIN:
        return Contact.objects.all()
    if role == Role.MANAGER:
        return Contact.objects.filter(Q(owner_id__in=team_member_ids(user)) | Q(owner__isnull=True))
    if role == Role.OPERATOR:
        return Contact.objects.filter(owner=user)
    return Contact.objects.none()


def sees_every_contact(user) -> bool:
    """Whether contacts_visible_to(user) is the whole table, unfiltered (an admin): then a count over
    another table's foreign key to contacts is a count of contacts this user sees."""
    return not contacts_visible_to(user).query.has_filters()


def contact_for_user(user, pk) -> Contact:
    """The contact if `user` may see it, else 404 (never 403: existence is not disclosed)."""
    return get_object_or_404(contacts_visible_to(user).select_related("owner", "tier"), pk=pk)


def owners_assignable_by(user) -> QuerySet:
    """Active users a manager (their team) or an admin (everyone) may give contacts to."""
    User = get_user_model()
    qs = User.objects.filter(is_active=True).order_by("display_name", "username")
    if role_of(user) == Role.ADMIN:
        return qs
    return qs.filter(pk__in=team_member_ids(user))


@dataclass
class CustomFieldFilter:
    """One custom field condition of the list: text contains/equals, number min/max, date from/to,
    choice (and multiple choice) has the option."""

    key: str
    kind: str
    value: str = ""
    op: str = "contains"  # text only: "contains" | "equals"
    min: Decimal | None = None
    max: Decimal | None = None
    date_from: date | None = None
    date_to: date | None = None


@dataclass
class ContactFilters:
    """Validated list filters; see contacts.forms.ContactFilterForm for parsing the query string."""

    q: str = ""
    owner: int | None = None
    unassigned: bool = False
    tags: list[int] = field(default_factory=list)
    tier: int | None = None
    no_tier: bool = False
    source: str = ""
    opted_out: bool | None = None
    inactive_days: int | None = None
    custom: CustomFieldFilter | None = None


def search_contacts(qs: QuerySet[Contact], query: str) -> QuerySet[Contact]:
    """Search by name, phone or email. A whole phone number is an exact (unique index) lookup,
    digits are a substring of the phone, text with @ searches email, anything else the name."""
    query = query.strip()
    if not query:
        return qs
    digits = phone_search_digits(query)
    if digits:
        try:
            return qs.filter(phone=normalise_phone(query))
        except InvalidPhone:
            return qs.filter(phone__contains=digits)
    if "@" in query:
        return qs.filter(email__icontains=query)
    return qs.filter(name__icontains=query)


def filter_contacts(qs: QuerySet[Contact], filters: ContactFilters) -> QuerySet[Contact]:
    qs = search_contacts(qs, filters.q)
    if filters.unassigned:
        qs = qs.filter(owner__isnull=True)
    elif filters.owner:
        qs = qs.filter(owner_id=filters.owner)
    for tag_id in filters.tags:
        qs = qs.filter(Exists(ContactTag.objects.filter(contact=OuterRef("pk"), tag_id=tag_id)))
    if filters.no_tier:
        qs = qs.filter(tier__isnull=True)
    elif filters.tier:
        qs = qs.filter(tier_id=filters.tier)
    if filters.source:
        qs = qs.filter(source=filters.source)
    if filters.opted_out is not None:
        qs = qs.filter(opted_out=filters.opted_out)
    if filters.inactive_days:
        since = timezone.now() - timedelta(days=filters.inactive_days)
        qs = qs.filter(Q(last_active_at__lt=since) | Q(last_active_at__isnull=True))
    if filters.custom:
        qs = filter_by_custom_field(qs, filters.custom)
    return qs


# --- custom fields ---------------------------------------------------------------------------------

_NUMBER_TEXT = r"^-?[0-9]+(\.[0-9]+)?$"


def custom_field_label(custom_field: CustomField) -> str:
    """The label in the active language: Chinese for zh-*, English otherwise."""
    return custom_field.label_zh if (get_language() or "").startswith("zh") else custom_field.label_en


def custom_field_choices(*, include_archived: bool = False) -> list[tuple[str, str]]:
    """(key, label) of the fields, in their order, for selects in forms."""
    fields = CustomField.objects.all() if include_archived else active_fields()
    return [(f.key, custom_field_label(f)) for f in fields]


def _value_text(key: str):
    """The stored value as plain text. (The Cast drops the JSON key lookups, which on SQLite would
    expect JSON on the right-hand side of =, <, >.)"""
    return Cast(KeyTextTransform(key, "custom_fields"), TextField())


def _has_option(qs: QuerySet[Contact], key: str, option: str, *, multi: bool) -> QuerySet[Contact]:
    """Contacts whose field `key` is (choice) or includes (multiple choice) `option`.

    PostgreSQL: jsonb containment (@>), which a GIN index on custom_fields serves. SQLite has no JSON
    containment, so a multiple choice looks through the array with json_each.
    """
    if connections[qs.db].vendor == "postgresql":
        return qs.filter(custom_fields__contains={key: [option] if multi else option})
    if not multi:
        return qs.alias(_cf_text=_value_text(key)).filter(_cf_text=option)
    table = Contact._meta.db_table
    member = RawSQL(
        f'EXISTS (SELECT 1 FROM json_each("{table}"."custom_fields", %s) AS cf WHERE cf.value = %s)',
        (f'$."{key}"', option),
        output_field=BooleanField(),
    )
    return qs.filter(member)


def _as_number(qs: QuerySet[Contact], key: str):
    """The stored number string cast to numeric. On PostgreSQL a value that is not a number (only
    possible if someone bypassed validation) is NULL instead of an error."""
    number = Cast(_value_text(key), DecimalField(max_digits=30, decimal_places=10))
    if connections[qs.db].vendor != "postgresql":
        return number
    return Case(
        When(Q(_cf_text__regex=_NUMBER_TEXT), then=number), default=None, output_field=number.output_field
    )


def _has_condition(f: CustomFieldFilter) -> bool:
    if f.kind == CustomFieldKind.NUMBER:
        return f.min is not None or f.max is not None
    if f.kind == CustomFieldKind.DATE:
        return bool(f.date_from or f.date_to)
    return bool(f.value)


def filter_by_custom_field(qs: QuerySet[Contact], f: CustomFieldFilter) -> QuerySet[Contact]:
    """Contacts matching the condition; a field chosen without a condition means "has a value"."""
    if not _has_condition(f):
        return contacts_with_value(qs, f.key)
    if f.kind in (CustomFieldKind.CHOICE, CustomFieldKind.MULTI_CHOICE):
        return _has_option(qs, f.key, f.value, multi=f.kind == CustomFieldKind.MULTI_CHOICE)
    if f.kind == CustomFieldKind.TEXT and f.op == "equals":
        return _has_option(
            qs, f.key, f.value, multi=False
        )  # exact, like a choice (index-served on PostgreSQL)
    qs = qs.alias(_cf_text=_value_text(f.key))
    if f.kind == CustomFieldKind.TEXT:
        return qs.filter(_cf_text__icontains=f.value)
    if f.kind == CustomFieldKind.NUMBER:
        qs = qs.alias(_cf_number=_as_number(qs, f.key))
        if f.min is not None:
            qs = qs.filter(_cf_number__gte=f.min)
        if f.max is not None:
            qs = qs.filter(_cf_number__lte=f.max)
    if f.kind == CustomFieldKind.DATE:  # stored as YYYY-MM-DD, so text order is date order
        if f.date_from:
            qs = qs.filter(_cf_text__gte=f.date_from.isoformat())
        if f.date_to:
            qs = qs.filter(_cf_text__lte=f.date_to.isoformat())
    return qs


def contacts_with_value(qs: QuerySet[Contact], key: str) -> QuerySet[Contact]:
    return qs.filter(custom_fields__has_key=key)


def count_capped(qs: QuerySet, cap: int | None = None) -> "Total":
    """An exact count that stops at `cap` (CONTACT_COUNT_CAP), for pages that must stay fast."""
    cap = cap or settings.CONTACT_COUNT_CAP
    n = qs.order_by()[: cap + 1].count()
    return Total(min(n, cap), exact=n <= cap)


def custom_field_usage(custom_field: CustomField, *, cap: int | None = None) -> "Total":
    """How many contacts hold a value for the field (archived or not), capped."""
    return count_capped(contacts_with_value(Contact.objects.all(), custom_field.key), cap)


def option_usage(custom_field: CustomField, options, *, cap: int | None = None) -> dict[str, "Total"]:
    """For each option, how many contacts use it (capped); only options in use are returned."""
    multi = custom_field.kind == CustomFieldKind.MULTI_CHOICE
    usage = {}
    for option in options:
        total = count_capped(_has_option(Contact.objects.all(), custom_field.key, option, multi=multi), cap)
        if total.value:
            usage[option] = total
    return usage


def contact_custom_values(contact: Contact) -> tuple[list[dict], list[dict]]:
    """The contact's custom field values for display: (active rows, archived rows). Each row has
    field, label and value (a list for multiple choice). Active fields without a value are included
    with value None; values whose field no longer exists at all are left out."""
    values = contact.custom_fields or {}
    active, archived = [], []
    for f in CustomField.objects.all():
        value = values.get(f.key)
        row = {"field": f, "label": custom_field_label(f), "value": value, "key": f.key}
        if f.archived_at is None:
            active.append(row)
        elif value not in (None, "", []):
            archived.append(row)
    return active, archived


@dataclass
class Total:
    value: int
    exact: bool  # False: "more than value" (capped) or a planner estimate


def estimate_total(qs: QuerySet[Contact], *, unfiltered: bool) -> Total:
    """How many rows match, without counting a million rows per page view.

    The whole table on PostgreSQL: the planner's row estimate (pg_class.reltuples). Otherwise
    an exact count that stops at CONTACT_COUNT_CAP.
    """
    cap = settings.CONTACT_COUNT_CAP
    if unfiltered and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [Contact._meta.db_table]
            )
            row = cursor.fetchone()
        if row and row[0] > cap:
            return Total(int(row[0]), exact=False)
    n = qs.order_by()[: cap + 1].count()
    return Total(min(n, cap), exact=n <= cap)


@dataclass
class TimelineItem:
    kind: str  # "event" | "note" | "audit", or a registered source's name (contacts.page_extensions)
    at: object
    obj: object
    template: str = ""  # a registered source's item template


# Sources of the timeline, in tie-break order (higher first at the same instant).
_TIMELINE_SOURCES = (("event", 3), ("note", 2), ("audit", 1))


def contact_timeline(contact: Contact, *, before: tuple | None, size: int = 20):
    """Events, notes and audit entries of one contact (and the sources other apps registered in
    contacts.page_extensions), newest first, keyset-paginated.

    `before` is (timestamp, source rank, id) of the last item shown. Each source reads at most
    size+1 rows from its "(contact, -time, -id)" index; the sources are merged in Python.
    """
    querysets = {
        "event": (Event.objects.filter(contact=contact), "occurred_at", ""),
        "note": (Note.objects.filter(contact=contact).select_related("author"), "created_at", ""),
        "audit": (AuditEntry.objects.filter(contact=contact).select_related("actor"), "created_at", ""),
    }
    sources = list(_TIMELINE_SOURCES)
    for extra in timeline_sources():
        querysets[extra.name] = (extra.queryset(contact), extra.time_field, extra.template)
        sources.append((extra.name, extra.rank))
    merged = []
    for name, rank in sources:
        qs, time_field, template = querysets[name]
        if before:
            at, before_rank, before_id = before
            if rank < before_rank:
                qs = qs.filter(**{f"{time_field}__lte": at})
            elif rank == before_rank:
                qs = qs.filter(Q(**{f"{time_field}__lt": at}) | Q(**{time_field: at, "id__lt": before_id}))
            else:
                qs = qs.filter(**{f"{time_field}__lt": at})
        for obj in qs.order_by(f"-{time_field}", "-id")[: size + 1]:
            merged.append(
                (
                    getattr(obj, time_field),
                    rank,
                    obj.pk,
                    TimelineItem(name, getattr(obj, time_field), obj, template),
                )
            )
    merged.sort(key=lambda item: item[:3], reverse=True)
    page = merged[:size]
    next_before = page[-1][:3] if len(merged) > size else None
    return [item[3] for item in page], next_before
