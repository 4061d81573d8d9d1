"""The rule tree: groups of conditions, validated, compiled to one Q, described in words.

    {"type": "group", "match": "all" | "any" | "none", "children": [<group or condition>, ...]}

The root is a group (depth 1); groups nest at most MAX_DEPTH deep and are never empty. Conditions are
looked up in the registry by their "type"; nothing here names one.
"""

from collections.abc import Sequence
from datetime import datetime
from functools import reduce
from operator import and_, or_
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from .base import Params, RuleError, join_path, one_of, shown
from .registry import GROUP, get_condition

MAX_DEPTH = 5
MAX_CHILDREN = 50  # per group; a person does not build more, and it bounds the size of the SQL
MATCHES = ("all", "any", "none")


def validate_tree(tree: Any) -> dict:
    """The cleaned tree (JSON-serialisable; validating it again returns it unchanged), or RuleError
    pointing at the first offending node. Any JSON value is accepted as input."""
    if not isinstance(tree, dict) or tree.get("type") != GROUP:
        raise RuleError(_("A rule must be a group of conditions."))
    return _validate_node(tree, [], depth=1)


def _validate_node(node: Any, path: list, *, depth: int) -> dict:
    if not isinstance(node, dict):
        raise RuleError(_("Expected a condition or a group."), join_path(*path))
    if node.get("type") == GROUP:
        return _validate_group(node, path, depth=depth)
    condition = get_condition(node.get("type"))
    if condition is None:
        if "type" not in node:
            raise RuleError(_("Choose a condition type."), join_path(*path, "type"))
        message = _("Unknown condition type “%(type)s”.") % {"type": shown(node["type"])}
        raise RuleError(message, join_path(*path, "type"))
    try:
        return condition.validate(node)
    except RuleError as error:
        raise error.under(*path) from None


def _validate_group(node: dict, path: list, *, depth: int) -> dict:
    if depth > MAX_DEPTH:
        raise RuleError(_("Groups nest at most %(n)d deep.") % {"n": MAX_DEPTH}, join_path(*path))
    params = Params(node)
    try:
        match = params.take("match", lambda value: one_of(value, MATCHES))
        children = params.take("children", _child_list)
        params.finish()
    except RuleError as error:
        raise error.under(*path) from None
    if not children:
        raise RuleError(_("This group is empty; add a condition or remove the group."), join_path(*path))
    cleaned = [
        _validate_node(child, [*path, "children", i], depth=depth + 1) for i, child in enumerate(children)
    ]
    return {"type": GROUP, "match": match, "children": cleaned}


def _child_list(value: Any) -> list:
    if not isinstance(value, list):
        raise RuleError(_("Expected a list of conditions and groups."))
    if len(value) > MAX_CHILDREN:
        raise RuleError(_("A group holds at most %(n)d conditions.") % {"n": MAX_CHILDREN})
    return value


def compile_tree(tree: Any, *, now: datetime | None = None, among: Sequence[int] | None = None) -> Q:
    """One Q for the whole tree: Contact.objects.filter(q) is a single SQL query.

    The tree is validated first (RuleError if it is invalid — including a tag, tier or user deleted since
    it was saved: such a rule is broken, and is never silently compiled into something else). `now` fixes
    "the last N days" and "today"; it defaults to the current time and must be aware. With `among` (contact
    ids), the Q is only valid for those contacts: the caller filters id__in=among too (see base.Condition)."""
    now = timezone.now() if now is None else now
    if timezone.is_naive(now):
        raise ValueError("compile_tree needs an aware datetime for now")
    return _compile(validate_tree(tree), now, among)


def _compile(node: dict, now: datetime, among: Sequence[int] | None) -> Q:
    if node["type"] != GROUP:
        return get_condition(node["type"]).to_q(node, now=now, among=among)
    parts = [_compile(child, now, among) for child in node["children"]]
    if node["match"] == "all":
        return reduce(and_, parts)
    # Conditions keep their Q an exact complement under NOT (see base.Condition), so "none" is.
    combined = reduce(or_, parts)
    return combined if node["match"] == "any" else ~combined


def count_alone(tree: Any, *, now: datetime | None = None) -> QuerySet | None:
    """A query whose row count is the number of contacts the tree selects, read without the contacts
    table, or None: only for a tree that is one condition alone (in groups of "all" or "any" of one child
    each) whose type offers one (Condition.count_alone; e.g. "spent ≥ 200 in 90 days" counts the grouped
    events). It counts every contact, so it serves only a user who sees them all. Validates like
    compile_tree (RuleError)."""
    now = timezone.now() if now is None else now
    if timezone.is_naive(now):
        raise ValueError("count_alone needs an aware datetime for now")
    node = validate_tree(tree)
    while node["type"] == GROUP and node["match"] in ("all", "any") and len(node["children"]) == 1:
        node = node["children"][0]
    if node["type"] == GROUP:
        return None
    return get_condition(node["type"]).count_alone(node, now=now)


def describe_tree(tree: Any) -> str:
    """The rule in words, in the active language: "all of: tier is 金卡; has any of tags 辣; …".

    Meant for trees that validated when they were saved: rows deleted since then show as "#7 (deleted)"
    rather than failing, so a broken rule can still be read. A tree that is not groups of known condition
    types raises RuleError."""
    if not isinstance(tree, dict) or tree.get("type") != GROUP:
        raise RuleError(_("A rule must be a group of conditions."))
    return _describe(tree, [], top=True)


def _describe(node: Any, path: list, *, top: bool = False) -> str:
    if not isinstance(node, dict):
        raise RuleError(_("Expected a condition or a group."), join_path(*path))
    if node.get("type") != GROUP:
        condition = get_condition(node.get("type"))
        if condition is None:
            raise RuleError(
                _("Unknown condition type “%(type)s”.") % {"type": shown(node.get("type"))},
                join_path(*path, "type"),
            )
        return condition.describe(node)
    children = node.get("children") if isinstance(node.get("children"), list) else []
    items = pgettext("separator between the conditions of a group", "; ").join(
        _describe(child, [*path, "children", i]) for i, child in enumerate(children)
    )
    return _group_phrase(node.get("match"), top=top) % {"conditions": items}


def _group_phrase(match: Any, *, top: bool) -> str:
    if top:
        return {
            "all": _("all of: %(conditions)s"),
            "any": _("any of: %(conditions)s"),
            "none": _("none of: %(conditions)s"),
        }.get(match, "%(conditions)s")
    return {
        "all": _("all of (%(conditions)s)"),
        "any": _("any of (%(conditions)s)"),
        "none": _("none of (%(conditions)s)"),
    }.get(match, "(%(conditions)s)")
