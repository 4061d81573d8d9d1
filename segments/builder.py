"""The rule builder's form: a rule tree written as flat form fields and read back, exactly.

Every node of the tree has an id from its position: the root group is "n", its third child "n-2", that
child's first child "n-2-0". A node's fields are named "<id>.<param>" ("n-2.type", "n-2.op",
"n-2.value"); lists repeat the name. Reading the form gives the tree back (`tree_from_form`), lenient:
whatever was typed becomes the node, and validate_tree then says what is wrong and where; writing it
(`builder_nodes`) gives the template one BuilderNode per node with what its widgets need.

Each condition type has an editor here: which params it reads from the form and which template draws it
(segments/builder/<type>.html). A type without an editor (one registered later by another app) is edited as
JSON text, so it still round-trips.

Structural changes (add, remove, change a condition's type, field or operator) come as an `action`; a
changed type or field starts the condition afresh rather than carrying values that mean something else.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext_lazy as _

from .rules import RuleError, get_condition
from .rules.fields import find_field
from .rules.kinds import DAYS, LIST, NONE, ONE, PAIR

ROOT = "n"
_NODE_ID = re.compile(r"^n(-[0-9]{1,2}){0,5}$")
EMPTY_RULE = {"type": "group", "match": "all", "children": []}
NEW_CONDITION = {"type": "tags", "op": "has_any", "tags": []}
# The condition menu, in the order people reach for them; types registered later follow.
MENU_ORDER = ("field", "tags", "tier", "tier_rank", "events", "birthday_within", "owner", "team", "segment")

OPERATOR_LABELS = {
    "equals": _("is"),
    "not_equals": _("is not"),
    "contains": _("contains"),
    "not_contains": _("does not contain"),
    "starts_with": _("starts with"),
    "is_empty": _("is empty"),
    "is_not_empty": _("is not empty"),
    "in": _("is one of"),
    "not_in": _("is none of"),
    "has_any": _("has any of"),
    "has_all": _("has all of"),
    "has_none": _("has none of"),
    "eq": "=",
    "ne": "≠",
    "gt": ">",
    "gte": "≥",
    "lt": "<",
    "lte": "≤",
    "between": _("is between"),
    "before": _("is before"),
    "after": _("is after"),
    "within_last_days": _("within the last … days"),
    "more_than_days_ago": _("more than … days ago"),
    "is_true": _("yes"),
    "is_false": _("no"),
}


# --- reading the form ------------------------------------------------------------------------------


def _one(data, key: str) -> Any:
    """A single value, or the marker that it was left empty (then the key is left out of the node, and
    validation says "This value is required." at it)."""
    value = data.get(key)
    return _MISSING if value is None or str(value).strip() == "" else str(value).strip()


_MISSING = object()


def _put(node: dict, key: str, value: Any) -> None:
    if value is not _MISSING:
        node[key] = value


def _int_or_text(value: Any) -> Any:
    """Ids come as digits; keep anything else as typed so validation can name it."""
    if value is _MISSING:
        return value
    return int(value) if re.fullmatch(r"[0-9]{1,18}", value) else value


def _id_list(data, key: str) -> list:
    return [_int_or_text(str(v).strip()) for v in data.getlist(key) if str(v).strip()]


def _read_field(data, nid: str, node: dict) -> None:
    _put(node, "field", _one(data, f"{nid}.field"))
    _put(node, "op", _one(data, f"{nid}.op"))
    field_def = find_field(node.get("field"))
    shape = field_def.kind.shapes.get(node.get("op"), NONE) if field_def else ONE
    if shape in (ONE, DAYS):
        _put(node, "value", _one(data, f"{nid}.value"))
    elif shape == PAIR:
        low, high = _one(data, f"{nid}.value_from"), _one(data, f"{nid}.value_to")
        if low is not _MISSING or high is not _MISSING:
            node["value"] = ["" if low is _MISSING else low, "" if high is _MISSING else high]
    elif shape == LIST:
        node["value"] = [str(v) for v in data.getlist(f"{nid}.value") if str(v) != ""]


def _read_tags(data, nid: str, node: dict) -> None:
    _put(node, "op", _one(data, f"{nid}.op"))
    if data.get(f"{nid}.mode") == "group":
        _put(node, "group", _int_or_text(_one(data, f"{nid}.group")))
    else:
        node["tags"] = _id_list(data, f"{nid}.tags")


def _id_set_reader(key: str) -> Callable:
    def read(data, nid: str, node: dict) -> None:
        _put(node, "op", _one(data, f"{nid}.op"))
        if node.get("op") in ("in", "not_in"):
            node[key] = _id_list(data, f"{nid}.{key}")

    return read


def _read_tier_rank(data, nid: str, node: dict) -> None:
    for key in ("min", "max"):
        value = _one(data, f"{nid}.{key}")
        node[key] = None if value is _MISSING else _int_or_text(value)


def _params_reader(*keys: str, ids: tuple[str, ...] = ()) -> Callable:
    def read(data, nid: str, node: dict) -> None:
        for key in keys:
            value = _one(data, f"{nid}.{key}")
            _put(node, key, _int_or_text(value) if key in ids else value)

    return read


def _read_json(data, nid: str, node: dict) -> None:
    try:
        parsed = json.loads(data.get(f"{nid}.json") or "{}")
    except ValueError:
        parsed = {"json": data.get(f"{nid}.json")}  # invalid JSON: validation reports the stray key
    if isinstance(parsed, dict):
        node.update({k: v for k, v in parsed.items() if k != "type"})


READERS: dict[str, Callable] = {
    "field": _read_field,
    "tags": _read_tags,
    "tier": _id_set_reader("tiers"),
    "owner": _id_set_reader("users"),
    "tier_rank": _read_tier_rank,
    "team": _params_reader("manager", ids=("manager",)),
    "events": _params_reader("kind", "measure", "op", "value", "days"),
    "birthday_within": _params_reader("days", "tz"),
    "segment": _params_reader("op", "segment", ids=("segment",)),
}


def tree_from_form(data) -> dict:
    """The tree the form describes (not validated)."""
    node_ids = {key.split(".", 1)[0] for key in data if "." in key and _NODE_ID.match(key.split(".", 1)[0])}
    return _node_from_form(data, ROOT, node_ids, depth=1)


def _node_from_form(data, nid: str, node_ids: set[str], depth: int) -> dict:
    kind = data.get(f"{nid}.type") or "group"
    if kind == "group":
        children = sorted(
            (child for child in node_ids if child.rsplit("-", 1)[0] == nid and child != nid),
            key=lambda child: int(child.rsplit("-", 1)[1]),
        )
        return {
            "type": "group",
            "match": data.get(f"{nid}.match") or "all",
            "children": [_node_from_form(data, child, node_ids, depth + 1) for child in children],
        }
    node = {"type": kind}
    READERS.get(kind, _read_json)(data, nid, node)
    # A changed type or field starts the condition afresh (its old values would mean something else).
    if data.get(f"{nid}.was") not in (None, kind):
        return _fresh(kind)
    if kind == "field" and data.get(f"{nid}.was_field") not in (None, node.get("field")):
        return _fresh_field(node.get("field"))
    return node


def _fresh(kind: str) -> dict:
    if kind == "field":
        return _fresh_field("city")
    return {
        "tags": {"type": "tags", "op": "has_any"},
        "tier": {"type": "tier", "op": "in"},
        "owner": {"type": "owner", "op": "in"},
        "tier_rank": {"type": "tier_rank", "min": None, "max": None},
        "events": {"type": "events", "kind": "purchase", "measure": "count", "op": "gte", "days": 90},
        "birthday_within": {"type": "birthday_within", "days": 7},
        "segment": {"type": "segment", "op": "in"},
    }.get(kind, {"type": kind})


def _fresh_field(name: Any) -> dict:
    field_def = find_field(name)
    if field_def is None:
        return {"type": "field", "field": name}
    return {"type": "field", "field": field_def.name, "op": field_def.kind.operators(field_def.access)[0]}


# --- structural actions ----------------------------------------------------------------------------


def apply_action(tree: dict, action: str) -> dict:
    """ "add:<group id>", "group:<group id>" (a nested group with one condition), "remove:<node id>"."""
    verb, _sep, nid = (action or "").partition(":")
    if not _NODE_ID.match(nid):
        return tree
    path = [int(part) for part in nid.split("-")[1:]]
    if verb == "remove" and path:
        parent = _find(tree, path[:-1])
        if parent is not None and path[-1] < len(parent.get("children", [])):
            del parent["children"][path[-1]]
    elif verb in ("add", "group"):
        target = _find(tree, path)
        if target is not None and target.get("type") == "group":
            new = dict(NEW_CONDITION)
            if verb == "group":
                new = {"type": "group", "match": "any", "children": [dict(NEW_CONDITION)]}
            target["children"].append(new)
    return tree


def _find(tree: dict, path: list[int]) -> dict | None:
    node = tree
    for index in path:
        children = node.get("children") if isinstance(node, dict) else None
        if not isinstance(children, list) or index >= len(children):
            return None
        node = children[index]
    return node


# --- drawing ---------------------------------------------------------------------------------------


@dataclass
class BuilderNode:
    id: str
    node: dict
    depth: int
    error: str = ""
    error_key: str = ""  # the param the error is about ("value", "tags"), for highlighting its input
    children: list["BuilderNode"] = field(default_factory=list)
    editor: str = ""  # template of a condition's widgets
    field_def: Any = None  # for `field` conditions: the Field (kind, operators, options)
    shape: str = ""
    json: str = ""

    @property
    def is_group(self) -> bool:
        return self.node.get("type") == "group"

    @property
    def can_nest(self) -> bool:
        return self.depth < 5

    @property
    def pair(self) -> list:
        """[from, to] of a "between" value, as typed so far."""
        value = self.node.get("value")
        return [*(value if isinstance(value, list) else [])[:2], "", ""][:2]

    @property
    def values(self) -> list[str]:
        value = self.node.get("value")
        return [str(v) for v in value] if isinstance(value, list) else []

    @property
    def id_list(self) -> list[str]:
        """The chosen ids of tags / tiers / users, as strings (templates compare with option values)."""
        for key in ("tags", "tiers", "users"):
            if isinstance(self.node.get(key), list):
                return [str(v) for v in self.node[key]]
        return []


def error_location(error: RuleError | None) -> tuple[str, str, str]:
    """(node id, param, message) of a RuleError's path ("children.2.children.0.value" -> "n-2-0", "value")."""
    if error is None:
        return "", "", ""
    parts, nid, rest = error.path.split(".") if error.path else [], ROOT, []
    while parts:
        if parts[0] == "children" and len(parts) > 1 and parts[1].isdigit():
            nid += f"-{parts[1]}"
            parts = parts[2:]
        else:
            rest = parts
            break
    return nid, (rest[0] if rest else ""), error.message


def builder_nodes(tree: dict, error: RuleError | None = None) -> BuilderNode:
    error_id, error_key, message = error_location(error)
    return _draw(tree, ROOT, 1, error_id, error_key, message)


def _draw(node: Any, nid: str, depth: int, error_id: str, error_key: str, message: str) -> BuilderNode:
    node = node if isinstance(node, dict) else {"type": "group", "match": "all", "children": []}
    drawn = BuilderNode(id=nid, node=node, depth=depth)
    if nid == error_id:
        drawn.error, drawn.error_key = message, error_key
    if node.get("type") == "group":
        children = node.get("children") if isinstance(node.get("children"), list) else []
        drawn.children = [
            _draw(child, f"{nid}-{i}", depth + 1, error_id, error_key, message)
            for i, child in enumerate(children)
        ]
        return drawn
    kind = node.get("type")
    if kind in READERS and get_condition(kind) is not None:
        drawn.editor = f"segments/builder/{kind}.html"
    else:
        drawn.editor = "segments/builder/json.html"
        drawn.json = json.dumps({k: v for k, v in node.items() if k != "type"}, ensure_ascii=False)
    if kind == "field":
        drawn.field_def = find_field(node.get("field"))
        if drawn.field_def is not None:
            drawn.shape = drawn.field_def.kind.shapes.get(node.get("op"), NONE)
    return drawn


def menu() -> list[tuple[str, str]]:
    """(type, label) of every condition type for the type select, in MENU_ORDER then registration order."""
    from .rules import condition_types

    types = condition_types()
    ordered = [name for name in MENU_ORDER if name in types] + [
        name for name in types if name not in MENU_ORDER
    ]
    return [(name, str(types[name].label)) for name in ordered]
