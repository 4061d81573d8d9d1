"""Reads of the SOP app that more than one place uses."""

from .models import SopSettings


def sop_settings() -> SopSettings:
    """The one settings row (made with the defaults on first use)."""
    settings_row, _created = SopSettings.objects.get_or_create(pk=1)
    return settings_row
