from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SegmentsConfig(AppConfig):
    # Holds only its AppConfig until its issue lands (see README "Roadmap").
    name = "segments"
    verbose_name = _("Segments")
