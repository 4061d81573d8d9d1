"""The `tags` condition: has any / all / none of some tags, or of the tags of a whole tag group.

    {"type": "tags", "op": "has_any", "tags": [3, 7]}
    {"type": "tags", "op": "has_none", "group": 2}

Every test is an EXISTS on ContactTag, served by its (contact, tag) unique index per contact or its
(tag, contact) index as a semi-join. "has all" of listed tags is one EXISTS per tag; "has all" of a group
is a relational division in SQL — no tag in the group the contact lacks — so tags added to the group
later count without re-saving the rule (and a group with no tags is vacuously "all").
"""

from collections.abc import Sequence
from datetime import datetime
from functools import reduce
from operator import and_

from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from contacts.models import ContactTag, Tag, TagGroup

from .base import (
    Condition,
    Params,
    RuleError,
    ensure_exist,
    listing,
    names_by_id,
    nonempty_list,
    object_id,
    one_of,
)
from .registry import register

OPERATORS = ("has_any", "has_all", "has_none")


def _existing_tags(value) -> list[int]:
    ids = nonempty_list(value, object_id)
    ensure_exist(Tag, ids, _("tag %(id)s no longer exists"))
    return ids


def _existing_group(value) -> int:
    pk = object_id(value)
    if not TagGroup.objects.filter(pk=pk).exists():
        raise RuleError(_("tag group %(id)s no longer exists") % {"id": pk})
    return pk


def _tagged(**filters) -> Exists:
    return Exists(ContactTag.objects.filter(contact_id=OuterRef("pk"), **filters))


@register
class TagsCondition(Condition):
    type = "tags"
    label = gettext_lazy("Tags")

    def validate(self, node: dict) -> dict:
        params = Params(node)
        op = params.take("op", lambda value: one_of(value, OPERATORS))
        if params.has("tags") == params.has("group"):
            raise RuleError(_("Choose either tags or a tag group."))
        if params.has("tags"):
            cleaned = {"type": self.type, "op": op, "tags": params.take("tags", _existing_tags)}
        else:
            cleaned = {"type": self.type, "op": op, "group": params.take("group", _existing_group)}
        params.finish()
        return cleaned

    def to_q(self, node: dict, *, now: datetime, among: Sequence[int] | None = None) -> Q:
        op = node["op"]
        if "group" in node:
            return self._group_q(op, node["group"])
        if op == "has_all":
            return reduce(and_, (Q(_tagged(tag_id=pk)) for pk in node["tags"]))
        has_any = Q(_tagged(tag_id__in=node["tags"]))
        return has_any if op == "has_any" else ~has_any

    def _group_q(self, op: str, group_id: int) -> Q:
        if op == "has_all":
            lacking = Tag.objects.filter(group_id=group_id).filter(
                ~Exists(ContactTag.objects.filter(contact_id=OuterRef(OuterRef("pk")), tag_id=OuterRef("pk")))
            )
            return ~Q(Exists(lacking))
        has_any = Q(_tagged(tag__group_id=group_id))
        return has_any if op == "has_any" else ~has_any

    def describe(self, node: dict) -> str:
        op = node.get("op")
        if "group" in node:
            group = listing(names_by_id(TagGroup, [node["group"]], lambda g: g.name))
            phrase = {
                "has_any": _("has a tag in the group %(group)s"),
                "has_all": _("has every tag in the group %(group)s"),
                "has_none": _("has no tag in the group %(group)s"),
            }.get(op, "%(group)s")
            return phrase % {"group": group}
        tags = listing(names_by_id(Tag, node.get("tags", []), lambda t: t.name))
        phrase = {
            "has_any": _("has any of tags %(tags)s"),
            "has_all": _("has all of tags %(tags)s"),
            "has_none": _("has none of tags %(tags)s"),
        }.get(op, "%(tags)s")
        return phrase % {"tags": tags}
