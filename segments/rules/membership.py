"""The `segment` condition: membership of another segment (dynamic or static).

    {"type": "segment", "op": "in", "segment": 4}          op: in | not_in

Compiled to an EXISTS on SegmentMembership, served by its (contact, segment) index: it reads the other
segment's materialised members, so it is as current as that segment. Keeping the order right (a segment is
refreshed after the segments it names) is the job of segments.services; rejecting cycles ("A is in B, B is
in A") too, as it needs the id of the segment being saved, which a rule does not know.
"""

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..models import Segment, SegmentMembership
from .base import Condition, Params, RuleError, listing, names_by_id, object_id, one_of
from .registry import GROUP, register

OPERATORS = ("in", "not_in")


def _existing_segment(value: Any) -> int:
    pk = object_id(value)
    if not Segment.objects.filter(pk=pk).exists():
        raise RuleError(_("segment %(id)s no longer exists") % {"id": pk})
    return pk


@register
class SegmentCondition(Condition):
    type = "segment"
    label = gettext_lazy("In another segment")

    def validate(self, node: dict) -> dict:
        params = Params(node)
        op = params.take("op", lambda value: one_of(value, OPERATORS))
        segment = params.take("segment", _existing_segment)
        params.finish()
        return {"type": self.type, "op": op, "segment": segment}

    def to_q(self, node: dict, *, now: datetime, among: Sequence[int] | None = None) -> Q:
        member = Q(
            Exists(SegmentMembership.objects.filter(segment_id=node["segment"], contact_id=OuterRef("pk")))
        )
        return member if node["op"] == "in" else ~member

    def describe(self, node: dict) -> str:
        name = listing(names_by_id(Segment, [node.get("segment")], lambda s: s.name))
        if node.get("op") == "not_in":
            return _("not in the segment “%(segment)s”") % {"segment": name}
        return _("in the segment “%(segment)s”") % {"segment": name}


def referenced_segments(tree: Any) -> Iterator[tuple[str, int]]:
    """(path, segment id) of every `segment` condition in a tree (which need not be valid)."""

    def walk(node: Any, path: list) -> Iterator[tuple[str, int]]:
        if not isinstance(node, dict):
            return
        if node.get("type") == GROUP and isinstance(node.get("children"), list):
            for index, child in enumerate(node["children"]):
                yield from walk(child, [*path, "children", index])
        elif node.get("type") == SegmentCondition.type and isinstance(node.get("segment"), int):
            yield ".".join(str(p) for p in [*path, "segment"]), node["segment"]

    yield from walk(tree, [])
