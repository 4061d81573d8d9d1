"""The engine through time (time-machine): sequences, guards, exits, re-entry, and what starts an enrollment.

Times are Asia/Shanghai; the guards are the defaults (1 marketing touch a day, 3 in 7 days, quiet 21:00–09:00).
"""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import time_machine
from django.utils import timezone

from contacts.events import EventIn, events_record
from contacts.models import Contact, EventKind, EventSource, Tag, TagGroup
from contacts.services import contact_create, contact_tags_set, contact_update
from scrm.merge import merge_contacts
from scrm.pipeline import process_events
from scrm.touches import drain_contact_touches
from segments.models import Segment
from segments.services import segment_refresh
from sop.dispatch import dispatch_due
from sop.models import (
    CapPolicy,
    Enrollment,
    ExitReason,
    Reentry,
    ReplyBranch,
    SkipReason,
    Touchpoint,
    TouchStatus,
    Trigger,
)

from .helpers import enroll, make_template

SH = ZoneInfo("Asia/Shanghai")
DAY0 = datetime(2026, 12, 1, tzinfo=SH)


def at(day: int, clock: str) -> datetime:
    hours, minutes = map(int, clock.split(":"))
    return DAY0 + timedelta(days=day, hours=hours, minutes=minutes)


def run_until(traveller, end: datetime) -> None:
    """Jump from one due time to the next, dispatching at each, as the minute beat would."""
    while True:
        due = Touchpoint.objects.filter(status=TouchStatus.SCHEDULED).order_by("due_at").first()
        if due is None or due.due_at > end:
            traveller.move_to(end)
            return
        traveller.move_to(max(due.due_at, timezone.now()))
        dispatch_due()


def sends(template) -> list[tuple[int, datetime]]:
    rows = Touchpoint.objects.filter(template=template, sent_at__isnull=False).order_by("sent_at")
    return [(t.step.position, t.sent_at.astimezone(SH)) for t in rows.select_related("step")]


def test_thirty_days_of_two_templates_respect_quiet_hours_the_cap_and_priority(contact):
    with time_machine.travel(at(0, "08:00"), tick=False) as traveller:
        welcome = make_template(
            "新客欢迎",
            priority=10,
            steps=[
                {"day": 0, "at": "10:00"},
                {"day": 1, "at": "10:00"},
                {"day": 2, "at": "22:00"},  # in quiet hours
                {"hours": 1},
                {"day": 20, "at": "10:00"},
            ],
        )
        enroll(welcome, contact)
        run_until(traveller, at(1, "08:00"))
        care = make_template(
            "关怀",
            priority=0,
            steps=[{"day": 0, "at": "10:00"}, {"hours": 11, "transactional": True, "content": "订单通知"}],
        )
        enroll(care, contact)
        run_until(traveller, at(30, "00:00"))

    assert sends(welcome) == [
        (1, at(0, "10:00")),
        (2, at(1, "10:00")),  # wins the day's one slot over 关怀 by priority
        (3, at(7, "09:00")),  # 22:00 is quiet -> 09:00 on day 3, when 3 touches in 7 days -> day 7, 09:00
        (4, at(8, "09:00")),  # an hour after step 3 is day 7's second touch -> the next morning
        (5, at(20, "10:00")),
    ]
    assert sends(care) == [
        (1, at(2, "09:00")),  # capped on day 1 -> the next day, after quiet hours
        (2, at(2, "20:00")),  # transactional: 11 hours later, neither capped nor held for quiet hours
    ]
    step3 = Touchpoint.objects.get(template=welcome, step__position=3)
    assert (step3.deferrals, step3.reason, step3.planned_at) == (2, SkipReason.CAP, at(2, "22:00"))
    assert Touchpoint.objects.get(template=care, step__position=1).reason == SkipReason.CAP
    assert set(Enrollment.objects.values_list("status", flat=True)) == {Enrollment.Status.COMPLETED}
    # Every touch was issued once, as an open task in the owner's inbox with its own Delivery.
    assert Touchpoint.objects.filter(status=TouchStatus.OPEN, assignee=contact.owner).count() == 7
    assert all(t.deliveries.count() == 1 for t in Touchpoint.objects.all())


def test_a_template_that_skips_over_the_cap_skips_and_goes_on(contact):
    with time_machine.travel(at(0, "08:00"), tick=False) as traveller:
        first = make_template("A", priority=5, steps=[{"day": 0, "at": "10:00"}])
        second = make_template(
            "B", cap_policy=CapPolicy.SKIP, steps=[{"day": 0, "at": "10:00"}, {"day": 1, "at": "10:00"}]
        )
        enroll(first, contact)
        enroll(second, contact)
        run_until(traveller, at(3, "00:00"))
    b1, b2 = Touchpoint.objects.filter(template=second).order_by("step__position")
    assert (b1.status, b1.reason, b1.sent_at) == (TouchStatus.SKIPPED, SkipReason.CAP, None)
    assert b2.sent_at == at(1, "10:00")


def _purchase(contact, when, key="order-1"):
    outcome = events_record(
        events=[EventIn(contact_id=contact.pk, kind=EventKind.PURCHASE, occurred_at=when, idempotency_key=key,
                        amount=Decimal("99.00"), order_id=key)],
        source=EventSource.API,
    )  # fmt: skip
    process_events([outcome[0].event_id])


def test_a_purchase_mid_sequence_ends_it_and_an_older_order_does_not(contact):
    with time_machine.travel(at(0, "08:00"), tick=False) as traveller:
        template = make_template(
            exit_on_purchase=True, steps=[{"day": 0, "at": "10:00"}, {"day": 2, "at": "10:00"}]
        )
        enroll(template, contact)
        _purchase(contact, at(-30, "12:00"), key="old-order")  # happened before the enrollment: no exit
        assert Enrollment.objects.get().status == Enrollment.Status.ACTIVE
        run_until(traveller, at(1, "12:00"))
        _purchase(contact, at(1, "12:00"))
        run_until(traveller, at(5, "00:00"))
    enrollment = Enrollment.objects.get()
    assert (enrollment.status, enrollment.exit_reason) == (Enrollment.Status.EXITED, ExitReason.PURCHASE)
    step2 = Touchpoint.objects.get(step__position=2)
    assert (step2.status, step2.reason, step2.sent_at) == (TouchStatus.SKIPPED, SkipReason.EXITED, None)


def test_opted_out_customers_get_only_transactional_steps(contact):
    contact.opted_out, contact.opted_out_at = True, timezone.now()
    contact.save()
    with time_machine.travel(at(0, "08:00"), tick=False) as traveller:
        template = make_template(
            exit_on_opt_out=False,
            steps=[{"day": 0, "at": "10:00"}, {"day": 0, "at": "11:00", "transactional": True}],
        )
        enroll(template, contact)
        run_until(traveller, at(1, "00:00"))
    marketing, notice = Touchpoint.objects.order_by("step__position")
    assert (marketing.status, marketing.reason) == (TouchStatus.SKIPPED, SkipReason.OPTED_OUT)
    assert (notice.status, notice.sent_at) == (TouchStatus.OPEN, at(0, "11:00"))


def test_a_reply_skips_or_jumps_a_waiting_step(contact):
    with time_machine.travel(at(0, "08:00"), tick=False) as traveller:
        template = make_template(
            steps=[
                {"day": 0, "at": "10:00"},
                {"day": 1, "at": "10:00", "reply_branch": ReplyBranch.JUMP, "jump_to": 4},
                {"day": 2, "at": "10:00"},
                {"day": 3, "at": "10:00"},
            ]
        )
        enroll(template, contact)
        run_until(traveller, at(0, "15:00"))
        reply = events_record(
            events=[EventIn(contact_id=contact.pk, kind=EventKind.MESSAGE_IN, occurred_at=at(0, "15:00"),
                            idempotency_key="msg-1")],
            source=EventSource.API,
        )  # fmt: skip
        process_events([reply[0].event_id])
        run_until(traveller, at(6, "00:00"))
    by_position = {t.step.position: t for t in Touchpoint.objects.select_related("step")}
    assert set(by_position) == {1, 2, 4}  # step 3 was jumped over
    assert (by_position[2].status, by_position[2].reason) == (TouchStatus.SKIPPED, SkipReason.REPLIED)
    assert by_position[4].sent_at == at(3, "10:00")


def test_a_deleted_customer_is_sent_nothing_and_the_run_ends_with_the_reason(contact):
    with time_machine.travel(at(0, "08:00"), tick=False) as traveller:
        template = make_template(steps=[{"day": 0, "at": "10:00"}])
        enroll(template, contact)
        Contact.objects.filter(pk=contact.pk).delete()
        run_until(traveller, at(1, "00:00"))
    touchpoint, enrollment = Touchpoint.objects.get(), Enrollment.objects.get()
    assert (touchpoint.status, touchpoint.reason, touchpoint.sent_at) == (
        TouchStatus.SKIPPED,
        SkipReason.CONTACT_DELETED,
        None,
    )
    assert (enrollment.status, enrollment.exit_reason) == (
        Enrollment.Status.EXITED,
        ExitReason.CONTACT_DELETED,
    )
    assert not touchpoint.deliveries.exists()


def test_a_merge_keeps_one_run_per_template(contact, other_contact, admin_user):
    both = make_template("两人都在", steps=[{"day": 0, "at": "10:00"}, {"day": 5, "at": "10:00"}])
    only_duplicate = make_template("只有副本", steps=[{"day": 0, "at": "10:00"}])
    enroll(both, contact, other_contact)
    enroll(only_duplicate, other_contact)
    merge_contacts(actor=admin_user, survivor=contact, duplicate=other_contact, field_choices={})
    runs = {(e.template_id, e.status, e.exit_reason) for e in Enrollment.objects.filter(contact=contact)}
    assert runs == {
        (both.pk, Enrollment.Status.ACTIVE, ""),
        (both.pk, Enrollment.Status.EXITED, ExitReason.MERGED),
        (only_duplicate.pk, Enrollment.Status.ACTIVE, ""),
    }
    assert not Touchpoint.objects.filter(contact__isnull=True).exists()


def _tag():
    group = TagGroup.objects.create(name="兴趣")
    return Tag.objects.create(group=group, name="咖啡")


def _set_tags(actor, contact, tags, when):
    with time_machine.travel(when, tick=False):
        contact_tags_set(actor=actor, contact=contact, tags=tags)
        drain_contact_touches()
        dispatch_due()


def _reentry_runs(reentry, contact, operator, **fields) -> int:
    tag = _tag()
    with time_machine.travel(at(0, "08:00"), tick=False):
        template = make_template(trigger=Trigger.TAG_ADDED, trigger_tag=tag, reentry=reentry,
                                 steps=[{"day": 0, "at": "08:00"}], **fields)  # fmt: skip
    # The tag goes on, off and on again; each one-step run completes at once.
    _set_tags(operator, contact, [tag], at(0, "10:00"))
    _set_tags(operator, contact, [], at(0, "11:00"))
    _set_tags(operator, contact, [tag], at(0, "12:00"))
    _set_tags(operator, contact, [], at(20, "11:00"))
    _set_tags(operator, contact, [tag], at(20, "12:00"))
    return Enrollment.objects.filter(template=template).count()


def test_reentry_once(contact, operator):
    assert _reentry_runs(Reentry.ONCE, contact, operator) == 1


def test_reentry_after_days(contact, operator):
    assert _reentry_runs(Reentry.AFTER_DAYS, contact, operator, reentry_days=10) == 2


def test_reentry_every_time(contact, operator):
    assert _reentry_runs(Reentry.EVERY_TIME, contact, operator) == 3


def test_a_customer_entering_a_trigger_segment_is_enrolled_with_the_first_step_scheduled(contact, operator):
    tag = _tag()
    segment = Segment.objects.create(
        name="咖啡客", definition={"type": "group", "match": "all", "children": [
            {"type": "tags", "op": "has_any", "tags": [tag.pk]}]},
    )  # fmt: skip
    segment_refresh(segment_id=segment.pk)
    with time_machine.travel(at(0, "08:00"), tick=False):
        template = make_template(
            trigger=Trigger.SEGMENT_ENTERED, trigger_segment=segment, steps=[{"day": 0, "at": "10:00"}]
        )
    with time_machine.travel(at(0, "09:00"), tick=False):
        contact_tags_set(actor=operator, contact=contact, tags=[tag])
        drain_contact_touches()
    enrollment = Enrollment.objects.get(template=template)
    assert enrollment.contact == contact and enrollment.trigger_key.startswith("seg:")
    assert Touchpoint.objects.get(enrollment=enrollment).due_at == at(0, "10:00")
    # Seen again (a second drain, the 30 s sweep): nothing more.
    drain_contact_touches()
    assert Enrollment.objects.filter(template=template).count() == 1


def test_a_new_contact_starts_the_welcome_and_an_imported_old_one_does_not(operator):
    with time_machine.travel(at(0, "08:00"), tick=False):
        template = make_template(trigger=Trigger.CONTACT_ADDED, steps=[{"day": 0, "at": "10:00"}])
    with time_machine.travel(at(0, "09:00"), tick=False):
        new = contact_create(actor=operator, data={"name": "新客", "owner": operator})
        old = contact_create(
            actor=operator, data={"name": "老客", "owner": operator, "joined_at": at(-400, "09:00")}
        )
        drain_contact_touches()
    assert list(Enrollment.objects.filter(template=template).values_list("contact_id", flat=True)) == [new.pk]
    assert old.pk not in Enrollment.objects.values_list("contact_id", flat=True)


def test_opting_out_ends_runs_that_exit_on_it(contact, operator):
    template = make_template(
        exit_on_opt_out=True, steps=[{"day": 0, "at": "10:00"}, {"day": 3, "at": "10:00"}]
    )
    enroll(template, contact)
    contact_update(actor=operator, contact=contact, changes={"opted_out": True})
    drain_contact_touches()
    enrollment = Enrollment.objects.get()
    assert (enrollment.status, enrollment.exit_reason) == (Enrollment.Status.EXITED, ExitReason.OPTED_OUT)


def test_a_deactivated_owners_tasks_go_to_their_manager_with_the_reason(contact, operator, manager):
    with time_machine.travel(at(0, "08:00"), tick=False) as traveller:
        template = make_template(steps=[{"day": 0, "at": "10:00"}, {"day": 1, "at": "10:00"}])
        enroll(template, contact)
        run_until(traveller, at(0, "12:00"))
        first = Touchpoint.objects.get(step__position=1)
        assert (first.assignee, first.note) == (operator, "")
        operator.is_active = False
        operator.save()
        run_until(traveller, at(1, "12:00"))
    first.refresh_from_db()
    second = Touchpoint.objects.get(step__position=2)
    # The open task moved, and the next one was issued to the manager, each saying why.
    assert (first.assignee, first.note) == (manager, "owner_deactivated")
    assert (second.status, second.assignee, second.note) == (TouchStatus.OPEN, manager, "owner_deactivated")
