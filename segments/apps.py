from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = _("Segments")

    def ready(self) -> None:
        # The contact list (and its export) understands ?segment=<id>: a segment's members as the user sees them.
        from contacts.list_scopes import register_bulk_template, register_list_scope

        from .selectors import narrow_to_segment

        register_list_scope("segment", narrow_to_segment)
        # …and its bulk bar can save the selection as a fixed list.
        register_bulk_template("segments/_save_selection.html")
