"""Templates and steps in words, for the admin pages: "Entered the segment “金卡”", "Day 2 at 10:00",
"4 hours after the previous step"."""

from django.utils.formats import time_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from contacts.models import EventKind, Source

from .channels import get_channel
from .models import OffsetKind, Reentry, SopStep, SopTemplate, Trigger


def trigger_words(template: SopTemplate) -> str:
    trigger = template.trigger
    if trigger == Trigger.CONTACT_ADDED:
        if template.trigger_source:
            return _("Customer added, from %(source)s") % {"source": Source(template.trigger_source).label}
        return _("Customer added (any source)")
    if trigger == Trigger.TAG_ADDED:
        tag = template.trigger_tag
        return _("Tag “%(tag)s” added") % {"tag": f"{tag.group.name} / {tag.name}" if tag else "—"}
    if trigger in (Trigger.SEGMENT_ENTERED, Trigger.SEGMENT_EXITED):
        name = template.trigger_segment.name if template.trigger_segment else "—"
        if trigger == Trigger.SEGMENT_ENTERED:
            return _("Entered the segment “%(name)s”") % {"name": name}
        return _("Left the segment “%(name)s”") % {"name": name}
    if trigger == Trigger.EVENT:
        kind = EventKind(template.trigger_event_kind).label if template.trigger_event_kind else "—"
        if template.trigger_first_only:
            return _("First “%(kind)s” of the customer") % {"kind": kind}
        return _("Every “%(kind)s”") % {"kind": kind}
    if trigger == Trigger.BIRTHDAY:
        days = template.birthday_days_before
        if not days:
            return _("On the customer's birthday")
        return ngettext("%(n)d day before the birthday", "%(n)d days before the birthday", days) % {"n": days}
    return str(Trigger(trigger).label)


def reentry_words(template: SopTemplate) -> str:
    if template.reentry == Reentry.AFTER_DAYS:
        return ngettext(
            "Again after %(n)d day", "Again after %(n)d days", template.reentry_days
        ) % {"n": template.reentry_days}  # fmt: skip
    return str(Reentry(template.reentry).label)


def exit_words(template: SopTemplate) -> list[str]:
    words = []
    if template.exit_on_purchase:
        words.append(_("buys"))
    if template.exit_on_reply:
        words.append(_("replies"))
    if template.exit_on_opt_out:
        words.append(_("opts out"))
    if template.exit_tag_id:
        words.append(_("gets the tag “%(tag)s”") % {"tag": template.exit_tag.name})
    if template.exit_on_audience_left and template.audience_id:
        words.append(_("leaves the audience segment"))
    if template.exit_goal_kind:
        words.append(_("does “%(kind)s”") % {"kind": EventKind(template.exit_goal_kind).label})
    return words


def step_timing(step: SopStep) -> str:
    if step.offset_kind == OffsetKind.HOURS_AFTER:
        return ngettext(
            "%(n)d hour after the previous step", "%(n)d hours after the previous step", step.offset_hours
        ) % {"n": step.offset_hours}  # fmt: skip
    at = time_format(step.offset_time, "H:i")
    if step.offset_days == 0:
        return _("Day 0 (the day they enter) at %(time)s") % {"time": at}
    return _("Day %(n)d at %(time)s") % {"n": step.offset_days, "time": at}


def channel_label(name: str) -> str:
    channel = get_channel(name)
    return str(channel.label) if channel else name
