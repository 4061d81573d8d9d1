"""sop.services: templates, steps, activation, manual enrollment and the guards' settings."""

from datetime import time

import pytest
from django.core.exceptions import ValidationError

from contacts.models import AuditEntry, Contact, EventKind
from segments.models import Segment, SegmentKind, SegmentMembership
from sop import services
from sop.models import (
    MAX_OFFSET_DAYS,
    MAX_OFFSET_HOURS,
    Enrollment,
    ExitReason,
    OffsetKind,
    Reentry,
    SkipReason,
    SopStep,
    SopTemplate,
    Touchpoint,
    TouchStatus,
    Trigger,
)

from .conftest import add_step


def _messages(error: ValidationError) -> dict[str, list[str]]:
    return error.message_dict if hasattr(error, "error_dict") else {"__all__": error.messages}


def save(actor, template=None, **data):
    return services.template_save(actor=actor, template=template, data={"name": "模板", **data})


# --- template_save ----------------------------------------------------------------------------------------


def test_create_template_is_audited(admin_user):
    template = save(admin_user, trigger=Trigger.MANUAL, description="手动")
    assert template.pk and not template.active and template.created_by == admin_user
    entry = AuditEntry.objects.get(action="sop_template.created")
    assert entry.actor == admin_user and entry.after["name"] == "模板"


@pytest.mark.parametrize(
    "trigger,field,message",
    [
        (Trigger.TAG_ADDED, "trigger_tag", "Choose the tag that starts the sequence."),
        (Trigger.SEGMENT_ENTERED, "trigger_segment", "Choose the segment."),
        (Trigger.SEGMENT_EXITED, "trigger_segment", "Choose the segment."),
        (Trigger.EVENT, "trigger_event_kind", "Choose the kind of event."),
    ],
)
def test_trigger_needs_its_setting(admin_user, trigger, field, message):
    with pytest.raises(ValidationError) as caught:
        save(admin_user, trigger=trigger)
    assert _messages(caught.value)[field] == [message]
    assert not SopTemplate.objects.exists()


def test_trigger_with_its_setting(admin_user, tag, segment):
    assert save(admin_user, trigger=Trigger.TAG_ADDED, trigger_tag=tag).trigger_tag == tag
    assert (
        save(admin_user, trigger=Trigger.SEGMENT_EXITED, trigger_segment=segment).trigger_segment == segment
    )
    event = save(
        admin_user, trigger=Trigger.EVENT, trigger_event_kind=EventKind.PURCHASE, trigger_first_only=True
    )
    assert event.trigger_first_only


def test_unused_trigger_fields_are_cleared(admin_user, tag, segment):
    template = save(admin_user, trigger=Trigger.TAG_ADDED, trigger_tag=tag)
    template = save(
        admin_user, template, trigger=Trigger.SEGMENT_ENTERED, trigger_segment=segment, trigger_tag=tag
    )
    template.refresh_from_db()
    assert template.trigger_tag is None and template.trigger_segment == segment


def test_segment_must_be_visible_to_the_actor(operator, manager, admin_user):
    hidden = Segment.objects.create(name="别人的", kind=SegmentKind.STATIC, created_by=manager)
    with pytest.raises(ValidationError) as caught:
        save(operator, trigger=Trigger.SEGMENT_ENTERED, trigger_segment=hidden)
    assert _messages(caught.value)["trigger_segment"] == ["Choose a segment you can see."]
    with pytest.raises(ValidationError) as caught:
        save(operator, trigger=Trigger.MANUAL, audience=hidden)
    assert "audience" in _messages(caught.value)
    assert save(admin_user, trigger=Trigger.SEGMENT_ENTERED, trigger_segment=hidden).pk


@pytest.mark.parametrize("trigger", [Trigger.CHURN_ALERT, Trigger.LEVEL_CHANGED, Trigger.POINTS_EXPIRING])
def test_future_triggers_are_refused(admin_user, trigger):
    with pytest.raises(ValidationError) as caught:
        save(admin_user, trigger=trigger)
    assert "available when the loyalty/churn app arrives" in _messages(caught.value)["trigger"][0]


def test_birthday_days_before_range(admin_user):
    assert save(admin_user, trigger=Trigger.BIRTHDAY, birthday_days_before=60).birthday_days_before == 60
    with pytest.raises(ValidationError) as caught:
        save(admin_user, trigger=Trigger.BIRTHDAY, birthday_days_before=61)
    assert _messages(caught.value)["birthday_days_before"] == ["Between 0 and 60 days before the birthday."]


def test_reentry_after_days_needs_days(admin_user):
    with pytest.raises(ValidationError) as caught:
        save(admin_user, reentry=Reentry.AFTER_DAYS, reentry_days=None)
    assert "reentry_days" in _messages(caught.value)
    assert save(admin_user, reentry=Reentry.AFTER_DAYS, reentry_days=14).reentry_days == 14


def test_model_limits_are_checked(admin_user):
    with pytest.raises(ValidationError) as caught:
        save(admin_user, priority=500, name="")
    assert {"priority", "name"} <= set(_messages(caught.value))


def test_active_template_stays_valid_when_its_trigger_changes(admin_user, sop_template, tag):
    services.template_activate(actor=admin_user, template=sop_template)
    sop_template.refresh_from_db()
    first_activation = sop_template.activated_at
    with pytest.raises(ValidationError):
        save(admin_user, sop_template, trigger=Trigger.CHURN_ALERT)
    with pytest.raises(ValidationError):
        save(admin_user, sop_template, trigger=Trigger.TAG_ADDED)
    sop_template.refresh_from_db()
    assert sop_template.trigger == Trigger.MANUAL and sop_template.active
    changed = save(admin_user, sop_template, trigger=Trigger.TAG_ADDED, trigger_tag=tag)
    assert changed.active and changed.activated_at > first_activation  # fires only from now on
    renamed = save(admin_user, changed, trigger=Trigger.TAG_ADDED, trigger_tag=tag, name="改名")
    assert renamed.activated_at == changed.activated_at


# --- template_problems / activate / deactivate ------------------------------------------------------------


def test_problems_of_an_empty_template(admin_user):
    template = save(admin_user)
    assert services.template_problems(template) == ["Add at least one step."]
    with pytest.raises(ValidationError) as caught:
        services.template_activate(actor=admin_user, template=template)
    assert caught.value.messages == ["Add at least one step."]
    template.refresh_from_db()
    assert not template.active


def test_problems_name_each_bad_step(sop_template):
    # Saved behind the service's back (an older release, the Django admin): activation still refuses.
    SopStep.objects.filter(position=1).update(content="{{ contact.phone }}")
    SopStep.objects.filter(position=2).update(channel="carrier_pigeon")
    add_step(sop_template, channel="email", channel_config={})
    add_step(sop_template, channel="webhook", channel_config={"url": "ftp://x", "secret": "short"})
    add_step(sop_template, reply_branch="jump", jump_to=2)
    add_step(sop_template, reply_branch="jump", jump_to=99)
    problems = services.template_problems(sop_template)
    text = "\n".join(problems)
    assert "Step 1 “第1步”: Unknown variable “contact.phone”" in text
    assert "Step 2 “第2步”: unknown channel “carrier_pigeon”." in text
    assert "Step 3 “第3步”: An email needs a subject." in text
    assert "Step 4 “第4步”: Enter a full http:// or https:// URL." in text
    assert "Step 4 “第4步”: Use a signing secret of at least 16 characters." in text
    assert "Step 5 “第5步”: it may only jump to a later step." in text
    assert "Step 6 “第6步”: it jumps to a step that does not exist." in text


def test_future_trigger_is_a_problem(sop_template):
    SopTemplate.objects.filter(pk=sop_template.pk).update(trigger=Trigger.CHURN_ALERT)
    sop_template.refresh_from_db()
    assert any("loyalty/churn" in p for p in services.template_problems(sop_template))


def test_activate_and_audit(admin_user, sop_template):
    assert services.template_activate(actor=admin_user, template=sop_template, enroll_current=True) == 0
    sop_template.refresh_from_db()
    assert sop_template.active and sop_template.activated_at
    assert AuditEntry.objects.filter(action="sop_template.activated", object_id=str(sop_template.pk)).exists()


def test_activate_with_enroll_current_enrolls_exactly_the_members(
    admin_user, segment, contact, other_contact, unowned_contact
):
    template = save(admin_user, trigger=Trigger.SEGMENT_ENTERED, trigger_segment=segment)
    add_step(template, offset_kind=OffsetKind.HOURS_AFTER, offset_hours=2)
    add_step(template)
    enrolled = services.template_activate(actor=admin_user, template=template, enroll_current=True)
    assert enrolled == 2
    enrollments = Enrollment.objects.filter(template=template)
    assert set(enrollments.values_list("contact_id", flat=True)) == {contact.pk, other_contact.pk}
    assert all(e.trigger_key.startswith("start:") and e.enrolled_by == admin_user for e in enrollments)


def test_activate_with_enroll_current_makes_first_touchpoints(admin_user, segment):
    template = save(admin_user, trigger=Trigger.SEGMENT_ENTERED, trigger_segment=segment)
    add_step(template, offset_kind=OffsetKind.HOURS_AFTER, offset_hours=2)
    add_step(template)
    services.template_activate(actor=admin_user, template=template, enroll_current=True)
    touches = Touchpoint.objects.filter(template=template)
    assert touches.count() == 2
    assert set(touches.values_list("step__position", flat=True)) == {1}
    assert all(t.status == TouchStatus.SCHEDULED for t in touches)


def test_activate_without_enroll_current_enrolls_nobody(admin_user, segment):
    template = save(admin_user, trigger=Trigger.SEGMENT_ENTERED, trigger_segment=segment)
    add_step(template)
    assert services.template_activate(actor=admin_user, template=template, enroll_current=False) == 0
    assert not Enrollment.objects.exists()


def test_deactivate_exits_runs_and_skips_pending(admin_user, sop_template, contact, other_contact):
    services.template_activate(actor=admin_user, template=sop_template)
    sop_template.refresh_from_db()
    ids = Contact.objects.filter(pk__in=[contact.pk, other_contact.pk]).values("id")
    assert services.template_enroll(actor=admin_user, template=sop_template, contact_ids=ids) == 2
    assert services.template_deactivate(actor=admin_user, template=sop_template) == 2
    sop_template.refresh_from_db()
    assert not sop_template.active
    assert set(Enrollment.objects.values_list("status", "exit_reason")) == {
        (Enrollment.Status.EXITED, ExitReason.TEMPLATE_STOPPED)
    }
    assert set(Touchpoint.objects.values_list("status", "reason")) == {
        (TouchStatus.SKIPPED, SkipReason.EXITED)
    }


# --- steps ------------------------------------------------------------------------------------------------


def step_data(**over):
    return {
        "name": "欢迎", "offset_kind": OffsetKind.DAY_AT, "offset_days": 0, "offset_time": time(10, 0),
        "offset_hours": 24, "channel": "task", "channel_config": {}, "content": "{{ contact.name }}您好",
        "transactional": False, "action_add_tag": None, "reply_branch": "", "jump_to": None,
    } | over  # fmt: skip


def test_new_steps_go_last(admin_user, sop_template):
    step = services.step_save(actor=admin_user, template=sop_template, step=None, data=step_data())
    assert step.position == 3
    assert AuditEntry.objects.filter(action="sop_step.created").exists()


@pytest.mark.parametrize(
    "over,field",
    [
        ({"content": "{{ contact.phone }}"}, "content"),
        ({"content": "{% if %}"}, "content"),
        ({"content": ""}, "content"),
        ({"channel": "fax"}, "channel"),
        ({"channel": "email", "channel_config": {"subject": ""}}, "config_subject"),
        ({"channel": "webhook", "channel_config": {"url": "nope", "secret": "x" * 20}}, "config_url"),
        (
            {"channel": "webhook", "channel_config": {"url": "https://h.example/x", "secret": "x"}},
            "config_secret",
        ),
        ({"offset_days": MAX_OFFSET_DAYS + 1}, "offset_days"),
        ({"offset_kind": OffsetKind.HOURS_AFTER, "offset_hours": MAX_OFFSET_HOURS + 1}, "offset_hours"),
        ({"offset_time": None}, "offset_time"),
        ({"reply_branch": "jump", "jump_to": None}, "jump_to"),
        ({"reply_branch": "jump", "jump_to": 1}, "jump_to"),
    ],
)
def test_step_validation(admin_user, sop_template, over, field):
    with pytest.raises(ValidationError) as caught:
        services.step_save(actor=admin_user, template=sop_template, step=None, data=step_data(**over))
    assert field in _messages(caught.value)
    assert sop_template.steps.count() == 2


def test_step_jump_only_forward_and_to_an_existing_step(admin_user, sop_template):
    first = sop_template.steps.get(position=1)
    with pytest.raises(ValidationError) as caught:
        services.step_save(actor=admin_user, template=sop_template, step=first,
                           data=step_data(reply_branch="jump", jump_to=7))  # fmt: skip
    assert _messages(caught.value)["jump_to"] == ["There is no step 7."]
    saved = services.step_save(actor=admin_user, template=sop_template, step=first,
                               data=step_data(reply_branch="jump", jump_to=2))  # fmt: skip
    assert saved.jump_to == 2
    # jump_to is dropped without the jump branch
    saved = services.step_save(actor=admin_user, template=sop_template, step=first,
                               data=step_data(reply_branch="skip", jump_to=2))  # fmt: skip
    assert saved.jump_to is None


def test_step_channel_settings_saved(admin_user, sop_template):
    config = {"url": "https://hooks.example.com/scrm", "secret": "s" * 16}
    step = services.step_save(actor=admin_user, template=sop_template, step=None,
                              data=step_data(channel="webhook", channel_config=config))  # fmt: skip
    step.refresh_from_db()
    assert step.channel_config == config


def test_step_delete_closes_the_gap(admin_user, sop_template):
    add_step(sop_template)
    fourth = add_step(sop_template, reply_branch="jump", jump_to=5)
    add_step(sop_template, name="最后")
    services.step_delete(actor=admin_user, step=sop_template.steps.get(position=2))
    assert list(sop_template.steps.order_by("position").values_list("position", "name")) == [
        (1, "第1步"), (2, "第3步"), (3, "第4步"), (4, "最后"),
    ]  # fmt: skip
    fourth.refresh_from_db()
    assert fourth.jump_to == 4  # still the step named 最后


def test_step_delete_refused_with_touchpoints(admin_user, sop_template, contact):
    services.template_activate(actor=admin_user, template=sop_template)
    sop_template.refresh_from_db()
    services.template_enroll(
        actor=admin_user, template=sop_template, contact_ids=Contact.objects.values("id")
    )
    with pytest.raises(ValidationError) as caught:
        services.step_delete(actor=admin_user, step=sop_template.steps.get(position=1))
    assert "lose that history" in caught.value.messages[0]
    assert "duplicate it" in caught.value.messages[0]
    assert sop_template.steps.count() == 2


def test_step_delete_refused_when_another_step_jumps_to_it(admin_user, sop_template):
    add_step(sop_template)
    SopStep.objects.filter(position=1).update(reply_branch="jump", jump_to=3)
    with pytest.raises(ValidationError) as caught:
        services.step_delete(actor=admin_user, step=sop_template.steps.get(position=3))
    assert "change them first" in caught.value.messages[0]


def test_last_step_of_an_active_template_cannot_go(admin_user, sop_template):
    services.step_delete(actor=admin_user, step=sop_template.steps.get(position=2))
    services.template_activate(actor=admin_user, template=sop_template)
    sop_template.refresh_from_db()
    with pytest.raises(ValidationError):
        services.step_delete(actor=admin_user, step=sop_template.steps.get())


def test_step_move_swaps(admin_user, sop_template):
    add_step(sop_template, name="三")
    second = sop_template.steps.get(position=2)
    services.step_move(actor=admin_user, step=second, direction="up")
    assert list(sop_template.steps.order_by("position").values_list("name", flat=True)) == [
        "第2步",
        "第1步",
        "三",
    ]
    services.step_move(actor=admin_user, step=second, direction="down")
    services.step_move(actor=admin_user, step=second, direction="down")
    assert list(sop_template.steps.order_by("position").values_list("name", flat=True)) == [
        "第1步",
        "三",
        "第2步",
    ]
    assert AuditEntry.objects.filter(action="sop_step.moved").count() == 3


def test_step_move_at_the_ends_and_bad_direction(admin_user, sop_template):
    first, last = sop_template.steps.get(position=1), sop_template.steps.get(position=2)
    with pytest.raises(ValidationError, match="already the first"):
        services.step_move(actor=admin_user, step=first, direction="up")
    with pytest.raises(ValidationError, match="already the last"):
        services.step_move(actor=admin_user, step=last, direction="down")
    with pytest.raises(ValidationError):
        services.step_move(actor=admin_user, step=last, direction="sideways")


def test_step_move_keeps_jumps_on_their_step_and_forward(admin_user, sop_template):
    add_step(sop_template, name="三")
    add_step(sop_template, name="四")
    SopStep.objects.filter(template=sop_template, position=1).update(reply_branch="jump", jump_to=3)
    services.step_move(actor=admin_user, step=sop_template.steps.get(name="三"), direction="down")
    jumper = sop_template.steps.get(position=1)
    assert jumper.jump_to == 4 and sop_template.steps.get(position=4).name == "三"
    # Step 2 jumping to 三 (now 4); moving 三 above step 2 would make it jump backwards
    SopStep.objects.filter(template=sop_template, position=2).update(reply_branch="jump", jump_to=4)
    services.step_move(
        actor=admin_user, step=sop_template.steps.get(name="三"), direction="up"
    )  # 4 -> 3: fine
    with pytest.raises(ValidationError, match="jump backwards"):
        services.step_move(actor=admin_user, step=sop_template.steps.get(name="三"), direction="up")
    assert sop_template.steps.get(name="三").position == 3
    assert sop_template.steps.get(position=2).jump_to == 3


def test_duplicate_copies_steps_inactive(admin_user, sop_template):
    services.template_activate(actor=admin_user, template=sop_template)
    sop_template.refresh_from_db()
    copy = services.template_duplicate(actor=admin_user, template=sop_template)
    assert copy.pk != sop_template.pk and not copy.active and copy.activated_at is None
    assert copy.name == "新客欢迎 (copy)"
    assert list(copy.steps.values_list("position", "name")) == list(
        sop_template.steps.values_list("position", "name")
    )
    assert sop_template.steps.count() == 2


# --- manual enrollment ------------------------------------------------------------------------------------


def test_enroll_only_into_an_active_template(admin_user, sop_template):
    with pytest.raises(ValidationError, match="activate it first"):
        services.template_enroll(
            actor=admin_user, template=sop_template, contact_ids=Contact.objects.values("id")
        )


def test_enroll_respects_visibility(
    operator, manager, admin_user, sop_template, contact, other_contact, unowned_contact
):
    services.template_activate(actor=admin_user, template=sop_template)
    sop_template.refresh_from_db()
    everyone = Contact.objects.values("id")
    assert services.template_enroll(actor=operator, template=sop_template, contact_ids=everyone) == 1
    assert set(Enrollment.objects.values_list("contact_id", flat=True)) == {contact.pk}
    enrollment = Enrollment.objects.get()
    assert enrollment.trigger_key.startswith("manual:") and enrollment.enrolled_by == operator
    # The manager sees the team and the pool (公海); those already running are left out.
    assert services.template_enroll(actor=manager, template=sop_template, contact_ids=everyone) == 2


def test_enroll_makes_first_touchpoints(admin_user, sop_template, contact):
    services.template_activate(actor=admin_user, template=sop_template)
    sop_template.refresh_from_db()
    services.template_enroll(
        actor=admin_user, template=sop_template, contact_ids=Contact.objects.values("id")
    )
    touch = Touchpoint.objects.get()
    assert touch.step.position == 1 and touch.contact == contact and touch.status == TouchStatus.SCHEDULED


def test_enroll_respects_reentry(admin_user, sop_template, contact):
    services.template_activate(actor=admin_user, template=sop_template)
    sop_template.refresh_from_db()
    ids = Contact.objects.filter(pk=contact.pk).values("id")
    assert services.template_enroll(actor=admin_user, template=sop_template, contact_ids=ids) == 1
    Enrollment.objects.update(status=Enrollment.Status.COMPLETED)
    assert services.template_enroll(actor=admin_user, template=sop_template, contact_ids=ids) == 0  # once
    SopTemplate.objects.filter(pk=sop_template.pk).update(reentry=Reentry.EVERY_TIME)
    sop_template.refresh_from_db()
    assert services.template_enroll(actor=admin_user, template=sop_template, contact_ids=ids) == 1


def test_enroll_a_segment_respects_the_audience(admin_user, sop_template, segment, contact, unowned_contact):
    audience = Segment.objects.create(name="受众", kind=SegmentKind.STATIC, created_by=admin_user)
    SegmentMembership.objects.create(segment=audience, contact=contact)
    SopTemplate.objects.filter(pk=sop_template.pk).update(audience=audience, active=True)
    sop_template.refresh_from_db()
    members = SegmentMembership.objects.filter(segment=segment).values("contact_id")
    assert services.template_enroll(actor=admin_user, template=sop_template, contact_ids=members) == 1
    assert Enrollment.objects.get().contact == contact


# --- settings ---------------------------------------------------------------------------------------------


def settings_data(**over):
    return {"cap_per_day": 1, "cap_per_week": 3, "quiet_start": time(21), "quiet_end": time(9),
            "unsubscribe_text": "回复 TD 退订"} | over  # fmt: skip


def test_settings_update(admin_user):
    row = services.sop_settings_update(
        actor=admin_user, data=settings_data(cap_per_day=2, quiet_start=time(22))
    )
    assert row.cap_per_day == 2 and row.quiet_start == time(22) and row.updated_by == admin_user
    assert AuditEntry.objects.get(action="sop_settings.changed").after["quiet_start"] == "22:00:00"


def test_settings_no_quiet_hours(admin_user):
    row = services.sop_settings_update(
        actor=admin_user, data=settings_data(quiet_start=time(0), quiet_end=time(0))
    )
    assert row.quiet_start == row.quiet_end


@pytest.mark.parametrize(
    "over,field",
    [
        ({"cap_per_day": 4, "cap_per_week": 3}, "cap_per_day"),
        ({"cap_per_day": 0}, "cap_per_day"),
        ({"cap_per_week": 51}, "cap_per_week"),
        ({"unsubscribe_text": "   "}, "unsubscribe_text"),
        ({"quiet_start": None}, "quiet_start"),
    ],
)
def test_settings_validation(admin_user, over, field):
    with pytest.raises(ValidationError) as caught:
        services.sop_settings_update(actor=admin_user, data=settings_data(**over))
    assert field in _messages(caught.value)


# --- the enrollment functions as the admin side uses them -------------------------------------------------


def test_enrollments_start_writes_first_touchpoints(sop_template, contact):
    from sop.enrollment import enrollments_start, pairs_source

    assert enrollments_start(template=sop_template, source=pairs_source([(contact.pk, "t")])) == 1
    assert Touchpoint.objects.filter(contact=contact).count() == 1


def test_queryset_source_binds_parameters_in_order(admin_user, sop_template, segment):
    from sop.enrollment import enrollments_start, queryset_source

    SopTemplate.objects.filter(pk=sop_template.pk).update(active=True)
    members = SegmentMembership.objects.filter(segment=segment).values("contact_id")
    source = queryset_source(members, "start:x")
    assert enrollments_start(template=sop_template, source=source) == 2
