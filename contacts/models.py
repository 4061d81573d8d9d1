from decimal import Decimal

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import validate_time_zone

colour_validator = RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Enter a colour like #1a7f5a."))


class Source(models.TextChoices):
    """The touchpoint (触点) a customer came in through."""

    FRIEND = "friend", _("Added as friend (加好友)")
    GROUP = "group", _("Group chat (社群)")
    OFFICIAL_ACCOUNT = "official_account", _("Official account (公众号)")
    MINI_PROGRAM = "mini_program", _("Mini program (小程序)")
    STORE = "store", _("Store (门店)")
    IMPORT = "import", _("Import (导入)")
    API = "api", _("API")


class Gender(models.TextChoices):
    UNKNOWN = "unknown", _("Unknown")
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")


class Tier(models.Model):
    """A value tier (用户分层); a higher rank is a more valuable tier."""

    name = models.CharField(_("name"), max_length=50, unique=True)
    rank = models.PositiveSmallIntegerField(_("rank"), unique=True)
    colour = models.CharField(_("colour"), max_length=7, default="#6c757d", validators=[colour_validator])

    class Meta:
        ordering = ["-rank"]
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        permissions = [("manage_taxonomy", _("Can manage tag groups, tags and tiers"))]

    def __str__(self) -> str:
        return self.name


class TagGroup(models.Model):
    name = models.CharField(_("name"), max_length=50, unique=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("tag group")
        verbose_name_plural = _("tag groups")

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    group = models.ForeignKey(
        TagGroup, verbose_name=_("tag group"), on_delete=models.PROTECT, related_name="tags"
    )
    name = models.CharField(_("name"), max_length=50)
    colour = models.CharField(_("colour"), max_length=7, default="#0d6efd", validators=[colour_validator])

    class Meta:
        ordering = ["group__position", "group__name", "name"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        constraints = [models.UniqueConstraint(fields=["group", "name"], name="tag_unique_name_in_group")]

    def __str__(self) -> str:
        return f"{self.group.name}: {self.name}"


class Contact(models.Model):
    name = models.CharField(_("name"), max_length=100)
    # E.164 ("+8613800138000"), normalised by contacts.phones; "" when unknown.
    phone = models.CharField(_("phone"), max_length=20, blank=True, default="")
    email = models.EmailField(_("email"), blank=True, default="")
    external_userid = models.CharField(_("WeCom external user ID"), max_length=64, blank=True, default="")
    gender = models.CharField(_("gender"), max_length=10, choices=Gender.choices, default=Gender.UNKNOWN)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    city = models.CharField(_("city"), max_length=50, blank=True, default="")
    source = models.CharField(
        _("source channel"), max_length=20, choices=Source.choices, default=Source.FRIEND
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="contacts_owned",
        db_index=False,  # served by the (owner, id) index
    )
    tier = models.ForeignKey(
        Tier, verbose_name=_("tier"), null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )  # served by the (tier, id) index
    tags = models.ManyToManyField(Tag, through="ContactTag", related_name="contacts", blank=True)
    time_zone = models.CharField(
        _("time zone"), max_length=64, default=settings.TIME_ZONE, validators=[validate_time_zone]
    )
    opted_out = models.BooleanField(_("do not disturb (免打扰)"), default=False)
    opted_out_reason = models.CharField(_("opt-out reason"), max_length=200, blank=True, default="")
    opted_out_at = models.DateTimeField(_("opted out at"), null=True, blank=True)
    joined_at = models.DateTimeField(_("joined at"), default=timezone.now)
    last_active_at = models.DateTimeField(_("last active at"), null=True, blank=True)
    # Activity totals, maintained set-based by the event pipeline (scrm.pipeline); never edited by hand.
    first_purchase_at = models.DateTimeField(_("first purchase at"), null=True, blank=True)
    last_purchase_at = models.DateTimeField(_("last purchase at"), null=True, blank=True)
    order_count = models.IntegerField(_("orders"), default=0)
    total_spent = models.DecimalField(_("total spent"), max_digits=14, decimal_places=2, default=Decimal("0"))
    # Values of the admin-defined CustomFields, by field key; validated by contacts.custom_fields on every door.
    custom_fields = models.JSONField(_("custom fields"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        constraints = [
            models.UniqueConstraint(fields=["phone"], condition=~Q(phone=""), name="contact_unique_phone"),
            models.UniqueConstraint(
                fields=["external_userid"],
                condition=~Q(external_userid=""),
                name="contact_unique_external_userid",
            ),
            models.CheckConstraint(
                condition=Q(opted_out=False) | Q(opted_out_at__isnull=False),
                name="contact_opted_out_has_time",
            ),
        ]
        # Each list filter and sort is "<filter>, id" so a keyset page is one index range scan.
        indexes = [
            models.Index(fields=["owner", "id"], name="contact_owner_id"),
            # last_active_at rides along so "金卡及以上 AND 30 天未互动", the commonest layered rule, is counted from
            # this index alone (1M contacts: ~85 ms instead of a ~360 ms scan of the table; docs/benchmarks.md).
            models.Index(fields=["tier", "id"], include=["last_active_at"], name="contact_tier_id_active"),
            models.Index(fields=["source", "id"], name="contact_source_id"),
            models.Index(fields=["opted_out", "id"], name="contact_optout_id"),
            models.Index(fields=["last_active_at", "id"], name="contact_last_active_id"),
            models.Index(fields=["joined_at", "id"], name="contact_joined_id"),
            models.Index(fields=["name", "id"], name="contact_name_id"),
            models.Index(fields=["email"], name="contact_email"),
            # Duplicates by email compare case-insensitively (the duplicates page groups on lower(email)).
            models.Index(Lower("email"), condition=~Q(email=""), name="contact_email_lower"),
            # Probable duplicates by name + city + birthday (the duplicates page groups on these).
            models.Index(
                fields=["name", "city", "birthday"],
                condition=Q(birthday__isnull=False),
                name="contact_dupe_person",
            ),
        ]
        permissions = [("assign_owner", _("Can assign contacts to owners"))]

    def __str__(self) -> str:
        return self.name


class ContactTag(models.Model):
    # Single-column indexes would duplicate the (contact, tag) unique and (tag, contact) indexes.
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, db_index=False)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, db_index=False)
    added_at = models.DateTimeField(default=timezone.now)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact", "tag"], name="contacttag_unique")]
        indexes = [models.Index(fields=["tag", "contact"], name="contacttag_tag_contact")]

    def __str__(self) -> str:
        return f"{self.contact_id} · {self.tag_id}"


class Note(models.Model):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="notes", db_index=False)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    body = models.TextField(_("note"), max_length=5000)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("note")
        verbose_name_plural = _("notes")
        indexes = [models.Index(fields=["contact", "-created_at", "-id"], name="note_timeline")]

    def __str__(self) -> str:
        return self.body[:50]


class EventKind(models.TextChoices):
    """What a customer did. Later issues add kinds here; the API rejects any other."""

    PURCHASE = "purchase", _("Purchase")
    REFUND = "refund", _("Refund")
    MESSAGE_IN = "message_in", _("Message from customer")
    MESSAGE_OUT = "message_out", _("Message to customer")
    CHECK_IN = "check_in", _("Check-in (签到)")
    MOMENTS_LIKE = "moments_like", _("Liked a moments post")
    CONTENT_VIEW = "content_view", _("Viewed content")
    LIVE_VIEW = "live_view", _("Watched a live stream")
    SHARE = "share", _("Shared content")
    REFERRAL = "referral", _("Referred a friend")
    FRIEND_ADDED = "friend_added", _("Added as friend")
    FRIEND_DELETED = "friend_deleted", _("Deleted the employee (删人)")
    GROUP_JOINED = "group_joined", _("Joined a group")


class EventSource(models.TextChoices):
    UI = "ui", _("Browser")
    API = "api", _("API")
    IMPORT = "import", _("Import")
    WECOM = "wecom", _("WeCom")
    SYSTEM = "system", _("System")
    DEMO = "demo", _("Demo data")


class Event(models.Model):
    """Everything a customer does, whatever the door (DESIGN.md, the event pipeline)."""

    # Every index costs each event write; the timeline index (contact, …) also serves contact lookups.
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="events", db_index=False)
    kind = models.CharField(_("kind"), max_length=32, choices=EventKind.choices)
    occurred_at = models.DateTimeField(_("occurred at"))
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2, null=True, blank=True)
    payload = models.JSONField(_("payload"), default=dict, blank=True)
    source = models.CharField(_("source"), max_length=16, choices=EventSource.choices)
    # A replayed key changes nothing: the unique index is the guard, not a read-then-write.
    # (A UniqueConstraint, not unique=True, which would add a second LIKE index on PostgreSQL.)
    idempotency_key = models.CharField(max_length=128)
    # The shop's order number: a purchase carries it, a refund names the purchase it reverses by it.
    order_id = models.CharField(_("order ID"), max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="event_unique_idempotency_key"),
            # One purchase and at most one refund per order.
            models.UniqueConstraint(
                fields=["kind", "order_id"], condition=~Q(order_id=""), name="event_unique_order_per_kind"
            ),
        ]
        indexes = [
            models.Index(fields=["contact", "-occurred_at", "-id"], name="event_timeline"),
            # Covering: the window of a segment's event condition ("spent ≥ 200 in 90 days") is read from
            # the index alone, never the heap (1M contacts: ~600 ms of heap fetches -> ~40 ms). SQLite
            # ignores INCLUDE (models.W040, silenced in settings) and keeps a plain (kind, occurred_at).
            models.Index(
                fields=["kind", "occurred_at"], include=["contact", "amount"], name="event_kind_time_cover"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} @ {self.occurred_at:%Y-%m-%d}"


class PendingEvent(models.Model):
    """The pipeline's inbox: one row for each recorded event whose effects are not applied yet.

    events_record inserts the row in the statement that inserts the event; the pipeline deletes it in the
    transaction that applies the event (a rollback brings it back). An outbox of its own, not a "processed
    at" column on Event: stamping the event rewrote every event row once more — a new version in all of
    the events table's indexes, a third of a pipeline batch at a million contacts — while deleting a row
    here writes no index at all. A plain id, not a foreign key: an event deleted with its contact before
    the pipeline came round leaves a row that the next claim deletes and that applies nothing.
    """

    event_id = models.BigIntegerField(primary_key=True)

    class Meta:
        verbose_name = _("event owed to the pipeline")
        verbose_name_plural = _("events owed to the pipeline")

    def __str__(self) -> str:
        return str(self.event_id)


class AuditEntry(models.Model):
    """Who changed what, with the values before and after. Entries about a contact carry it for the timeline."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(_("action"), max_length=50)
    object_type = models.CharField(_("object type"), max_length=50)
    object_id = models.CharField(_("object ID"), max_length=64)
    object_repr = models.CharField(_("object"), max_length=200)
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit", db_index=False
    )  # served by the audit_timeline index
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        indexes = [
            models.Index(fields=["contact", "-created_at", "-id"], name="audit_timeline"),
            models.Index(fields=["object_type", "object_id"], name="audit_object"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.object_repr}"


class ContactTouch(models.Model):
    """An outbox row: this contact was changed by an edit, import, bulk action or merge, so its dynamic segment
    membership may have changed. contacts sits below segments and may not call it; scrm.touches drains these
    rows every 30 s into segments' incremental refresh. Kept as cheap to write as a row can be: a plain id
    (no foreign key, so deleting a contact neither cascades here nor is blocked; the drain skips it), no
    unique constraint (a contact touched twice is refreshed once, the drain dedupes), no index but the key."""

    contact_id = models.BigIntegerField()
    touched_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"touch {self.contact_id}"


class CustomFieldKind(models.TextChoices):
    TEXT = "text", _("Text")
    NUMBER = "number", _("Number")
    DATE = "date", _("Date")
    CHOICE = "choice", _("Single choice")
    MULTI_CHOICE = "multi_choice", _("Multiple choice")


class CustomField(models.Model):
    """An admin-defined contact field. Values live in Contact.custom_fields[key].

    The key never changes once created (renaming changes only the labels), and deleting archives the
    field (archived_at) so values are kept and the field can be restored.
    """

    key = models.SlugField(_("key"), max_length=40, unique=True)
    label_zh = models.CharField(_("label (Chinese)"), max_length=50)
    label_en = models.CharField(_("label (English)"), max_length=50)
    kind = models.CharField(_("type"), max_length=16, choices=CustomFieldKind.choices)
    # For choice kinds: the allowed option values, in display order.
    choices = models.JSONField(_("options"), default=list, blank=True)
    required = models.BooleanField(_("required"), default=False)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    archived_at = models.DateTimeField(_("archived at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("custom field")
        verbose_name_plural = _("custom fields")

    def __str__(self) -> str:
        return self.label_zh


class JobStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for mapping")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ImportJob(models.Model):
    """One uploaded file and what became of it; the progress bar polls this row."""

    class Kind(models.TextChoices):
        CONTACTS = "contacts", _("Contacts")
        EVENTS = "events", _("Orders and events")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    file = models.FileField(upload_to="imports/%Y/%m/")
    original_name = models.CharField(_("file name"), max_length=255)
    file_format = models.CharField(max_length=8)  # "csv" | "xlsx"
    encoding = models.CharField(max_length=32, blank=True, default="")
    # The uploader's language: the worker writes the failed rows' reasons in it.
    language = models.CharField(max_length=16, blank=True, default="")
    headers = models.JSONField(default=list, blank=True)
    # Column header -> target field name ("" = ignore the column).
    mapping = models.JSONField(default=dict, blank=True)
    total_rows = models.PositiveIntegerField(null=True, blank=True)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    # CSV of the failed rows with a reason column, for download.
    error_file = models.FileField(upload_to="imports/errors/%Y/%m/", blank=True)
    error_message = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("import")
        verbose_name_plural = _("imports")
        permissions = [("import_data", _("Can import contacts and events"))]

    def __str__(self) -> str:
        return self.original_name


class ExportJob(models.Model):
    """A background export of the contact list as filtered; the file is downloadable until expires_at."""

    status = models.CharField(_("status"), max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The contact-list query string the export was started from (the same filters, re-validated).
    query = models.TextField(blank=True, default="")
    file_format = models.CharField(max_length=8)  # "csv" | "xlsx"
    total_rows = models.PositiveIntegerField(null=True, blank=True)
    processed_rows = models.PositiveIntegerField(default=0)
    file = models.FileField(upload_to="exports/%Y/%m/", blank=True)
    error_message = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        permissions = [("export_contacts", _("Can export contacts"))]

    def __str__(self) -> str:
        return f"export {self.pk}"
