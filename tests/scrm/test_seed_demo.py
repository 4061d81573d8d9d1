from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Count, Max, Sum

from accounts.roles import Role, role_of
from contacts.models import Contact, ContactTag, Event, EventKind, Note, PendingEvent, Tag, TagGroup, Tier
from contacts.phones import normalise_phone
from scrm.demo import DEMO_PASSWORD

DEMO_CONTACTS = 30


def seed(contacts: int = DEMO_CONTACTS) -> str:
    out = StringIO()
    call_command("seed_demo", "--contacts", str(contacts), stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    models = (get_user_model(), Contact, Event, ContactTag, Note, Tag, TagGroup, Tier)
    return {model.__name__: model.objects.count() for model in models}


@pytest.fixture
def seeded(db):
    return seed()


def test_seeding_twice_creates_nothing_new(seeded):
    first = row_counts()
    seed()
    assert row_counts() == first
    assert first["Contact"] == DEMO_CONTACTS


def test_a_larger_run_adds_only_the_missing_contacts(seeded):
    phones_before = set(Contact.objects.values_list("phone", flat=True))
    seed(DEMO_CONTACTS + 10)
    phones_after = set(Contact.objects.values_list("phone", flat=True))
    assert phones_before < phones_after
    assert len(phones_after) == DEMO_CONTACTS + 10


def test_demo_users_have_their_roles(seeded):
    users = {user.username: user for user in get_user_model().objects.all()}
    admin, manager = users["admin"], users["manager"]
    assert role_of(admin) == Role.ADMIN and admin.is_staff
    assert role_of(manager) == Role.MANAGER
    for name in ("operator1", "operator2", "operator3"):
        assert role_of(users[name]) == Role.OPERATOR
        assert users[name].manager == manager
    for user in (admin, manager, users["operator1"]):
        assert user.check_password(DEMO_PASSWORD)
        assert user.display_name and not user.display_name.isascii()


def test_the_output_lists_the_demo_logins(db):
    output = seed(5)
    for username in ("admin", "manager", "operator1", "operator2", "operator3"):
        assert f"{username} / {DEMO_PASSWORD} /" in output


def test_tag_groups_and_tiers(seeded):
    tags = {(tag.group.name, tag.name) for tag in Tag.objects.select_related("group")}
    assert {
        ("口味偏好", "甜"),
        ("口味偏好", "辣"),
        ("口味偏好", "咸"),
        ("价格敏感度", "高"),
        ("兴趣", "母婴"),
    } <= tags
    assert dict(Tier.objects.values_list("name", "rank")) == {"普通会员": 1, "银卡": 2, "金卡": 3, "钻石": 4}


def test_phones_are_valid_unique_e164(seeded):
    phones = list(Contact.objects.values_list("phone", flat=True))
    assert len(phones) == len(set(phones))
    for phone in phones:
        assert phone.startswith("+861")
        assert normalise_phone(phone) == phone


def test_contacts_are_owned_tagged_and_named(seeded):
    assert Contact.objects.filter(owner__username__startswith="operator").exists()
    assert all(
        len(name) >= 2 and not name.isascii() for name in Contact.objects.values_list("name", flat=True)
    )
    tag_counts = Contact.objects.annotate(n=Count("tags")).values_list("n", flat=True)
    assert max(tag_counts) <= 4
    assert not Contact.objects.filter(opted_out=True, opted_out_at__isnull=True).exists()


def test_events_have_stable_keys_and_decimal_amounts(seeded):
    purchases = Event.objects.filter(kind=EventKind.PURCHASE)
    assert purchases.exists()
    assert all(
        isinstance(amount, Decimal) and amount > 0 for amount in purchases.values_list("amount", flat=True)
    )
    kinds = set(Event.objects.values_list("kind", flat=True))
    assert {EventKind.MESSAGE_IN, EventKind.MESSAGE_OUT, EventKind.CHECK_IN, EventKind.CONTENT_VIEW} <= kinds
    for event in Event.objects.select_related("contact")[:200]:
        assert event.idempotency_key.startswith(f"demo:{event.contact.phone}:")
        assert event.source == "demo"


def test_last_active_is_the_latest_event(seeded):
    contacts = Contact.objects.annotate(latest=Max("events__occurred_at"))
    assert contacts.count() == DEMO_CONTACTS
    for contact in contacts:
        assert contact.latest is not None
        assert contact.last_active_at == contact.latest


def test_demo_contacts_get_their_purchase_totals(seeded):
    assert not PendingEvent.objects.exists()  # the seed ran the pipeline over its own events
    buyer = Contact.objects.filter(events__kind="purchase").annotate(n=Count("events")).first()
    expected = Event.objects.filter(contact=buyer, kind="purchase").aggregate(n=Count("id"), s=Sum("amount"))
    assert (buyer.order_count, buyer.total_spent) == (expected["n"], expected["s"])


def test_demo_has_custom_field_values_and_probable_duplicates(db):
    from contacts.models import CustomField

    seed(240)  # four duplicate candidates
    assert set(CustomField.objects.values_list("key", flat=True)) >= {"skin_type", "interests", "member_card"}
    assert Contact.objects.exclude(custom_fields={}).count() > 100
    pairs = (
        Contact.objects.exclude(birthday=None)
        .values("name", "city", "birthday")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert pairs.exists()
