from django import template
from django.utils.translation import gettext as _

from contacts.models import Contact

register = template.Library()

EVENT_ICONS = {
    "purchase": "bag-check", "refund": "arrow-counterclockwise", "message_in": "chat-left-text",
    "message_out": "chat-right-text", "check_in": "calendar-check", "moments_like": "heart",
    "content_view": "eye", "live_view": "broadcast", "share": "share", "referral": "person-plus",
    "friend_added": "person-check", "friend_deleted": "person-x", "group_joined": "people",
}  # fmt: skip


@register.filter
def event_icon(kind: str) -> str:
    return EVENT_ICONS.get(kind, "dot")


def _field_label(name: str) -> str:
    try:
        return str(Contact._meta.get_field(name).verbose_name)
    except Exception:  # a field removed since the entry was written
        return name


def _show(value) -> str:
    if value in (None, ""):
        return "—"
    if value is True:
        return _("yes")
    if value is False:
        return _("no")
    return str(value)


@register.filter
def audit_lines(entry) -> list[str]:
    """A human sentence per change recorded in an AuditEntry."""
    if entry.action == "contact.tag_added":
        return [_("Added tag %(tag)s") % {"tag": entry.after.get("tag", "")}]
    if entry.action == "contact.tag_removed":
        return [_("Removed tag %(tag)s") % {"tag": entry.before.get("tag", "")}]
    if entry.action == "contact.created":
        return [_("Created the contact")]
    if entry.action == "contact.merged":  # contacts.merging: before/after hold whole snapshots of both
        moved = entry.after.get("moved") or {}
        name = (entry.before.get("duplicate") or {}).get("name", "")
        counts = {key: moved.get(key, 0) for key in ("events", "notes", "tags")}
        return [
            _("Merged “%(name)s” (#%(id)s) into this contact")
            % {"name": name, "id": entry.after.get("merged_id")},
            _("Moved %(events)s events, %(notes)s notes, %(tags)s tags") % counts,
        ]
    lines = []
    for name, value in entry.after.items():
        if name == "custom_fields" and isinstance(value, dict):
            lines += _custom_field_lines(entry.before.get(name) or {}, value)
            continue
        lines.append(
            _("%(field)s: %(old)s → %(new)s")
            % {"field": _field_label(name), "old": _show(entry.before.get(name)), "new": _show(value)}
        )
    return lines


def _custom_field_lines(before: dict, after: dict) -> list[str]:
    """One line per custom field whose value changed, labelled in the active language."""
    from contacts.models import CustomField
    from contacts.selectors import custom_field_label

    keys = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    labels = {f.key: custom_field_label(f) for f in CustomField.objects.filter(key__in=keys)}

    def show(value):
        return "、".join(value) if isinstance(value, list) else _show(value)

    return [
        _("%(field)s: %(old)s → %(new)s")
        % {"field": labels.get(key, key), "old": show(before.get(key)), "new": show(after.get(key))}
        for key in keys
    ]


@register.filter
def text_colour(hex_colour: str) -> str:
    """Black or white, whichever reads better on the given background."""
    try:
        r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    except (ValueError, TypeError):
        return "#fff"
    return "#212529" if (r * 299 + g * 587 + b * 114) / 1000 > 160 else "#fff"
