import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("“%(value)s” is not a known time zone."), params={"value": value})


class User(AbstractUser):
    """A member of staff. Roles are the groups Operator, Manager and Admin (accounts.roles)."""

    display_name = models.CharField(_("display name"), max_length=100, blank=True)
    # A manager's team is the operators whose manager is that manager.
    manager = models.ForeignKey(
        "self",
        verbose_name=_("manager"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="team",
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, default=settings.TIME_ZONE, validators=[validate_time_zone]
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        permissions = [("manage_users", _("Can create users and give roles"))]

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username


class ApiScope(models.TextChoices):
    CONTACTS_READ = "contacts:read", _("Read contacts")
    CONTACTS_WRITE = "contacts:write", _("Create and update contacts")
    EVENTS_WRITE = "events:write", _("Post events")
    SEGMENTS_READ = "segments:read", _("Read segments")
    SEGMENTS_WRITE = "segments:write", _("Create, change and refresh segments")


class ApiKey(models.Model):
    """A key for the JSON API. The secret is shown once; only its SHA-256 is stored.

    The full key is "scrm_<prefix>_<secret>"; the prefix finds the row, the hash checks the secret.
    (SHA-256, not a slow password hash: the secret is 32 random bytes, so there is nothing to brute-force.)
    """

    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(max_length=12, unique=True)
    hashed_secret = models.CharField(max_length=64)
    scopes = models.JSONField(_("scopes"), default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        permissions = [("manage_api_keys", _("Can create and revoke API keys"))]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"
