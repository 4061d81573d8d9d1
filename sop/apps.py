from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SopConfig(AppConfig):
    name = "sop"
    verbose_name = _("SOP")

    def ready(self) -> None:
        # The contact list's bulk bar gets "Enroll in SOP…" (managers and admins; the template checks).
        from contacts.list_scopes import register_bulk_template

        register_bulk_template("sop/_enroll_selection.html")
