"""What a step does when it is done ("when done, add tag"), for the dispatcher (automatic channels, on
delivery) and the inbox (task channel, when the operator marks it sent) alike."""

from collections import defaultdict
from collections.abc import Iterable

from contacts.models import Tag
from contacts.services import contacts_tag_add_by_automation

from .models import Touchpoint


def step_actions_apply(*, touchpoint_ids: Iterable[int]) -> int:
    """Apply the steps' actions for these touchpoints (call it in the transaction that finished them);
    returns how many contacts changed. Adding a tag twice changes nothing, so a retry is harmless."""
    rows = (
        Touchpoint.objects.filter(id__in=list(touchpoint_ids), step__action_add_tag__isnull=False)
        .exclude(contact__isnull=True)
        .values_list("step__action_add_tag_id", "step__template__name", "contact_id")
    )
    by_tag: dict[tuple[int, str], list[int]] = defaultdict(list)
    for tag_id, template_name, contact_id in rows:
        by_tag[(tag_id, template_name)].append(contact_id)
    changed = 0
    for (tag_id, template_name), contact_ids in by_tag.items():
        tag = Tag.objects.select_related("group").get(pk=tag_id)
        changed += contacts_tag_add_by_automation(
            contact_ids=contact_ids, tag=tag, by=f"SOP: {template_name}"
        )
    return changed
