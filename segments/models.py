"""Segments: named groups of contacts, by a rule (dynamic) or a fixed list (static).

A dynamic segment's membership is materialised in SegmentMembership so that everything downstream (SOP
triggers, bulk actions, dashboards) reads it with one indexed join. Every entry and exit is a SegmentChange
row: the SOP app consumes those as triggers, in id order.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from contacts.models import Contact


class SegmentKind(models.TextChoices):
    DYNAMIC = "dynamic", _("Dynamic (by rule)")
    STATIC = "static", _("Static (fixed list)")


class Segment(models.Model):
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True, default="")
    kind = models.CharField(_("kind"), max_length=8, choices=SegmentKind.choices, default=SegmentKind.DYNAMIC)
    # The rule tree of segments.rules (validated by validate_tree on every door); {} for a static segment.
    definition = models.JSONField(_("rule"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Operators it is shared with still see only their own contacts inside it.
    shared_with = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="shared_segments", verbose_name=_("shared with")
    )
    member_count = models.IntegerField(_("members"), default=0)
    refreshed_at = models.DateTimeField(_("last refreshed"), null=True, blank=True)
    # Set when the rule names something that no longer exists (a deleted tag): membership is frozen, never
    # silently recomputed from a changed rule, until someone fixes the rule.
    broken_reason = models.CharField(_("broken because"), max_length=300, blank=True, default="")
    # A refresh is under way (queued by "refresh now" or a rule change): the pages show progress until the
    # task clears it. A timestamp, not a flag, so a refresh lost with its worker stops showing after a while.
    refresh_requested_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_dynamic(self) -> bool:
        return self.kind == SegmentKind.DYNAMIC


class SegmentMembership(models.Model):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+", db_index=False)
    since = models.DateTimeField(_("member since"), default=timezone.now)

    class Meta:
        constraints = [
            # Also the index for "members of a segment" (segment first).
            models.UniqueConstraint(fields=["segment", "contact"], name="segment_membership_unique")
        ]
        # "Which segments is this contact in" (incremental refresh, contact page).
        indexes = [models.Index(fields=["contact", "segment"], name="segment_membership_contact")]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.segment_id}"


class SegmentChange(models.Model):
    class Change(models.TextChoices):
        ENTERED = "entered", _("entered")
        EXITED = "exited", _("exited")

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="changes", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+", db_index=False)
    change = models.CharField(max_length=8, choices=Change.choices)
    at = models.DateTimeField(default=timezone.now)
    # Set when the SOP app has acted on the change (its segment triggers and "left the audience" exits).
    # An outbox column rather than a cursor on id: a change committed late (a long refresh) is still seen.
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["segment", "-at", "-id"], name="segment_change_history"),
            models.Index(fields=["contact", "-at"], name="segment_change_contact"),
            # Small by design: only the changes still to consume.
            models.Index(
                fields=["id"], condition=models.Q(consumed_at__isnull=True), name="segment_change_unconsumed"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} {self.change} {self.segment_id}"


class SegmentSize(models.Model):
    """The size of a segment on a day (in TIME_ZONE): the last size seen that day, for the list's sparkline
    and the detail page's history chart. Written by every refresh that changes the size."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="sizes", db_index=False)
    day = models.DateField()
    size = models.IntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "day"], name="segment_size_unique_day")]

    def __str__(self) -> str:
        return f"{self.segment_id} {self.day}: {self.size}"


class SegmentBulkJob(models.Model):
    """A bulk action on all of a segment's members that the user may change (tag, tier, owner), run on the
    `bulk` queue in batches; the page polls it for progress."""

    class Action(models.TextChoices):
        ADD_TAG = "add_tag", _("Add tag")
        REMOVE_TAG = "remove_tag", _("Remove tag")
        SET_TIER = "set_tier", _("Set tier")
        ASSIGN_OWNER = "assign_owner", _("Assign owner")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="bulk_jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=20, choices=Action.choices)
    # The tag, tier or owner id; None means "no tier" / "unassigned".
    target_id = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.IntegerField(default=0)
    processed = models.IntegerField(default=0)
    changed = models.IntegerField(default=0)
    # The last member id done: a retried task resumes after it instead of starting again.
    last_contact_id = models.BigIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.action} on {self.segment_id}"

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return min(100, int(self.processed * 100 / self.total)) if self.total else 0

    @property
    def running(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)
