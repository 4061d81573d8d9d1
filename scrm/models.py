from django.db import models
from django.utils.translation import gettext_lazy as _


class Heartbeat(models.Model):
    """When a background component was last seen alive; read by the system status page.

    Kept in the database rather than the cache so that the status page works with the
    no-server broker of `make run`, where the cache is per process.
    """

    WORKER = "worker"
    BEAT = "beat"

    name = models.CharField(max_length=32, primary_key=True)
    seen_at = models.DateTimeField()
    detail = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")

    def __str__(self) -> str:
        return f"{self.name} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"
