from django import template

from ..models import SopTemplate

register = template.Library()


@register.simple_tag
def sop_active_templates():
    """Active templates, for the contact list's "Enroll in SOP…" control (an include without a view)."""
    return list(SopTemplate.objects.filter(active=True).order_by("-priority", "name").values("pk", "name"))
