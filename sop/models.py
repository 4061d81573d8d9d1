"""1v1 SOP: admin-made touchpoint sequences (SopTemplate, SopStep), run per customer (Enrollment).

Foreign keys inside this app (enrollment -> template, touchpoint -> enrollment / step / template, delivery ->
touchpoint) have no database constraint: SOP rows are only ever deleted through the ORM, which collects the
cascade itself, and each constraint is a trigger that fires for every row written — at a million enrollments
the checks were a third of the work (docs/benchmarks.md, sop). References that leave the app (contacts, users)
keep theirs: those parents are deleted by other apps.

Touchpoints are an outbox (DESIGN.md): one Touchpoint row per enrollment and step is the truth about what
is due, when and what became of it; the dispatcher (sop.dispatch) claims due rows every minute with
SELECT … FOR UPDATE SKIP LOCKED and records every attempt as a Delivery. No Celery ETA per touchpoint.

Only the first step's touchpoint exists at enrollment; each further one is written when the step before it
is delivered (so "N hours after the previous step" counts from the real delivery).
"""

from datetime import time

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from contacts.models import Contact, EventKind, Source, Tag
from segments.models import Segment

MAX_OFFSET_DAYS = 365
MAX_OFFSET_HOURS = 24 * 90


class Trigger(models.TextChoices):
    CONTACT_ADDED = "contact_added", _("Contact added")
    TAG_ADDED = "tag_added", _("Tag added")
    SEGMENT_ENTERED = "segment_entered", _("Entered a segment")
    SEGMENT_EXITED = "segment_exited", _("Left a segment")
    EVENT = "event", _("Customer did something (an event)")
    BIRTHDAY = "birthday", _("Birthday coming up")
    # Fired by the churn and loyalty apps once they exist (they call sop.services.enrollments_start).
    CHURN_ALERT = "churn_alert", _("Churn alert opened")
    LEVEL_CHANGED = "level_changed", _("Membership level changed")
    POINTS_EXPIRING = "points_expiring", _("Points expiring soon")
    MANUAL = "manual", _("Manual enrollment only")


# Triggers whose producers do not exist yet: offered in the form as disabled, refused on save.
FUTURE_TRIGGERS = (Trigger.CHURN_ALERT, Trigger.LEVEL_CHANGED, Trigger.POINTS_EXPIRING)


class Reentry(models.TextChoices):
    ONCE = "once", _("Only once per customer")
    AFTER_DAYS = "after_days", _("Again after N days")
    EVERY_TIME = "every_time", _("Every time the trigger fires")


class CapPolicy(models.TextChoices):
    DEFER = "defer", _("Defer to the next allowed time")
    SKIP = "skip", _("Skip the step")


class SopTemplate(models.Model):
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True, default="")
    active = models.BooleanField(_("active"), default=False)
    # Higher first: when two templates' touches compete for one frequency-cap slot, the higher one wins it.
    priority = models.SmallIntegerField(
        _("priority"), default=0, validators=[MinValueValidator(-100), MaxValueValidator(100)]
    )
    trigger = models.CharField(_("trigger"), max_length=20, choices=Trigger.choices, default=Trigger.MANUAL)
    # contact_added: only contacts from this source ("" = any source).
    trigger_source = models.CharField(
        _("source"), max_length=20, choices=Source.choices, blank=True, default=""
    )
    trigger_tag = models.ForeignKey(
        Tag, verbose_name=_("tag"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    trigger_segment = models.ForeignKey(
        Segment, verbose_name=_("segment"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    trigger_event_kind = models.CharField(
        _("event kind"), max_length=32, choices=EventKind.choices, blank=True, default=""
    )
    # event: fire only on the customer's first event of that kind (e.g. first purchase).
    trigger_first_only = models.BooleanField(_("only the first time"), default=False)
    birthday_days_before = models.PositiveSmallIntegerField(
        _("days before the birthday"), default=0, validators=[MaxValueValidator(60)]
    )
    # Only customers in this segment are enrolled; "left the audience" can end their enrollment.
    audience = models.ForeignKey(
        Segment,
        verbose_name=_("audience segment"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    reentry = models.CharField(_("re-entry"), max_length=12, choices=Reentry.choices, default=Reentry.ONCE)
    reentry_days = models.PositiveSmallIntegerField(
        _("re-entry after (days)"), default=30, validators=[MinValueValidator(1), MaxValueValidator(3650)]
    )
    cap_policy = models.CharField(
        _("over the frequency cap"), max_length=8, choices=CapPolicy.choices, default=CapPolicy.DEFER
    )
    # Exit conditions: an enrolled customer who does one of these leaves the sequence at once.
    exit_on_purchase = models.BooleanField(_("exit when the customer buys"), default=False)
    exit_on_reply = models.BooleanField(_("exit when the customer replies"), default=False)
    exit_on_opt_out = models.BooleanField(_("exit when the customer opts out"), default=True)
    exit_tag = models.ForeignKey(
        Tag,
        verbose_name=_("exit when this tag is added"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    exit_on_audience_left = models.BooleanField(
        _("exit when the customer leaves the audience"), default=False
    )
    exit_goal_kind = models.CharField(
        _("exit on this goal event"), max_length=32, choices=EventKind.choices, blank=True, default=""
    )
    # Days after a touch within which a reply or a purchase counts as its result.
    attribution_days = models.PositiveSmallIntegerField(
        _("results window (days)"), default=7, validators=[MinValueValidator(1), MaxValueValidator(90)]
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # When it was last switched on: triggers only fire for things that happened after it.
    activated_at = models.DateTimeField(_("activated at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("SOP template")
        verbose_name_plural = _("SOP templates")
        ordering = ["-active", "-priority", "name", "id"]
        permissions = [
            ("work_touchpoints", _("Can work SOP tasks in the inbox")),
            ("reassign_touchpoints", _("Can reassign SOP tasks")),
            ("view_sop_results", _("Can see SOP results")),
            ("manage_sop_settings", _("Can change frequency caps and quiet hours")),
        ]

    def __str__(self) -> str:
        return self.name


class OffsetKind(models.TextChoices):
    DAY_AT = "day_at", _("Day N after enrollment, at a time")
    HOURS_AFTER = "hours_after", _("N hours after the previous step")


class ReplyBranch(models.TextChoices):
    NONE = "", _("Always send")
    SKIP = "skip", _("If the customer replied since the previous step: skip this step")
    JUMP = "jump", _("If the customer replied since the previous step: jump to another step")


class SopStep(models.Model):
    template = models.ForeignKey(
        SopTemplate, on_delete=models.CASCADE, related_name="steps", db_index=False
    )  # served by the (template, position) unique index
    position = models.PositiveSmallIntegerField(_("position"))
    name = models.CharField(_("name"), max_length=100)
    offset_kind = models.CharField(
        _("when"), max_length=12, choices=OffsetKind.choices, default=OffsetKind.DAY_AT
    )
    offset_days = models.PositiveSmallIntegerField(
        _("day"), default=0, validators=[MaxValueValidator(MAX_OFFSET_DAYS)]
    )
    offset_time = models.TimeField(_("at"), default=time(10, 0))
    offset_hours = models.PositiveSmallIntegerField(
        _("hours after the previous step"), default=24, validators=[MaxValueValidator(MAX_OFFSET_HOURS)]
    )
    channel = models.CharField(_("channel"), max_length=20, default="task")
    # Channel settings (email subject; webhook url and secret), validated by the channel class.
    channel_config = models.JSONField(_("channel settings"), default=dict, blank=True)
    # Django template language on a safe context (sop.content): {{ contact.name }}, {{ owner.name }} …
    content = models.TextField(_("message"), max_length=5000)
    # Transactional steps (order notices, …) ignore opt-out, the frequency cap and quiet hours.
    transactional = models.BooleanField(_("transactional"), default=False)
    action_add_tag = models.ForeignKey(
        Tag,
        verbose_name=_("when done, add tag"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reply_branch = models.CharField(
        _("if the customer replied"), max_length=4, choices=ReplyBranch.choices, blank=True, default=""
    )
    jump_to = models.PositiveSmallIntegerField(_("jump to step"), null=True, blank=True)

    class Meta:
        verbose_name = _("SOP step")
        verbose_name_plural = _("SOP steps")
        ordering = ["template", "position"]
        constraints = [models.UniqueConstraint(fields=["template", "position"], name="sop_step_position")]

    def __str__(self) -> str:
        return f"{self.position}. {self.name}"


class ExitReason(models.TextChoices):
    PURCHASE = "purchase", _("Bought")
    REPLY = "reply", _("Replied")
    OPTED_OUT = "opted_out", _("Opted out")
    TAG_ADDED = "tag_added", _("Exit tag added")
    LEFT_AUDIENCE = "left_audience", _("Left the audience segment")
    GOAL = "goal", _("Reached the goal")
    MERGED = "merged", _("Merged into another customer")
    CONTACT_DELETED = "contact_deleted", _("Customer deleted")
    TEMPLATE_STOPPED = "template_stopped", _("Template deactivated")
    MANUAL = "manual", _("Removed by hand")


class Enrollment(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("In progress")
        COMPLETED = "completed", _("Completed")
        EXITED = "exited", _("Exited")

    # Served by the (template, contact, trigger_key) unique index, as are a template's counts.
    template = models.ForeignKey(
        SopTemplate, on_delete=models.CASCADE, related_name="enrollments", db_index=False, db_constraint=False
    )
    # SET_NULL, not CASCADE: a deleted customer's enrollment stays in the results, exited with its reason.
    contact = models.ForeignKey(
        Contact, null=True, on_delete=models.SET_NULL, related_name="sop_enrollments", db_index=False
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    # What enrolled it, unique per template and contact, so a trigger seen twice enrolls once:
    # "added", "tag:<ContactTag id>", "seg:<SegmentChange id>", "event:<Event id>", "birthday:<year>", "manual:…".
    trigger_key = models.CharField(max_length=64)
    enrolled_at = models.DateTimeField(default=timezone.now)
    enrolled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(max_length=20, choices=ExitReason.choices, blank=True, default="")

    class Meta:
        verbose_name = _("enrollment")
        verbose_name_plural = _("enrollments")
        constraints = [
            models.UniqueConstraint(
                fields=["template", "contact", "trigger_key"], name="sop_enrollment_trigger"
            ),
            # At most one run of a template per customer at a time, whatever the re-entry policy.
            models.UniqueConstraint(
                fields=["template", "contact"], condition=Q(status="active"), name="sop_enrollment_one_active"
            ),
        ]
        indexes = [
            models.Index(fields=["contact", "template"], name="sop_enrollment_contact"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.template_id}"


class TouchStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    # Claimed for an outside channel (email, webhook) and being sent; a reaper re-queues it if its worker died.
    SENDING = "sending", _("Sending")
    # task channel: in the owner's inbox, waiting for them to send it by hand.
    OPEN = "open", _("Waiting for the operator")
    DELIVERED = "delivered", _("Delivered")
    DONE = "done", _("Done")
    SKIPPED = "skipped", _("Skipped")
    FAILED = "failed", _("Failed")


PENDING_STATUSES = (TouchStatus.SCHEDULED, TouchStatus.SENDING)
# A touch the customer got (or the operator was asked to give): what the frequency cap counts.
REACHED_STATUSES = (TouchStatus.OPEN, TouchStatus.DELIVERED, TouchStatus.DONE)


class SkipReason(models.TextChoices):
    CAP = "cap", _("Frequency cap")
    QUIET_HOURS = "quiet_hours", _("Quiet hours")
    OPTED_OUT = "opted_out", _("Opted out")
    EXITED = "exited", _("Enrollment ended")
    REPLIED = "replied", _("Customer replied (branch)")
    NO_ADDRESS = "no_address", _("No address for the channel")
    OPERATOR = "operator", _("Skipped by the operator")
    CONTACT_DELETED = "contact_deleted", _("Customer deleted")


class Touchpoint(models.Model):
    enrollment = models.ForeignKey(
        Enrollment, on_delete=models.CASCADE, related_name="touchpoints", db_index=False, db_constraint=False
    )  # served by the (enrollment, step) unique index
    step = models.ForeignKey(
        SopStep, on_delete=models.CASCADE, related_name="touchpoints", db_index=False, db_constraint=False
    )
    # Copies of enrollment.contact / step.template, so the cap, the inbox and the results need no join.
    contact = models.ForeignKey(
        Contact,
        null=True,
        on_delete=models.SET_NULL,
        related_name="sop_touchpoints",
        db_index=False,
        db_constraint=False,
    )
    template = models.ForeignKey(
        SopTemplate, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    status = models.CharField(max_length=10, choices=TouchStatus.choices, default=TouchStatus.SCHEDULED)
    due_at = models.DateTimeField()
    # The first time it was due (due_at moves when quiet hours or the cap defer it).
    planned_at = models.DateTimeField()
    transactional = models.BooleanField(default=False)
    # Who works it (task channel): the customer's owner when it was issued; managers can reassign.
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    rendered = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    deferrals = models.PositiveSmallIntegerField(default=0)
    # Why the last deferral happened ("cap" / "quiet_hours"), or why it was skipped.
    reason = models.CharField(max_length=16, choices=SkipReason.choices, blank=True, default="")
    error = models.CharField(max_length=500, blank=True, default="")
    # Set when the customer was reached (task issued, email accepted, webhook answered 2xx).
    sent_at = models.DateTimeField(null=True, blank=True)
    # Set when it reached a final state (done, delivered, skipped, failed).
    finished_at = models.DateTimeField(null=True, blank=True)
    finished_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outcome = models.CharField(_("outcome"), max_length=200, blank=True, default="")
    # Why the task went to someone other than the customer's owner (e.g. the owner was deactivated).
    note = models.CharField(_("note"), max_length=200, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("touchpoint")
        verbose_name_plural = _("touchpoints")
        constraints = [models.UniqueConstraint(fields=["enrollment", "step"], name="sop_touchpoint_once")]
        indexes = [
            # The dispatcher's queue: small, only what is still to send.
            models.Index(fields=["due_at", "id"], condition=Q(status="scheduled"), name="sop_touch_due"),
            models.Index(fields=["claimed_at"], condition=Q(status="sending"), name="sop_touch_sending"),
            # The inbox and the overdue badge: open tasks per assignee.
            models.Index(fields=["assignee", "due_at"], condition=Q(status="open"), name="sop_touch_inbox"),
            # The frequency cap (a contact's recent touches) and the contact's timeline.
            models.Index(fields=["contact", "sent_at"], name="sop_touch_contact"),
            models.Index(fields=["template", "step", "status"], name="sop_touch_results"),
        ]

    def __str__(self) -> str:
        return f"touch {self.step_id} for {self.contact_id}"


class Delivery(models.Model):
    """One attempt to deliver a touchpoint through its channel."""

    class Status(models.TextChoices):
        OK = "ok", _("Delivered")
        RETRY = "retry", _("Failed, will retry")
        FAILED = "failed", _("Failed")

    touchpoint = models.ForeignKey(
        Touchpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False, db_constraint=False
    )  # served by the (touchpoint, attempt) unique index
    attempt = models.PositiveSmallIntegerField()
    channel = models.CharField(max_length=20)
    status = models.CharField(max_length=8, choices=Status.choices)
    # Sent to the channel as-is on every attempt: a receiver drops a key it has seen.
    idempotency_key = models.CharField(max_length=64)
    response_code = models.IntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    duration_ms = models.IntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [models.UniqueConstraint(fields=["touchpoint", "attempt"], name="sop_delivery_attempt")]

    def __str__(self) -> str:
        return f"{self.touchpoint_id}#{self.attempt} {self.status}"


class SopSettings(models.Model):
    """The guards every template shares (one row, pk=1; sop.selectors.sop_settings reads it)."""

    cap_per_day = models.PositiveSmallIntegerField(
        _("marketing touches per customer per day"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
    )
    cap_per_week = models.PositiveSmallIntegerField(
        _("marketing touches per customer per 7 days"),
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
    )
    quiet_start = models.TimeField(_("quiet hours start"), default=time(21, 0))
    quiet_end = models.TimeField(_("quiet hours end"), default=time(9, 0))
    unsubscribe_text = models.CharField(_("unsubscribe phrase"), max_length=100, default="回复 TD 退订")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("SOP settings")
        verbose_name_plural = _("SOP settings")

    def __str__(self) -> str:
        return "SOP settings"
