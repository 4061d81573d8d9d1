"""Segment rules: a JSON tree of groups and conditions, validated, compiled to one SQL query, and
described in words.

    tree = {"type": "group", "match": "all", "children": [
        {"type": "tier_rank", "min": 3, "max": None},
        {"type": "tags", "op": "has_any", "tags": [12]},
        {"type": "field", "field": "last_active_at", "op": "more_than_days_ago", "value": 30},
        {"type": "events", "kind": "purchase", "measure": "sum", "op": "gte", "value": "200", "days": 90},
    ]}
    cleaned = validate_tree(tree)                       # or RuleError(.path, .message)
    Contact.objects.filter(compile_tree(cleaned))       # one query; no per-contact Python
    count_alone(cleaned)                                # a cheaper count, for a lone condition, or None
    describe_tree(cleaned)                              # "all of: tier rank is at least 3; …"

Condition types (each a class in this package, registered with @register):
  field            contact fields and custom fields (`cf:<key>`), operators by kind (fields.py, kinds.py)
  tags             has any / all / none of tags, or of a tag group (tags.py)
  tier, tier_rank, owner, team                                      (people.py)
  events           count or sum of events of a kind in the last N days (events.py)
  birthday_within  birthday in the next N days, in a time zone (birthdays.py)
  segment          in / not in another segment (membership.py; cycles are rejected by segments.services)

Adding a type: subclass base.Condition (validate, to_q, describe — see its docstring for the contract:
to_q must never be SQL NULL, and must not read rows into Python), set `type` and `label`, decorate it
with @register, and make sure its module is imported at start-up. The validator, compiler and describer
never name a type, so nothing else changes. Types still to come:
- points balance, membership level, points expiring soon (loyalty), churn risk band and open alert
  (churn), SOP enrollment state (sop): apps above `segments` (sop, churn) register their types from their
  own AppConfig.ready(); segments never imports them. loyalty sits beside segments on contacts, so its
  types are registered from loyalty or scrm/, whichever the loyalty issue decides.
"""

from . import birthdays, events, fields, membership, people, tags  # noqa: F401  (importing registers the types)
from .base import Condition, RuleError
from .fields import field_choices
from .membership import referenced_segments
from .registry import condition_types, get_condition, register, unregister
from .tree import MAX_CHILDREN, MAX_DEPTH, compile_tree, count_alone, describe_tree, validate_tree

__all__ = [
    "MAX_CHILDREN",
    "MAX_DEPTH",
    "Condition",
    "RuleError",
    "compile_tree",
    "condition_types",
    "count_alone",
    "describe_tree",
    "field_choices",
    "get_condition",
    "referenced_segments",
    "register",
    "unregister",
    "validate_tree",
]
