import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from contacts.models import Contact, ContactTag, Event, Tag, Tier


def test_phone_unique_when_present(contact):
    with pytest.raises(IntegrityError), transaction.atomic():
        Contact.objects.create(name="重复", phone=contact.phone)


def test_blank_phones_and_external_ids_may_repeat(db):
    Contact.objects.create(name="甲")
    Contact.objects.create(name="乙")
    assert Contact.objects.filter(phone="", external_userid="").count() == 2


def test_external_userid_unique_when_present(db):
    Contact.objects.create(name="甲", external_userid="wmABC")
    with pytest.raises(IntegrityError), transaction.atomic():
        Contact.objects.create(name="乙", external_userid="wmABC")


def test_opted_out_needs_a_time(db):
    with pytest.raises(IntegrityError), transaction.atomic():
        Contact.objects.create(name="甲", opted_out=True)
    Contact.objects.create(name="乙", opted_out=True, opted_out_at=timezone.now())


def test_tag_name_unique_within_group_only(tag):
    Tag.objects.create(group=tag.group, name="甜")
    with pytest.raises(IntegrityError), transaction.atomic():
        Tag.objects.create(group=tag.group, name=tag.name)


def test_contact_tag_once(contact, tag):
    ContactTag.objects.create(contact=contact, tag=tag)
    with pytest.raises(IntegrityError), transaction.atomic():
        ContactTag.objects.create(contact=contact, tag=tag)


def test_tier_rank_unique(tier):
    with pytest.raises(IntegrityError), transaction.atomic():
        Tier.objects.create(name="另一个", rank=tier.rank)


def test_event_idempotency_key_unique(contact):
    Event.objects.create(
        contact=contact, kind="purchase", occurred_at=timezone.now(), source="api", idempotency_key="o-1"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.create(
            contact=contact, kind="purchase", occurred_at=timezone.now(), source="api", idempotency_key="o-1"
        )


def test_event_amount_is_exact_decimal(contact):
    from decimal import Decimal

    e = Event.objects.create(
        contact=contact,
        kind="purchase",
        occurred_at=timezone.now(),
        amount=Decimal("0.10"),
        source="ui",
        idempotency_key="x",
    )
    e.refresh_from_db()
    assert e.amount == Decimal("0.10")
