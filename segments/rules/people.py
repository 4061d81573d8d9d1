"""Who the contact is to us: `tier`, `tier_rank`, `owner`, `team`.

    {"type": "tier", "op": "in", "tiers": [1, 2]}          op: in | not_in | is_empty | is_not_empty
    {"type": "tier_rank", "min": 3, "max": null}            rank between min and max, either open
    {"type": "owner", "op": "is_empty"}                     op: in | not_in | is_empty | is_not_empty
    {"type": "team", "manager": 5}                          owner is the manager or reports to them

A team is a subquery (`owner_id IN (SELECT …)`), so an operator moved to another team counts at once. A rank
range is read into tier ids when the rule is compiled (a handful of rows; every count and refresh compiles
afresh, so a re-ranked tier counts at once too): with the ids in the statement the planner can read the
(tier, id) INCLUDE (last_active_at) index alone for the tiers in range, while a subquery left it guessing and
scanning the whole table (1M contacts, "金卡及以上 AND 30 天未互动 AND two tags": ~85 ms against ~360 ms).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from django.contrib.auth import get_user_model
from django.db.models import Model, Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from contacts.models import Tier

from .base import (
    Condition,
    Params,
    RuleError,
    ensure_exist,
    integer,
    listing,
    names_by_id,
    nonempty_list,
    object_id,
    one_of,
)
from .registry import register

SET_OPERATORS = ("in", "not_in", "is_empty", "is_not_empty")
MAX_RANK = 32767  # Tier.rank is a PositiveSmallIntegerField


class IdSetCondition(Condition):
    """A nullable foreign key of Contact is in a set of rows, not in it, empty or not empty."""

    model: ClassVar[type[Model]]
    column: ClassVar[str]  # the Contact foreign key, e.g. "tier"
    key: ClassVar[str]  # the JSON key of the ids, e.g. "tiers"
    missing: ClassVar[str]  # message for an id that names no row, with %(id)s

    def get_model(self) -> type[Model]:
        return self.model

    def validate(self, node: dict) -> dict:
        params = Params(node)
        op = params.take("op", lambda value: one_of(value, SET_OPERATORS))
        cleaned = {"type": self.type, "op": op}
        if op in ("in", "not_in"):
            cleaned[self.key] = params.take(self.key, self._existing)
        else:
            params.refuse(self.key, _("This operator takes no value."))
        params.finish()
        return cleaned

    def _existing(self, value: Any) -> list[int]:
        ids = nonempty_list(value, object_id)
        ensure_exist(self.get_model(), ids, str(self.missing))
        return ids

    def to_q(self, node: dict, *, now: datetime, among: Sequence[int] | None = None) -> Q:
        op = node["op"]
        if op in ("is_empty", "is_not_empty"):
            return Q(**{f"{self.column}__isnull": op == "is_empty"})
        matches = Q(**{f"{self.column}__in": node[self.key]})
        return matches if op == "in" else ~matches

    def names(self, node: dict) -> str:
        return listing(names_by_id(self.get_model(), node.get(self.key, []), str))


@register
class TierCondition(IdSetCondition):
    type = "tier"
    label = gettext_lazy("Tier")
    model = Tier
    column = "tier"
    key = "tiers"
    missing = gettext_lazy("tier %(id)s no longer exists")

    def describe(self, node: dict) -> str:
        phrase = {
            "in": _("tier is %(tiers)s"),
            "not_in": _("tier is not %(tiers)s"),
            "is_empty": _("has no tier"),
            "is_not_empty": _("has a tier"),
        }.get(node.get("op"), "%(tiers)s")
        return phrase % {"tiers": self.names(node)}


@register
class OwnerCondition(IdSetCondition):
    type = "owner"
    label = gettext_lazy("Owner")
    column = "owner"
    key = "users"
    missing = gettext_lazy("user %(id)s no longer exists")

    def get_model(self):  # (no annotation: `type` is a str in this class's namespace)
        return get_user_model()

    def describe(self, node: dict) -> str:
        phrase = {
            "in": _("owner is %(users)s"),
            "not_in": _("owner is not %(users)s"),
            "is_empty": _("unassigned (公海)"),
            "is_not_empty": _("has an owner"),
        }.get(node.get("op"), "%(users)s")
        return phrase % {"users": self.names(node)}


def _rank(value: Any) -> int | None:
    return None if value is None else integer(value, low=0, high=MAX_RANK)


@register
class TierRankCondition(Condition):
    """Tier rank in a range: "金卡及以上" is min = 金卡's rank. Contacts with no tier never match."""

    type = "tier_rank"
    label = gettext_lazy("Tier rank")

    def validate(self, node: dict) -> dict:
        params = Params(node)
        low = params.take("min", _rank) if params.has("min") else None
        high = params.take("max", _rank) if params.has("max") else None
        params.finish()
        if low is None and high is None:
            raise RuleError(_("Enter a lowest rank, a highest rank, or both."))
        if low is not None and high is not None and low > high:
            raise RuleError(_("The lowest rank must not be greater than the highest."), "min")
        return {"type": self.type, "min": low, "max": high}

    def to_q(self, node: dict, *, now: datetime, among: Sequence[int] | None = None) -> Q:
        ranks = Q()
        if node["min"] is not None:
            ranks &= Q(rank__gte=node["min"])
        if node["max"] is not None:
            ranks &= Q(rank__lte=node["max"])
        return Q(tier__in=list(Tier.objects.filter(ranks).values_list("pk", flat=True)))

    def describe(self, node: dict) -> str:
        low, high = node.get("min"), node.get("max")
        if low is not None and high is not None:
            return _("tier rank is between %(min)s and %(max)s") % {"min": low, "max": high}
        if low is not None:
            return _("tier rank is at least %(min)s") % {"min": low}
        return _("tier rank is at most %(max)s") % {"max": high}


def _existing_user(value: Any) -> int:
    pk = object_id(value)
    if not get_user_model().objects.filter(pk=pk).exists():
        raise RuleError(_("user %(id)s no longer exists") % {"id": pk})
    return pk


@register
class TeamCondition(Condition):
    """Owned by the manager or by someone whose manager they are (the same team as
    contacts.selectors.team_member_ids, but as a subquery)."""

    type = "team"
    label = gettext_lazy("Team")

    def validate(self, node: dict) -> dict:
        params = Params(node)
        manager = params.take("manager", _existing_user)
        params.finish()
        return {"type": self.type, "manager": manager}

    def to_q(self, node: dict, *, now: datetime, among: Sequence[int] | None = None) -> Q:
        manager = node["manager"]
        team = get_user_model().objects.filter(Q(pk=manager) | Q(manager_id=manager)).values("pk")
        return Q(owner__in=team)

    def describe(self, node: dict) -> str:
        manager = listing(names_by_id(get_user_model(), [node.get("manager")], str))
        return _("owned by the team of %(manager)s") % {"manager": manager}
