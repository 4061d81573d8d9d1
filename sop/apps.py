from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def _register_contact_page() -> None:
    """The contact page shows the customer's enrollments (a side card) and the touches they got (timeline)."""
    from contacts.page_extensions import (
        DetailPanel,
        TimelineSource,
        register_detail_panel,
        register_timeline_source,
    )

    from .selectors import contact_enrollments, contact_touchpoints

    def enrollments_panel(request, contact):
        if not request.user.has_perm("sop.view_soptemplate"):
            return None
        enrollments = contact_enrollments(contact)
        return {"enrollments": enrollments} if enrollments else None

    register_detail_panel(DetailPanel(template="sop/_contact_enrollments.html", context=enrollments_panel))
    register_timeline_source(
        TimelineSource(
            name="sop_touch",
            rank=4,
            queryset=contact_touchpoints,
            time_field="finished_at",
            template="sop/_contact_timeline_item.html",
        )
    )


class SopConfig(AppConfig):
    name = "sop"
    verbose_name = _("SOP")

    def ready(self) -> None:
        _register_contact_page()
        # The contact list's bulk bar gets "Enroll in SOP…" (managers and admins; the template checks).
        from contacts.list_scopes import register_bulk_template

        register_bulk_template("sop/_enroll_selection.html")
