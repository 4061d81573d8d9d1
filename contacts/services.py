"""Writes to contacts: every change is audited (AuditEntry) in the same transaction."""

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from .models import AuditEntry, Contact, ContactTag, Note, Tag, Tier
from .selectors import contacts_visible_to, owners_assignable_by
from .touches import contacts_touched


class NotAllowed(Exception):
    """The actor may not touch (some of) the contacts named; nothing was changed."""


AUDITED_FIELDS = (
    "name", "phone", "email", "external_userid", "gender", "birthday", "city", "source",
    "owner", "tier", "time_zone", "opted_out", "opted_out_reason", "joined_at", "custom_fields",
)  # fmt: skip


def _jsonable(value):
    if isinstance(value, Model):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def snapshot(obj: Model, fields: Iterable[str]) -> dict:
    return {name: _jsonable(getattr(obj, name)) for name in fields}


def audit_record(*, actor, action: str, obj: Model, contact: Contact | None = None, before=None, after=None):
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action=action,
        object_type=obj._meta.model_name,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        contact=contact,
        before=before or {},
        after=after or {},
    )


def _audit_entry(*, actor, action: str, contact: Contact, before=None, after=None) -> AuditEntry:
    """An unsaved entry about a contact, for bulk_create."""
    return AuditEntry(
        actor=actor, action=action, object_type="contact", object_id=str(contact.pk),
        object_repr=contact.name[:200], contact=contact, before=before or {}, after=after or {},
    )  # fmt: skip


@transaction.atomic
def contact_create(*, actor, data: dict) -> Contact:
    contact = Contact(**data)
    if contact.opted_out and not contact.opted_out_at:
        contact.opted_out_at = timezone.now()
    contact.full_clean()
    contact.save()
    contacts_touched([contact.pk])
    audit_record(actor=actor, action="contact.created", obj=contact, contact=contact,
                 after=snapshot(contact, AUDITED_FIELDS))  # fmt: skip
    return contact


@transaction.atomic
def contact_update(*, actor, contact: Contact, changes: dict) -> Contact:
    """Apply `changes` (field -> new value), keep opt-out time consistent, audit what really changed."""
    before = snapshot(contact, changes)
    for name, value in changes.items():
        setattr(contact, name, value)
    changed = [name for name in changes if _jsonable(getattr(contact, name)) != before[name]]
    if not changed:
        return contact
    if "opted_out" in changed:
        contact.opted_out_at = timezone.now() if contact.opted_out else None
        if not contact.opted_out:
            contact.opted_out_reason = ""
        changed += ["opted_out_at", "opted_out_reason"]
    contact.full_clean()
    contact.save(update_fields=[*set(changed), "updated_at"])
    contacts_touched([contact.pk])
    audit_record(
        actor=actor, action="contact.updated", obj=contact, contact=contact,
        before={k: before[k] for k in changed if k in before},
        after=snapshot(contact, [k for k in changed if k in before]),
    )  # fmt: skip
    return contact


@transaction.atomic
def contact_tags_set(*, actor, contact: Contact, tags: Iterable[Tag]) -> tuple[list[Tag], list[Tag]]:
    """Make the contact's tags exactly `tags`; returns (added, removed)."""
    wanted = {tag.pk: tag for tag in tags}
    current = {tag.pk: tag for tag in contact.tags.select_related("group")}
    added = [wanted[pk] for pk in wanted.keys() - current.keys()]
    removed = [current[pk] for pk in current.keys() - wanted.keys()]
    ContactTag.objects.bulk_create(
        [ContactTag(contact=contact, tag=tag, added_by=_user_or_none(actor)) for tag in added],
        ignore_conflicts=True,
    )
    ContactTag.objects.filter(contact=contact, tag__in=removed).delete()
    for tag in added:
        audit_record(
            actor=actor, action="contact.tag_added", obj=contact, contact=contact, after={"tag": str(tag)}
        )
    for tag in removed:
        audit_record(
            actor=actor, action="contact.tag_removed", obj=contact, contact=contact, before={"tag": str(tag)}
        )
    if added or removed:
        Contact.objects.filter(pk=contact.pk).update(updated_at=timezone.now())
        contacts_touched([contact.pk])
    return added, removed


def _user_or_none(actor):
    return actor if getattr(actor, "is_authenticated", False) else None


@transaction.atomic
def note_add(*, actor, contact: Contact, body: str) -> Note:
    note = Note(contact=contact, author=_user_or_none(actor), body=body.strip())
    note.full_clean()
    note.save()
    return note


def _visible_selection(actor, contact_ids: Iterable[int]) -> list[Contact]:
    """All of the named contacts, locked, or NotAllowed if any is not visible to the actor."""
    ids = set(contact_ids)
    # of=("self",): PostgreSQL cannot lock the nullable side of the tier/owner outer joins.
    visible = contacts_visible_to(actor).filter(pk__in=ids).select_related("tier", "owner")
    contacts = list(visible.select_for_update(of=("self",)))
    if len(contacts) != len(ids):
        raise NotAllowed(len(ids) - len(contacts))
    return contacts


@transaction.atomic
def contacts_bulk_tag(*, actor, contact_ids: Iterable[int], tag: Tag, add: bool) -> int:
    """Add or remove one tag on many contacts, set-based. Returns how many contacts changed."""
    contacts = _visible_selection(actor, contact_ids)
    ids = [c.pk for c in contacts]
    having = set(ContactTag.objects.filter(tag=tag, contact_id__in=ids).values_list("contact_id", flat=True))
    if add:
        targets = [c for c in contacts if c.pk not in having]
        ContactTag.objects.bulk_create(
            [ContactTag(contact=c, tag=tag, added_by=_user_or_none(actor)) for c in targets],
            ignore_conflicts=True,
        )
    else:
        targets = [c for c in contacts if c.pk in having]
        ContactTag.objects.filter(tag=tag, contact_id__in=[c.pk for c in targets]).delete()
    action, key = ("contact.tag_added", "after") if add else ("contact.tag_removed", "before")
    AuditEntry.objects.bulk_create(
        [
            _audit_entry(actor=_user_or_none(actor), action=action, contact=c, **{key: {"tag": str(tag)}})
            for c in targets
        ]
    )
    Contact.objects.filter(pk__in=[c.pk for c in targets]).update(updated_at=timezone.now())
    contacts_touched(c.pk for c in targets)
    return len(targets)


@transaction.atomic
def contacts_tag_add_by_automation(*, contact_ids: Iterable[int], tag: Tag, by: str) -> int:
    """Add a tag on behalf of an automation (an SOP step's "when done, add tag"): no actor and no visibility
    check (the automation acts for the business), audited with `by` naming it. Returns how many changed."""
    ids = sorted(set(contact_ids))
    having = set(ContactTag.objects.filter(tag=tag, contact_id__in=ids).values_list("contact_id", flat=True))
    targets = list(
        Contact.objects.filter(pk__in=[cid for cid in ids if cid not in having]).only("pk", "name")
    )
    ContactTag.objects.bulk_create([ContactTag(contact=c, tag=tag) for c in targets], ignore_conflicts=True)
    AuditEntry.objects.bulk_create(
        [
            _audit_entry(actor=None, action="contact.tag_added", contact=c, after={"tag": str(tag), "by": by})
            for c in targets
        ]
    )
    contacts_touched(c.pk for c in targets)
    return len(targets)


@transaction.atomic
def contacts_bulk_update(*, actor, contact_ids: Iterable[int], field: str, value) -> int:
    """Set tier or owner on many contacts in one UPDATE, auditing each change."""
    if field not in ("tier", "owner"):
        raise ValueError(field)
    if field == "owner" and not actor.has_perm("contacts.assign_owner"):
        raise NotAllowed("assign_owner")
    if (
        field == "owner"
        and value is not None
        and not owners_assignable_by(actor).filter(pk=value.pk).exists()
    ):
        raise NotAllowed("owner outside the team")
    contacts = _visible_selection(actor, contact_ids)
    new_id = value.pk if value is not None else None
    targets = [c for c in contacts if getattr(c, f"{field}_id") != new_id]
    Contact.objects.filter(pk__in=[c.pk for c in targets]).update(
        **{field: value, "updated_at": timezone.now()}
    )
    contacts_touched(c.pk for c in targets)
    AuditEntry.objects.bulk_create(
        [
            _audit_entry(
                actor=_user_or_none(actor),
                action="contact.updated",
                contact=c,
                before={field: _jsonable(getattr(c, field))},
                after={field: _jsonable(value)},
            )  # fmt: skip
            for c in targets
        ]
    )
    return len(targets)


# What a segment rule reads of a tag or tier besides its id ("has a tag of group …", "tier rank at least …").
RULE_VISIBLE = {Tag: "group_id", Tier: "rank"}


def _touch_holders(obj: Model) -> None:
    """Record every contact with this tag or tier, set-based (one INSERT … SELECT, whatever their number)."""
    if isinstance(obj, Tag):
        contacts_touched(ContactTag.objects.filter(tag=obj).values("contact_id"))
    elif isinstance(obj, Tier):
        contacts_touched(Contact.objects.filter(tier=obj).values("id"))


@transaction.atomic
def taxonomy_save(*, actor, obj: Tag | Tier | Model, created: bool) -> Model:
    """Save a tag group, tag or tier from the settings pages, audited."""
    attr = RULE_VISIBLE.get(type(obj))
    if attr and not created:
        stored = type(obj).objects.filter(pk=obj.pk).values_list(attr, flat=True).first()
        if stored != getattr(obj, attr):  # a tag moved to another group, a tier re-ranked
            _touch_holders(obj)
    obj.save()
    audit_record(actor=actor, action=f"{obj._meta.model_name}.{'created' if created else 'updated'}", obj=obj)
    return obj


@transaction.atomic
def taxonomy_delete(*, actor, obj: Model) -> None:
    audit_record(actor=actor, action=f"{obj._meta.model_name}.deleted", obj=obj, before={"name": str(obj)})
    _touch_holders(obj)  # before the delete cascades: afterwards nothing says who had the tag or tier
    obj.delete()
