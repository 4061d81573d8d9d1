from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChurnConfig(AppConfig):
    # Holds only its AppConfig until its issue lands (see README "Architecture").
    name = "churn"
    verbose_name = _("Churn")
