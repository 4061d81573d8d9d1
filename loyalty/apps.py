from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    # Holds only its AppConfig until its issue lands (see README "Architecture").
    name = "loyalty"
    verbose_name = _("Loyalty")
