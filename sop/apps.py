from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SopConfig(AppConfig):
    # Holds only its AppConfig until its issue lands (see README "Architecture").
    name = "sop"
    verbose_name = _("SOP")
