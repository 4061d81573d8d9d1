"""Template helpers of the segment pages."""

from django import template

register = template.Library()

WIDTH, HEIGHT, PAD = 120, 28, 2


@register.simple_tag
def sparkline(values: list[int]) -> dict:
    """SVG polyline points for a small size-over-time line (drawn server-side: fifty list rows do not need
    fifty chart instances)."""
    if not values:
        return {"width": WIDTH, "height": HEIGHT, "points": "", "low": 0, "high": 0}
    if len(values) == 1:
        values = values * 2  # one day: a flat line
    low, high = min(values), max(values)
    span = (high - low) or 1
    step = (WIDTH - 2 * PAD) / max(len(values) - 1, 1)
    points = " ".join(
        f"{PAD + i * step:.1f},{HEIGHT - PAD - (v - low) * (HEIGHT - 2 * PAD) / span:.1f}"
        for i, v in enumerate(values)
    )
    return {"width": WIDTH, "height": HEIGHT, "points": points, "low": low, "high": high}


@register.filter
def get_item(mapping: dict, key):
    return mapping.get(key, "") if isinstance(mapping, dict) else ""


@register.filter
def field_operators(field_def) -> tuple[str, ...]:
    """The operators a rule field offers (they depend on whether its value can be empty)."""
    return field_def.kind.operators(field_def.access) if field_def is not None else ()
