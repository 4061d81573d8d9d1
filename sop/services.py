"""Writes of the SOP app's admin side: templates, their steps, activation, manual enrollment and the guards'
settings. Keyword-only, typed, atomic and audited (contacts.services.audit_record).

Validation lives here, not in the forms: a form only parses; every rule a template or a step must keep is
checked by the service, so the API and the pages refuse the same things with the same words. A failure is a
ValidationError whose message dict is keyed by form field (the views hand it to form.add_error)."""

from collections.abc import Mapping
from datetime import datetime, time

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Max, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from contacts.selectors import contacts_visible_to
from contacts.services import audit_record
from contacts.services import snapshot as _snapshot
from segments.models import SegmentMembership
from segments.selectors import segments_visible_to

from .channels import get_channel
from .content import content_errors
from .enrollment import enrollments_exit, enrollments_start, queryset_source
from .models import (
    FUTURE_TRIGGERS,
    MAX_OFFSET_DAYS,
    MAX_OFFSET_HOURS,
    Enrollment,
    ExitReason,
    OffsetKind,
    Reentry,
    ReplyBranch,
    SopSettings,
    SopStep,
    SopTemplate,
    Trigger,
)
from .selectors import sop_settings

# Which trigger uses which of the trigger fields; the others are cleared on save so a template never keeps
# a stale tag or segment from a trigger it no longer has.
TRIGGER_FIELDS = {
    Trigger.CONTACT_ADDED: ("trigger_source",),
    Trigger.TAG_ADDED: ("trigger_tag",),
    Trigger.SEGMENT_ENTERED: ("trigger_segment",),
    Trigger.SEGMENT_EXITED: ("trigger_segment",),
    Trigger.EVENT: ("trigger_event_kind", "trigger_first_only"),
    Trigger.BIRTHDAY: ("birthday_days_before",),
}
TRIGGER_DEFAULTS = {
    "trigger_source": "",
    "trigger_tag": None,
    "trigger_segment": None,
    "trigger_event_kind": "",
    "trigger_first_only": False,
    "birthday_days_before": 0,
}
TEMPLATE_FIELDS = (
    "name", "description", "priority", "trigger", *TRIGGER_DEFAULTS, "audience", "reentry", "reentry_days",
    "cap_policy", "exit_on_purchase", "exit_on_reply", "exit_on_opt_out", "exit_tag", "exit_on_audience_left",
    "exit_goal_kind", "attribution_days",
)  # fmt: skip
AUDITED_TEMPLATE = (
    "name", "priority", "trigger", "trigger_source", "trigger_tag_id", "trigger_segment_id", "trigger_event_kind",
    "trigger_first_only", "birthday_days_before", "audience_id", "reentry", "reentry_days", "cap_policy",
    "exit_on_purchase", "exit_on_reply", "exit_on_opt_out", "exit_tag_id", "exit_on_audience_left",
    "exit_goal_kind", "attribution_days", "active",
)  # fmt: skip
STEP_FIELDS = (
    "name", "offset_kind", "offset_days", "offset_time", "offset_hours", "channel", "channel_config", "content",
    "transactional", "action_add_tag", "reply_branch", "jump_to",
)  # fmt: skip
AUDITED_STEP = (
    "position", "name", "offset_kind", "offset_days", "offset_time", "offset_hours", "channel", "content",
    "transactional", "action_add_tag_id", "reply_branch", "jump_to",
)  # fmt: skip
SETTINGS_FIELDS = ("cap_per_day", "cap_per_week", "quiet_start", "quiet_end", "unsubscribe_text")


def snapshot(obj, fields) -> dict:
    """contacts.services.snapshot, with times of day as text (the audit's JSON has no time type)."""
    return {k: v.isoformat() if isinstance(v, time) else v for k, v in _snapshot(obj, fields).items()}


def _future_trigger_error(trigger: str) -> str:
    return _("“%(trigger)s” is available when the loyalty/churn app arrives.") % {
        "trigger": Trigger(trigger).label
    }


# --- templates --------------------------------------------------------------------------------------------


def trigger_errors(*, actor, template: SopTemplate) -> dict[str, str]:
    """field -> why the trigger settings are incomplete; {} when they are fine."""
    errors: dict[str, str] = {}
    trigger = template.trigger
    if trigger in FUTURE_TRIGGERS:
        errors["trigger"] = _future_trigger_error(trigger)
    elif trigger == Trigger.TAG_ADDED and template.trigger_tag_id is None:
        errors["trigger_tag"] = _("Choose the tag that starts the sequence.")
    elif trigger in (Trigger.SEGMENT_ENTERED, Trigger.SEGMENT_EXITED):
        if template.trigger_segment_id is None:
            errors["trigger_segment"] = _("Choose the segment.")
        elif not segments_visible_to(actor).filter(pk=template.trigger_segment_id).exists():
            errors["trigger_segment"] = _("Choose a segment you can see.")
    elif trigger == Trigger.EVENT and not template.trigger_event_kind:
        errors["trigger_event_kind"] = _("Choose the kind of event.")
    elif trigger == Trigger.BIRTHDAY and not 0 <= (template.birthday_days_before or 0) <= 60:
        errors["birthday_days_before"] = _("Between 0 and 60 days before the birthday.")
    if template.audience_id and not segments_visible_to(actor).filter(pk=template.audience_id).exists():
        errors["audience"] = _("Choose a segment you can see.")
    if template.reentry == Reentry.AFTER_DAYS and not template.reentry_days:
        errors["reentry_days"] = _("Say after how many days a customer may start again.")
    return errors


def _clear_unused_trigger_fields(template: SopTemplate) -> None:
    used = TRIGGER_FIELDS.get(template.trigger, ())
    for name, default in TRIGGER_DEFAULTS.items():
        if name not in used:
            setattr(template, name, default)


def _trigger_snapshot(template: SopTemplate) -> tuple:
    return tuple(getattr(template, f if f not in ("trigger_tag", "trigger_segment") else f + "_id")
                 for f in ("trigger", *TRIGGER_DEFAULTS))  # fmt: skip


@transaction.atomic
def template_save(*, actor, template: SopTemplate | None, data: Mapping) -> SopTemplate:
    """Create (template None) or change a template. An active template stays activatable: a change that would
    leave it with problems is refused. When an active template's trigger changes, it fires only for what
    happens from now on (activated_at moves to now)."""
    creating = template is None
    if creating:
        template = SopTemplate(created_by=actor if getattr(actor, "is_authenticated", False) else None)
        before = {}
    else:
        before = snapshot(template, AUDITED_TEMPLATE)
    old_trigger = _trigger_snapshot(template)
    for name in TEMPLATE_FIELDS:
        if name in data:
            setattr(template, name, data[name])
    _clear_unused_trigger_fields(template)
    errors = trigger_errors(actor=actor, template=template)
    if errors:
        raise ValidationError(errors)
    template.full_clean(exclude=["created_by", "activated_at"])
    if template.active:
        problems = template_problems(template)
        if problems:
            raise ValidationError([_("An active template must stay ready to run:"), *problems])
        if _trigger_snapshot(template) != old_trigger:
            template.activated_at = timezone.now()
    template.save()
    audit_record(actor=actor, action="sop_template.created" if creating else "sop_template.changed",
                 obj=template, before=before, after=snapshot(template, AUDITED_TEMPLATE))  # fmt: skip
    return template


def _step_problems(step: SopStep, positions: set[int]) -> list[str]:
    prefix = _("Step %(n)s “%(name)s”:") % {"n": step.position, "name": step.name}
    problems = [f"{prefix} {e}" for e in content_errors(step.content)]
    channel = get_channel(step.channel)
    if channel is None:
        problems.append(f"{prefix} " + _("unknown channel “%(c)s”.") % {"c": step.channel})
    else:
        problems += [f"{prefix} {e}" for e in channel.config_errors(step.channel_config or {}).values()]
    if step.reply_branch == ReplyBranch.JUMP:
        if step.jump_to is None or step.jump_to not in positions:
            problems.append(f"{prefix} " + _("it jumps to a step that does not exist."))
        elif step.jump_to <= step.position:
            problems.append(f"{prefix} " + _("it may only jump to a later step."))
    return problems


def template_problems(template: SopTemplate) -> list[str]:
    """Why `template` cannot be activated, in words; [] when it can."""
    problems = []
    if template.trigger in FUTURE_TRIGGERS:
        problems.append(_future_trigger_error(template.trigger))
    steps = list(template.steps.order_by("position")) if template.pk else []
    if not steps:
        problems.append(_("Add at least one step."))
    positions = {s.position for s in steps}
    for step in steps:
        problems += _step_problems(step, positions)
    return problems


def segment_trigger_members(template: SopTemplate) -> QuerySet:
    """The current members of a segment_entered template's segment (what activation may enroll)."""
    if template.trigger != Trigger.SEGMENT_ENTERED or not template.trigger_segment_id:
        return SegmentMembership.objects.none()
    return SegmentMembership.objects.filter(segment_id=template.trigger_segment_id)


@transaction.atomic
def template_activate(*, actor, template: SopTemplate, enroll_current: bool = False) -> int:
    """Switch the template on; with enroll_current and a segment_entered trigger, also enroll the segment's
    current members. Returns how many were enrolled."""
    template = SopTemplate.objects.select_for_update().get(pk=template.pk)
    problems = template_problems(template)
    if problems:
        raise ValidationError(problems)
    now = timezone.now()
    template.active, template.activated_at = True, now
    template.save(update_fields=["active", "activated_at", "updated_at"])
    enrolled = 0
    if enroll_current and template.trigger == Trigger.SEGMENT_ENTERED:
        members = segment_trigger_members(template).values("contact_id")
        source = queryset_source(members, f"start:{now.isoformat()}")
        enrolled = enrollments_start(template=template, source=source, actor=actor, now=now)
    audit_record(actor=actor, action="sop_template.activated", obj=template,
                 after={"enroll_current": enroll_current, "enrolled": enrolled})  # fmt: skip
    return enrolled


@transaction.atomic
def template_deactivate(*, actor, template: SopTemplate) -> int:
    """Switch the template off; its runs in progress end (template stopped) and what they still had to send is
    skipped. Returns how many runs ended."""
    template = SopTemplate.objects.select_for_update().get(pk=template.pk)
    template.active = False
    template.save(update_fields=["active", "updated_at"])
    ended = enrollments_exit(Enrollment.objects.filter(template=template), reason=ExitReason.TEMPLATE_STOPPED)
    audit_record(actor=actor, action="sop_template.deactivated", obj=template, after={"runs_ended": ended})
    return ended


@transaction.atomic
def template_duplicate(*, actor, template: SopTemplate) -> SopTemplate:
    """An inactive copy with the same settings and steps."""
    steps = list(template.steps.order_by("position"))
    copy = SopTemplate.objects.get(pk=template.pk)
    copy.pk = None
    copy.name = (_("%(name)s (copy)") % {"name": template.name})[:100]
    copy.active, copy.activated_at = False, None
    copy.created_by = actor if getattr(actor, "is_authenticated", False) else None
    copy.save()
    for step in steps:
        step.pk, step.template = None, copy
    SopStep.objects.bulk_create(steps)
    audit_record(actor=actor, action="sop_template.duplicated", obj=copy, before={"source": template.pk})
    return copy


# --- steps ------------------------------------------------------------------------------------------------


def _offset_errors(step: SopStep) -> dict[str, str]:
    if step.offset_kind == OffsetKind.HOURS_AFTER:
        if step.offset_hours is None or not 0 <= step.offset_hours <= MAX_OFFSET_HOURS:
            return {"offset_hours": _("Between 0 and %(n)s hours.") % {"n": MAX_OFFSET_HOURS}}
    elif step.offset_kind == OffsetKind.DAY_AT:
        if step.offset_days is None or not 0 <= step.offset_days <= MAX_OFFSET_DAYS:
            return {"offset_days": _("Between day 0 and day %(n)s.") % {"n": MAX_OFFSET_DAYS}}
        if step.offset_time is None:
            return {"offset_time": _("Enter the time of day.")}
    else:
        return {"offset_kind": _("Choose when the step is due.")}
    return {}


def _branch_errors(step: SopStep, positions: set[int]) -> dict[str, str]:
    if step.reply_branch != ReplyBranch.JUMP:
        step.jump_to = None
        return {}
    if step.jump_to is None:
        return {"jump_to": _("Choose the step to jump to.")}
    if step.jump_to <= step.position:
        return {"jump_to": _("Jump only to a later step.")}
    if step.jump_to not in positions:
        return {"jump_to": _("There is no step %(n)s.") % {"n": step.jump_to}}
    return {}


def step_errors(step: SopStep, positions: set[int]) -> dict[str, str]:
    """field -> what is wrong with this step; {} when it can be saved. Channel settings errors are keyed
    "config_<name>" (the form's fields for them)."""
    errors: dict[str, str] = {}
    content = content_errors(step.content or "")
    if content:
        errors["content"] = " ".join(content)
    channel = get_channel(step.channel or "")
    if channel is None:
        errors["channel"] = _("Choose a channel.")
    else:
        for name, message in channel.config_errors(step.channel_config or {}).items():
            errors[f"config_{name}"] = message
    errors |= _offset_errors(step)
    errors |= _branch_errors(step, positions)
    return errors


@transaction.atomic
def step_save(*, actor, template: SopTemplate, step: SopStep | None, data: Mapping) -> SopStep:
    """Create (step None; it goes last) or change a step of `template`."""
    template = SopTemplate.objects.select_for_update().get(pk=template.pk)
    creating = step is None
    if creating:
        last = template.steps.aggregate(m=Max("position"))["m"] or 0
        step = SopStep(template=template, position=last + 1)
        before = {}
    else:
        before = snapshot(step, AUDITED_STEP)
    for name in STEP_FIELDS:
        if name in data:
            setattr(step, name, data[name])
    positions = set(template.steps.values_list("position", flat=True)) | {step.position}
    errors = step_errors(step, positions)
    if errors:
        raise ValidationError(errors)
    step.full_clean(exclude=["template", "position"], validate_unique=False)
    step.save()
    audit_record(actor=actor, action="sop_step.created" if creating else "sop_step.changed", obj=step,
                 before=before, after=snapshot(step, AUDITED_STEP) | {"template": template.pk})  # fmt: skip
    return step


@transaction.atomic
def step_delete(*, actor, step: SopStep) -> None:
    """Delete a step that never ran; the later ones move up (and jumps to them follow)."""
    template = SopTemplate.objects.select_for_update().get(pk=step.template_id)
    if step.touchpoints.exists():
        raise ValidationError(
            _("This step has already been scheduled or sent to customers; deleting it would lose that history "
              "from the results. Deactivate the template, or duplicate it and change the copy.")
        )  # fmt: skip
    jumpers = template.steps.filter(reply_branch=ReplyBranch.JUMP, jump_to=step.position)
    if jumpers.exists():
        names = ", ".join(str(s) for s in jumpers)
        raise ValidationError(_("Steps jump to this one (%(steps)s); change them first.") % {"steps": names})
    if template.active and template.steps.count() == 1:
        raise ValidationError(_("An active template needs at least one step; deactivate it first."))
    position = step.position
    audit_record(actor=actor, action="sop_step.deleted", obj=step, before=snapshot(step, AUDITED_STEP))
    step.delete()
    later = template.steps.filter(position__gt=position).order_by("position")
    for other in later:  # in order, so each moves into the free place before it
        SopStep.objects.filter(pk=other.pk).update(position=F("position") - 1)
    template.steps.filter(reply_branch=ReplyBranch.JUMP, jump_to__gt=position).update(
        jump_to=F("jump_to") - 1
    )


def _swap_positions(template: SopTemplate, a: SopStep, b: SopStep) -> None:
    """Swap two steps' places under the unique (template, position) constraint: park one on 0 first."""
    pa, pb = a.position, b.position
    SopStep.objects.filter(pk=a.pk).update(position=0)
    SopStep.objects.filter(pk=b.pk).update(position=pa)
    SopStep.objects.filter(pk=a.pk).update(position=pb)
    jumps = template.steps.filter(reply_branch=ReplyBranch.JUMP)
    to_a, to_b = list(jumps.filter(jump_to=pa)), list(jumps.filter(jump_to=pb))
    SopStep.objects.filter(pk__in=[s.pk for s in to_a]).update(jump_to=pb)
    SopStep.objects.filter(pk__in=[s.pk for s in to_b]).update(jump_to=pa)


@transaction.atomic
def step_move(*, actor, step: SopStep, direction: str) -> SopStep:
    """Move a step one place up or down; a jump keeps pointing at the same step, and must stay forward."""
    template = SopTemplate.objects.select_for_update().get(pk=step.template_id)
    step = SopStep.objects.get(pk=step.pk)
    if direction not in ("up", "down"):
        raise ValidationError(_("Move a step up or down."))
    neighbours = template.steps.filter(**({"position__lt": step.position} if direction == "up"
                                          else {"position__gt": step.position}))  # fmt: skip
    other = neighbours.order_by("-position" if direction == "up" else "position").first()
    if other is None:
        raise ValidationError(_("This step is already the first.") if direction == "up"
                              else _("This step is already the last."))  # fmt: skip
    _swap_positions(template, step, other)
    backward = [
        s for s in template.steps.filter(reply_branch=ReplyBranch.JUMP) if (s.jump_to or 0) <= s.position
    ]
    if backward:
        raise ValidationError(
            _("Moving it would make step “%(name)s” jump backwards; change its jump first.")
            % {"name": backward[0].name}
        )
    audit_record(actor=actor, action="sop_step.moved", obj=step,
                 before={"position": step.position}, after={"position": other.position})  # fmt: skip
    step.refresh_from_db()
    return step


# --- enrollment by hand -----------------------------------------------------------------------------------


@transaction.atomic
def template_enroll(
    *, actor, template: SopTemplate, contact_ids: QuerySet, now: datetime | None = None
) -> int:
    """Enroll contacts by hand (a selection, or a segment's members as a queryset of contact ids) in an active
    template; only those `actor` may see, and only as its re-entry policy and audience allow. Returns how many
    were enrolled."""
    if not template.active:
        raise ValidationError(_("Only an active template takes customers; activate it first."))
    now = now or timezone.now()
    visible = contacts_visible_to(actor).filter(pk__in=contact_ids).values("id")
    source = queryset_source(visible, f"manual:{now.isoformat()}")
    enrolled = enrollments_start(template=template, source=source, actor=actor, now=now)
    audit_record(actor=actor, action="sop_template.enrolled", obj=template, after={"enrolled": enrolled})
    return enrolled


def enrollable_count(*, actor, contact_ids: QuerySet) -> int:
    """How many of these contacts `actor` may enroll (the confirmation's number)."""
    return contacts_visible_to(actor).filter(pk__in=contact_ids).count()


# --- settings ---------------------------------------------------------------------------------------------


@transaction.atomic
def sop_settings_update(*, actor, data: Mapping) -> SopSettings:
    """The guards every template shares: frequency caps, quiet hours (start == end: none), unsubscribe phrase."""
    row = SopSettings.objects.select_for_update().get(pk=sop_settings().pk)
    before = snapshot(row, SETTINGS_FIELDS)
    for name in SETTINGS_FIELDS:
        if name in data:
            setattr(row, name, data[name])
    row.unsubscribe_text = (row.unsubscribe_text or "").strip()
    row.full_clean(exclude=["updated_by"])
    if row.cap_per_day > row.cap_per_week:
        raise ValidationError(
            {
                "cap_per_day": _("The daily cap cannot be higher than the 7-day cap (%(n)s).")
                % {"n": row.cap_per_week}
            }
        )
    if not row.unsubscribe_text:
        raise ValidationError({"unsubscribe_text": _("Write the phrase customers reply to opt out.")})
    row.updated_by = actor if getattr(actor, "is_authenticated", False) else None
    row.save()
    audit_record(actor=actor, action="sop_settings.changed", obj=row, before=before,
                 after=snapshot(row, SETTINGS_FIELDS))  # fmt: skip
    return row
