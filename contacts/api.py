"""The contacts part of the JSON API (mounted by scrm/api.py under /api/v1).

Keys are integration keys (accounts.api_keys): they belong to no user and see every contact; what they may
do is their scopes — contacts:read for the GETs, contacts:write for the upsert, events:write for events.

Bad input never reaches the database: types and lengths are checked by the schemas (422 with field paths),
meanings (phones, tiers, owners, custom fields, event kinds and times) by the code below, with the same
shape of error: {"detail": [{"loc": [...], "field": "a.b", "msg": "...", "type": "..."}]}.
"""

import contextlib
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Body, Field, Path, Query, Router, Schema, Status
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError
from pydantic import AfterValidator, BaseModel, Discriminator, Tag

from accounts.api_keys import key_auth
from accounts.models import ApiKey, ApiScope, validate_time_zone

from .custom_fields import clean_custom_values, merge_custom_values
from .events import EventIn, events_record, validate_event_fields
from .models import AuditEntry, Contact, ContactTag, EventSource, Gender, Source, Tier
from .models import Tag as ContactTagModel
from .pagination import SORTS, BadCursor, keyset_page
from .phones import InvalidPhone, normalise_phone
from .selectors import search_contacts
from .services import AUDITED_FIELDS, snapshot
from .touches import contacts_touched

router = Router(tags=["contacts"])

MAX_ID = 2**63 - 1
LIST_LIMIT = 200


def _storable(value: str) -> str:
    """PostgreSQL text cannot hold NUL, and UTF-8 cannot hold lone surrogates: refuse both up front."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def _storable_json(value):
    """_storable for every key and string inside a JSON value (a walk: cheaper than dumping it)."""
    if isinstance(value, str):
        _storable(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key)
            _storable_json(item)
    elif isinstance(value, list):
        for item in value:
            _storable_json(item)
    return value


Text = Annotated[str, AfterValidator(_storable)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_storable_json)]


# --- schemas -----------------------------------------------------------------------------------------


class ErrorOut(Schema):
    detail: Any


class ContactIn(Schema):
    """Upsert: matched by external_userid, else phone (normalised), else email. Only the fields sent change."""

    name: Text | None = Field(None, max_length=100)
    phone: Text | None = Field(None, max_length=40, description="Mainland numbers may omit +86.")
    email: Text | None = Field(None, max_length=254)
    external_userid: Text | None = Field(None, max_length=64, description="WeCom external user ID.")
    gender: Gender | None = None
    birthday: date | None = None
    city: Text | None = Field(None, max_length=50)
    source: Source | None = None
    tier: Text | None = Field(None, max_length=50, description='Tier name; "" clears it.')
    owner: Text | None = Field(None, max_length=150, description='Owner\'s username; "" unassigns.')
    tags: list[Annotated[Text, Field(max_length=101)]] | None = Field(
        None, max_length=50, description='Tag names to add ("name", or "group:name" when ambiguous).'
    )
    custom_fields: JsonObject | None = Field(None, description="Custom field values by key; null clears one.")
    time_zone: Text | None = Field(None, max_length=64)
    opted_out: bool | None = None


class ContactOut(Schema):
    id: int
    name: str
    phone: str
    email: str
    external_userid: str
    gender: str
    birthday: date | None
    city: str
    source: str
    tier: str | None
    owner: str | None
    tags: list[str]
    custom_fields: dict[str, Any]
    time_zone: str
    opted_out: bool
    joined_at: datetime
    last_active_at: datetime | None
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None
    order_count: int
    total_spent: str
    created_at: datetime
    updated_at: datetime


class ContactPageOut(Schema):
    results: list[ContactOut]
    next_cursor: str | None


class ContactListQuery(Schema):
    q: Text = Field("", max_length=100, description="Name, phone or email.")
    tag: Text = Field("", max_length=50, description="Contacts holding a tag of this name.")
    tier: Text = Field("", max_length=50, description="Tier name.")
    source: Source | None = None
    owner: Text = Field("", max_length=150, description="Owner's username.")
    updated_since: datetime | None = None
    limit: int = Field(50, ge=1, le=LIST_LIMIT)
    cursor: Text = Field("", max_length=200, description="next_cursor of the previous page.")


class EventItemIn(BaseModel):  # plain pydantic: ninja's Schema adds an ORM hook per item, 1,000 a batch
    """One event. The contact is named by contact_id, external_userid or phone (first one given wins)."""

    idempotency_key: Text = Field(min_length=1, max_length=128)
    kind: Text = Field(max_length=32, description="An event kind, e.g. purchase, refund, check_in.")
    occurred_at: datetime = Field(
        description="ISO 8601; without an offset it is read in the server time zone."
    )
    amount: Decimal | None = Field(None, description="Required for purchases; at most 2 decimals.")
    order_id: Text = Field("", max_length=64)
    payload: JsonObject = Field(default_factory=dict)
    contact_id: int | None = Field(None, ge=1, le=MAX_ID)
    external_userid: Text | None = Field(None, max_length=64)
    phone: Text | None = Field(None, max_length=40)


class EventBatchIn(BaseModel):
    events: list[EventItemIn] = Field(description="Up to API_EVENTS_BATCH_LIMIT (1,000) events.")


def _body_kind(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "events" in value else "one"


EventsBody = Annotated[
    Annotated[EventBatchIn, Tag("batch")] | Annotated[EventItemIn, Tag("one")], Discriminator(_body_kind)
]


class EventResultOut(BaseModel):
    idempotency_key: str
    event_id: int | None
    status: Literal["created", "duplicate", "error"]
    errors: dict[str, str]


class EventsOut(Schema):
    created: int
    duplicates: int
    errors: int
    results: list[EventResultOut]


class EventsErrorOut(Schema):
    detail: Any
    results: list[EventResultOut] | None = None


# --- helpers -----------------------------------------------------------------------------------------


def _field_error(loc: list, message: str, kind: str = "value_error") -> dict:
    """One error in the API's shape; `field` is the path inside the body or query (see scrm/api.py)."""
    field = ".".join(str(part) for part in (loc[2:] if loc[:1] == ["body"] else loc[1:]))
    return {"loc": loc, "field": field, "msg": str(message), "type": kind}


def _invalid(errors: dict[str, str], *, prefix: list) -> NinjaValidationError:
    return NinjaValidationError(
        [_field_error([*prefix, *name.split(".")], msg) for name, msg in errors.items()]
    )


def contact_out(contact: Contact) -> dict:
    return {
        **{
            name: getattr(contact, name)
            for name in (
                "id",
                "name",
                "phone",
                "email",
                "external_userid",
                "gender",
                "birthday",
                "city",
                "source",
                "custom_fields",
                "time_zone",
                "opted_out",
                "joined_at",
                "last_active_at",
                "first_purchase_at",
                "last_purchase_at",
                "order_count",
                "created_at",
                "updated_at",
            )
        },  # fmt: skip
        "tier": contact.tier.name if contact.tier_id else None,
        "owner": contact.owner.get_username() if contact.owner_id else None,
        "tags": sorted(tag.name for tag in contact.tags.all()),
        "total_spent": str(contact.total_spent),
    }


def _contacts() -> Any:
    return Contact.objects.select_related("owner", "tier").prefetch_related("tags")


# --- upsert ------------------------------------------------------------------------------------------


def _resolve_tags(names: list[str]) -> tuple[list[ContactTagModel], str]:
    found, missing, ambiguous = [], [], []
    for name in dict.fromkeys(n.strip() for n in names if n.strip()):
        group, _sep, tag_name = name.rpartition(":") if ":" in name else ("", "", name)
        qs = ContactTagModel.objects.select_related("group").filter(name=tag_name.strip())
        if group:
            qs = qs.filter(group__name=group.strip())
        tags = list(qs[:2])
        if not tags:
            missing.append(name)
        elif len(tags) > 1:
            ambiguous.append(name)
        else:
            found.append(tags[0])
    if missing:
        return found, _("No tag named %(names)s; create it in Tags and tiers first.") % {
            "names": "、".join(missing)
        }
    if ambiguous:
        return found, _("Several tags are named %(names)s; write “group:name”.") % {
            "names": "、".join(ambiguous)
        }
    return found, ""


def _clean_contact_fields(given: dict) -> tuple[dict, list[ContactTagModel], dict[str, str]]:
    """The model values of the fields sent (strings stripped, phone normalised, names resolved)."""
    values, errors = {}, {}
    for name in ("name", "email", "external_userid", "city"):
        if name in given:
            values[name] = (given[name] or "").strip()
    if "email" in values:
        values["email"] = values["email"].lower()
    if "phone" in given:
        try:
            values["phone"] = normalise_phone(given["phone"] or "")
        except InvalidPhone:
            errors["phone"] = _("Enter a valid phone number, e.g. 138 0013 8000.")
    for name in ("gender", "source", "birthday", "opted_out"):
        if name in given and given[name] is not None:
            values[name] = given[name].value if hasattr(given[name], "value") else given[name]
    if "birthday" in given and given["birthday"] is None:
        values["birthday"] = None
    if given.get("tier"):
        values["tier"] = Tier.objects.filter(name=given["tier"].strip()).first()
        if values["tier"] is None:
            errors["tier"] = _("No tier named “%(name)s”.") % {"name": given["tier"]}
    elif "tier" in given:
        values["tier"] = None
    if given.get("owner"):
        values["owner"] = (
            get_user_model().objects.filter(username=given["owner"].strip(), is_active=True).first()
        )
        if values["owner"] is None:
            errors["owner"] = _("No active user with the username “%(name)s”.") % {"name": given["owner"]}
    elif "owner" in given:
        values["owner"] = None
    if given.get("time_zone"):
        try:
            validate_time_zone(given["time_zone"])
            values["time_zone"] = given["time_zone"]
        except DjangoValidationError:
            errors["time_zone"] = _("“%(value)s” is not a known time zone.") % {"value": given["time_zone"]}
    tags, tag_error = _resolve_tags(given.get("tags") or [])
    if tag_error:
        errors["tags"] = tag_error
    return values, tags, errors


def _match(values: dict) -> Contact | None:
    """The existing contact for these keys: external_userid, else phone, else email (locked)."""
    qs = Contact.objects.select_for_update(of=("self",))
    for key in ("external_userid", "phone"):
        if values.get(key):
            contact = qs.filter(**{key: values[key]}).first()
            if contact is not None:
                return contact
    if values.get("email"):
        matches = list(qs.filter(email__iexact=values["email"]).order_by("id")[:2])
        if len(matches) > 1:
            raise HttpError(
                409, _("Several contacts have this email; send external_userid or phone to say which one.")
            )
        return matches[0] if matches else None
    return None


def _check_same_person(contact: Contact, values: dict) -> None:
    """Found by a weaker key, the contact must not already carry a different stronger one."""
    for key in ("external_userid", "phone"):
        current, wanted = getattr(contact, key), values.get(key)
        if current and wanted and current != wanted:
            message = _("Contact %(id)s matches by another key but has a different %(key)s (%(value)s).")
            raise HttpError(409, message % {"id": contact.pk, "key": key, "value": current})


def _lock_keys(values: dict) -> None:
    """Serialise concurrent upserts of the same person (the row may not exist yet, so no row lock)."""
    if connection.vendor != "postgresql":
        return  # SQLite: IMMEDIATE transactions already serialise writers
    keys = sorted(f"contact:{k}:{values[k]}" for k in ("external_userid", "phone", "email") if values.get(k))
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])


def _audit(*, key: ApiKey, action: str, contact: Contact, before=None, after=None) -> AuditEntry:
    repr_ = _("%(name)s (via API key “%(key)s”)") % {"name": contact.name, "key": key.name}
    return AuditEntry(
        actor=None, action=action, object_type="contact", object_id=str(contact.pk), object_repr=repr_[:200],
        contact=contact, before=before or {}, after=after or {},
    )  # fmt: skip


def _full_clean(contact: Contact) -> None:
    """Field validation as 422; a phone or external ID already taken by another contact as 409."""
    for field in ("phone", "external_userid"):
        value = getattr(contact, field)
        if value and Contact.objects.filter(**{field: value}).exclude(pk=contact.pk).exists():
            message = _("Another contact already has this %(field)s (%(value)s).")
            raise HttpError(409, message % {"field": field, "value": value})
    try:
        contact.full_clean(exclude=["custom_fields"], validate_unique=False, validate_constraints=False)
    except DjangoValidationError as exc:
        errors = {f: " ".join(m) for f, m in exc.message_dict.items()}
        raise _invalid(errors, prefix=["body", "payload"]) from exc


def _add_tags(*, key: ApiKey, contact: Contact, tags: list) -> list:
    having = set(ContactTag.objects.filter(contact=contact).values_list("tag_id", flat=True))
    added = [tag for tag in tags if tag.pk not in having]
    ContactTag.objects.bulk_create(
        [ContactTag(contact=contact, tag=tag) for tag in added], ignore_conflicts=True
    )
    AuditEntry.objects.bulk_create(
        [
            _audit(key=key, action="contact.tag_added", contact=contact, after={"tag": str(tag)})
            for tag in added
        ]
    )
    return added


@transaction.atomic
def contact_upsert_from_api(*, key: ApiKey, given: dict) -> tuple[Contact, bool]:
    """Create or update one contact from the API; returns (contact, created). Raises 409/422 errors."""
    values, tags, errors = _clean_contact_fields(given)
    if errors:
        raise _invalid(errors, prefix=["body", "payload"])
    if not any(values.get(k) for k in ("external_userid", "phone", "email")):
        message = _("Send at least one of external_userid, phone or email to identify the contact.")
        raise _invalid({"external_userid": message}, prefix=["body", "payload"])
    _lock_keys(values)
    contact = _match(values)
    if contact is None:
        try:
            with transaction.atomic():
                return _create(key=key, values=values, tags=tags, custom=given.get("custom_fields")), True
        except IntegrityError:  # created by a request that did not share our lock keys: update it instead
            contact = _match(values)
            if contact is None:
                raise
    _check_same_person(contact, values)
    return _update(
        key=key, contact=contact, values=values, tags=tags, custom=given.get("custom_fields")
    ), False


def _custom(raw: dict | None, *, partial: bool, existing: dict) -> dict:
    cleaned, errors = clean_custom_values(raw or {}, partial=partial)
    if errors:
        raise _invalid({f"custom_fields.{k}": v for k, v in errors.items()}, prefix=["body", "payload"])
    return merge_custom_values(existing, cleaned, given_keys=(raw or {}).keys())


def _create(*, key: ApiKey, values: dict, tags: list, custom: dict | None) -> Contact:
    if not values.get("name"):
        raise _invalid({"name": _("A new contact needs a name.")}, prefix=["body", "payload"])
    contact = Contact(source=Source.API, **values)
    contact.custom_fields = _custom(custom, partial=False, existing={})
    if contact.opted_out:
        contact.opted_out_at = timezone.now()
    _full_clean(contact)
    contact.save()
    _audit(key=key, action="contact.created", contact=contact, after=snapshot(contact, AUDITED_FIELDS)).save()
    _add_tags(key=key, contact=contact, tags=tags)
    contacts_touched([contact.pk])
    return contact


def _update(*, key: ApiKey, contact: Contact, values: dict, tags: list, custom: dict | None) -> Contact:
    before = snapshot(contact, [*values, "custom_fields"])
    for name, value in values.items():
        setattr(contact, name, value)
    if custom is not None:
        contact.custom_fields = _custom(custom, partial=True, existing=contact.custom_fields)
    after = snapshot(contact, [*values, "custom_fields"])
    changed = [name for name in after if after[name] != before[name]]
    if "opted_out" in changed:
        contact.opted_out_at = timezone.now() if contact.opted_out else None
        changed.append("opted_out_at")
    if changed:
        _full_clean(contact)
        contact.save(update_fields=[*changed, "updated_at"])
        diff = [name for name in changed if name in before]
        _audit(
            key=key, action="contact.updated", contact=contact,
            before={k: before[k] for k in diff}, after={k: after[k] for k in diff},
        ).save()  # fmt: skip
    tagged = _add_tags(key=key, contact=contact, tags=tags)
    if tagged and not changed:
        Contact.objects.filter(pk=contact.pk).update(updated_at=timezone.now())
    if tagged or changed:
        contacts_touched([contact.pk])
    return contact


# --- contacts endpoints -------------------------------------------------------------------------------

READ, WRITE, EVENTS = ApiScope.CONTACTS_READ.value, ApiScope.CONTACTS_WRITE.value, ApiScope.EVENTS_WRITE.value
AUTH_ERRORS = {401: ErrorOut, 403: ErrorOut}


@router.post(
    "/contacts",
    auth=key_auth(WRITE),
    response={200: ContactOut, 201: ContactOut, 409: ErrorOut, 422: ErrorOut, **AUTH_ERRORS},
    summary="Create or update a contact",
)
def upsert_contact(request, payload: ContactIn):
    """Matched by external_userid, else phone, else email: found → updated (200), not found → created (201).

    Fields not sent are left as they are; tags are added (never removed); custom fields are validated
    against the admin-defined fields. Never creates a second contact for a phone or external ID.
    """
    contact, created = contact_upsert_from_api(key=request.auth, given=payload.model_dump(exclude_unset=True))
    return Status(201 if created else 200, contact_out(_contacts().get(pk=contact.pk)))


@router.get(
    "/contacts/{contact_id}",
    auth=key_auth(READ),
    response={200: ContactOut, 404: ErrorOut, 422: ErrorOut, **AUTH_ERRORS},
    summary="Get a contact",
)
def get_contact(request, contact_id: Annotated[int, Path(ge=1, le=MAX_ID)]):
    contact = _contacts().filter(pk=contact_id).first()
    if contact is None:
        raise HttpError(404, _("No contact with id %(id)s.") % {"id": contact_id})
    return contact_out(contact)


@router.get(
    "/contacts",
    auth=key_auth(READ),
    response={200: ContactPageOut, 422: ErrorOut, **AUTH_ERRORS},
    summary="List contacts",
)
def list_contacts(request, filters: Query[ContactListQuery]):
    """Oldest first, `limit` a page; pass `next_cursor` back as `cursor` for the next page (null: no more)."""
    qs = search_contacts(Contact.objects.all(), filters.q)
    if filters.tag:
        qs = qs.filter(
            Exists(ContactTag.objects.filter(contact=OuterRef("pk"), tag__name=filters.tag.strip()))
        )
    if filters.tier:
        qs = qs.filter(tier__name=filters.tier.strip())
    if filters.source:
        qs = qs.filter(source=filters.source.value)
    if filters.owner:
        qs = qs.filter(owner__username=filters.owner.strip())
    if filters.updated_since:
        since = filters.updated_since
        qs = qs.filter(updated_at__gte=since if timezone.is_aware(since) else timezone.make_aware(since))
    try:
        page = keyset_page(
            qs.select_related("owner", "tier").prefetch_related("tags"),
            SORTS["oldest"][0],
            filters.cursor or None,
            filters.limit,
        )
    except BadCursor:
        raise NinjaValidationError(
            [_field_error(["query", "cursor"], _("Not a cursor from this API; start without one."))]
        ) from None
    return {"results": [contact_out(c) for c in page.rows], "next_cursor": page.next_cursor}


# --- events ------------------------------------------------------------------------------------------


def _aware(moment: datetime) -> datetime:
    return (
        moment if timezone.is_aware(moment) else timezone.make_aware(moment, timezone.get_default_timezone())
    )


def _contact_lookup(items: list[EventItemIn]) -> tuple[dict, dict, dict]:
    """Existing contacts by id, external_userid and normalised phone, in three set queries."""
    ids = {i.contact_id for i in items if i.contact_id}
    externals = {i.external_userid for i in items if not i.contact_id and i.external_userid}
    phones = set()
    for item in items:
        if not item.contact_id and not item.external_userid and item.phone:
            with contextlib.suppress(InvalidPhone):
                phones.add(normalise_phone(item.phone))
    by_id = set(Contact.objects.filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
    by_ext = dict(
        Contact.objects.exclude(external_userid="")
        .filter(external_userid__in=externals)
        .values_list("external_userid", "pk")
    )
    by_phone = dict(Contact.objects.exclude(phone="").filter(phone__in=phones).values_list("phone", "pk"))
    return {pk: pk for pk in by_id}, by_ext, by_phone


def _contact_of(item: EventItemIn, lookups: tuple[dict, dict, dict]) -> tuple[int | None, dict[str, str]]:
    by_id, by_ext, by_phone = lookups
    if item.contact_id:
        pk = by_id.get(item.contact_id)
        return pk, {} if pk else {"contact_id": _("No contact with id %(id)s.") % {"id": item.contact_id}}
    if item.external_userid:
        pk = by_ext.get(item.external_userid)
        message = _("No contact with external_userid “%(value)s”.") % {"value": item.external_userid}
        return pk, {} if pk else {"external_userid": message}
    if item.phone:
        try:
            phone = normalise_phone(item.phone)
        except InvalidPhone:
            return None, {"phone": _("Enter a valid phone number, e.g. 138 0013 8000.")}
        pk = by_phone.get(phone)
        return pk, {} if pk else {"phone": _("No contact with phone %(value)s.") % {"value": phone}}
    return None, {"contact_id": _("Name the contact by contact_id, external_userid or phone.")}


def events_ingest(items: list[EventItemIn]) -> list[dict]:
    """Validate, resolve contacts and record; one result per item, in order."""
    results: list[dict] = [{} for _ in items]
    lookups = _contact_lookup(items)
    now = timezone.now()
    valid: list[tuple[int, EventIn]] = []
    for index, item in enumerate(items):
        occurred_at = _aware(item.occurred_at)
        contact_id, errors = _contact_of(item, lookups)
        errors.update(
            validate_event_fields(
                kind=item.kind, occurred_at=occurred_at, amount=item.amount, order_id=item.order_id, now=now
            )
        )
        if errors:
            results[index] = _result(item.idempotency_key, None, "error", errors)
            continue
        valid.append((index, EventIn(
            contact_id=contact_id, kind=item.kind, occurred_at=occurred_at, idempotency_key=item.idempotency_key,
            amount=item.amount, payload=item.payload, order_id=item.order_id,
        )))  # fmt: skip
    outcomes = events_record(events=[e for _i, e in valid], source=EventSource.API) if valid else []
    for (index, event), outcome in zip(valid, outcomes, strict=True):
        if outcome.error:
            results[index] = _result(event.idempotency_key, None, "error", {"order_id": outcome.error})
        else:
            status = "created" if outcome.created else "duplicate"
            results[index] = _result(event.idempotency_key, outcome.event_id, status, {})
    return results


def _result(key: str, event_id: int | None, status: str, errors: dict) -> dict:
    return {"idempotency_key": key, "event_id": event_id, "status": status, "errors": errors}


@router.post(
    "/events",
    auth=key_auth(EVENTS),
    response={200: EventsOut, 201: EventsOut, 413: ErrorOut, 422: EventsErrorOut, **AUTH_ERRORS},
    summary="Post events",
)
def post_events(request, payload: Body[EventsBody]):
    """One event object, or {"events": [...]} with up to 1,000. Each needs an idempotency_key: a replayed
    key returns the original event_id with status "duplicate" and counts nothing twice.

    A batch answers 200 with one result per event, in order; events with errors are skipped, the rest
    are recorded. A single event answers 201 (created), 200 (duplicate) or 422 (with its errors).
    """
    single = isinstance(payload, EventItemIn)
    items = [payload] if single else payload.events
    limit = settings.API_EVENTS_BATCH_LIMIT
    if len(items) > limit:
        message = _("A batch holds at most %(limit)d events; this one has %(n)d. Split it.")
        raise HttpError(413, message % {"limit": limit, "n": len(items)})
    results = events_ingest(items)
    body = {
        "created": sum(r["status"] == "created" for r in results),
        "duplicates": sum(r["status"] == "duplicate" for r in results),
        "errors": sum(r["status"] == "error" for r in results),
        "results": results,
    }
    if not single:
        return Status(200, body)
    if body["errors"]:
        loc = ["body", "payload"]
        detail = [_field_error([*loc, name], msg) for name, msg in results[0]["errors"].items()]
        return Status(422, {"detail": detail, "results": results})
    return Status(201 if body["created"] else 200, body)
