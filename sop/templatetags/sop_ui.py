from django import template

from ..channels import get_channel
from ..models import SopTemplate

register = template.Library()


@register.simple_tag
def sop_active_templates():
    """Active templates, for the contact list's "Enroll in SOP…" control (an include without a view)."""
    return list(SopTemplate.objects.filter(active=True).order_by("-priority", "name").values("pk", "name"))


@register.filter
def channel_label(name: str) -> str:
    """A channel's name as people read it ("task" -> 顾问待办（人工发送）)."""
    channel = get_channel(name)
    return str(channel.label) if channel else name
