"""The `events` condition: the count, or the sum of amounts, of a contact's events of one kind in the last
N days, compared with a number ("≥ 3 purchases in 90 days", "spent ≥ 200 in 90 days").

    {"type": "events", "kind": "purchase", "measure": "count", "op": "gte", "value": "3", "days": 90}
    {"type": "events", "kind": "purchase", "measure": "sum", "op": "gte", "value": "200.00", "days": 90}

The window is now - N days ≤ occurred_at ≤ now; a sum adds the events' amounts (events without one add
nothing); a contact with no such events has 0, so "fewer than 1 purchase" includes contacts with none.

Compiled set-based for the whole population, not as a correlated subquery per contact: one GROUP BY
over the window's events, read through the (kind, occurred_at) index, then
    id IN (contacts whose total passes, ORDER BY contact_id LIMIT 2^63-1)    when 0 does not pass
                                                     ("≥ 3", "≥ 200");
    NOT id IN (contacts whose total fails)           when 0 passes ("< 1", "≤ 100"), so contacts
                                                     without events are in.
Measured on PostgreSQL at 200k contacts / 2M events, "spent ≥ 200 in 90 days" took 830 ms as a
correlated subquery (one index probe per contact) and 110 ms this way; with tier and tag conditions
beside it, 320 ms and 160 ms.

The ORDER BY and the (never reached) LIMIT are for PostgreSQL's plan of the IN. Its semi-join probes the
contacts' primary key once per passing contact: in contact_id order the probes walk the index leaf by leaf,
in the order a hash aggregate emits them they jump all over it (2–3× the time). And a subquery with a LIMIT
is never run in parallel workers; without one, PostgreSQL 15 chose parallel hash or merge joins in which
every worker computes the whole aggregate again. At 1M contacts / 9.9M events, "spent ≥ 200 in 90 days"
(110k contacts), with the window read from a covering (kind, occurred_at) INCLUDE (contact_id, amount)
index, took 250–350 ms this way and 610 ms as a bare IN; the hand-written count of the grouped events
alone (no contacts read) 150–220 ms: the ~95 ms between them is the probe of each passing contact.
Through the plain (kind, occurred_at) index each purchase costs a heap fetch: ~850 ms either way; the index
is covering since contacts migration 0011. Counts use COUNT(*), not of the id, so the covering index serves
them too.

Counting without the probe: when this condition is a whole rule and only contacts with events in the window
pass, `count_alone` offers the passing totals themselves; segments.selectors.rule_count counts them for a
user who sees every contact (SELECT count(*) FROM (… GROUP BY contact_id HAVING …), the hand-written
statement). Exact, as each row is one contact_id and Event.contact is a non-null foreign key: only inside a
transaction that deleted a contact's row but not yet its events (the constraint is deferred to the commit)
could the two disagree, and Django deletes the events first.

With `among` (an incremental refresh: the Q is only asked about those contacts) the total is instead a
subquery correlated on the contact, one probe of the (contact, occurred_at) index per contact. A window
subquery narrowed to the contacts let the planner scan the whole window of the covering index for each rule
(60 ms a rule for 1,000 contacts); the probes take ~8 ms.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from operator import eq as equal
from operator import ge, gt, le, lt

from django.db import connection
from django.db.models import Count, DecimalField, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Round
from django.db.models.lookups import Exact, GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from contacts.models import Event, EventKind

from .base import Condition, Params, decimal_text, integer, one_of
from .registry import register

MEASURES = ("count", "sum")
COMPARISONS = {"gte": "≥", "gt": ">", "lte": "≤", "lt": "<", "eq": "="}
_LOOKUPS = {"gte": "gte", "gt": "gt", "lte": "lte", "lt": "lt", "eq": "exact"}
_COMPARE = {"gte": GreaterThanOrEqual, "gt": GreaterThan, "lte": LessThanOrEqual, "lt": LessThan, "eq": Exact}
_PASSES = {"gte": ge, "gt": gt, "lte": le, "lt": lt, "eq": equal}
MAX_WINDOW_DAYS = 3650
# The LIMIT on the passing contacts (a bigint, never reached): it keeps the subquery ordered and serial.
_ALL_ROWS = 2**63 - 1
_MONEY = DecimalField(max_digits=30, decimal_places=2)


def _window(node: dict, now: datetime) -> QuerySet:
    return Event.objects.filter(
        kind=node["kind"], occurred_at__gte=now - timedelta(days=node["days"]), occurred_at__lte=now
    ).order_by()


def _total(node: dict):
    """The aggregate over a contact's events: COUNT(*) (not of the id, which the covering index lacks), or
    the amounts' sum. Amounts have two places; SQLite adds them as binary floats (0.10 + 0.20 =
    0.30000000000000004), so there the sum is rounded to cents. PostgreSQL's numeric sum is exact already,
    and a ROUND per contact is ~10% of a 125k-contact window count."""
    if node["measure"] == "count":
        return Count("*")
    return Sum("amount") if connection.vendor == "postgresql" else Round(Sum("amount"), 2)


def _zero(node: dict) -> Value:
    return Value(0) if node["measure"] == "count" else Value(Decimal("0"))


def _totals(node: dict, now: datetime, *, null_sum_is_zero: bool = True) -> QuerySet:
    """contact_id and total over the window, one row per contact with at least one such event. A sum over
    events without amounts is NULL; it reads as 0 unless the caller needs no such guard."""
    per_contact = _window(node, now).values("contact_id")
    if node["measure"] == "count" or not null_sum_is_zero:
        return per_contact.annotate(total=_total(node))
    return per_contact.annotate(total=Coalesce(_total(node), _zero(node), output_field=_MONEY))


def _value(node: dict) -> int | Decimal:
    return int(node["value"]) if node["measure"] == "count" else Decimal(node["value"])


def _passing(node: dict, now: datetime) -> QuerySet | None:
    """contact_id of each contact whose total passes, or None when a total of 0 passes ("< 1", "≤ 100"):
    then contacts without such events pass too, and no query over events alone can list them."""
    if _PASSES[node["op"]](0, _value(node)):
        return None
    # No COALESCE: a total of 0 fails here, and so does a NULL sum (a window of events without amounts).
    per_contact = _totals(node, now, null_sum_is_zero=False)
    return per_contact.filter(**{f"total__{_LOOKUPS[node['op']]}": _value(node)}).values("contact_id")


def _own_total(node: dict, now: datetime) -> Coalesce:
    """The contact's own total over the window (0 without such events), as a subquery correlated on the
    contact: one probe of the (contact, occurred_at) index per contact."""
    mine = _window(node, now).filter(contact=OuterRef("pk")).values("contact_id")
    output = IntegerField() if node["measure"] == "count" else _MONEY
    total = Subquery(mine.annotate(total=_total(node)).values("total"), output_field=output)
    return Coalesce(total, _zero(node), output_field=output)


@register
class EventsCondition(Condition):
    type = "events"
    label = gettext_lazy("Events in a window")

    def validate(self, node: dict) -> dict:
        params = Params(node)
        kind = params.take("kind", lambda value: one_of(value, EventKind.values))
        measure = params.take("measure", lambda value: one_of(value, MEASURES))
        op = params.take("op", lambda value: one_of(value, COMPARISONS))
        digits, places = (9, 0) if measure == "count" else (12, 2)
        value = params.take("value", lambda v: decimal_text(v, digits=digits, places=places))
        days = params.take("days", lambda v: integer(v, low=1, high=MAX_WINDOW_DAYS))
        params.finish()
        return {"type": self.type, "kind": kind, "measure": measure, "op": op, "value": value, "days": days}

    def to_q(self, node: dict, *, now: datetime, among: Sequence[int] | None = None) -> Q:
        if among is not None:
            return Q(_COMPARE[node["op"]](_own_total(node, now), _value(node)))
        passing = _passing(node, now)
        if passing is None:
            passes = {f"total__{_LOOKUPS[node['op']]}": _value(node)}
            failing = _totals(node, now).exclude(**passes).values("contact_id")
            return ~Q(pk__in=failing)
        return Q(pk__in=passing.order_by("contact_id")[:_ALL_ROWS])

    def count_alone(self, node: dict, *, now: datetime) -> QuerySet | None:
        """The grouped window itself, when only contacts with events there pass (see base.Condition): one
        row per contact (GROUP BY contact_id), each a contact (Event.contact is a non-null foreign key)."""
        return _passing(node, now)

    def describe(self, node: dict) -> str:
        days = node.get("days", 0)
        words = {
            "kind": EventKind(node["kind"]).label
            if node.get("kind") in EventKind.values
            else node.get("kind"),
            "window": ngettext("in the last %(days)s day", "in the last %(days)s days", days)
            % {"days": days},
            "op": COMPARISONS.get(node.get("op"), node.get("op")),
            "value": node.get("value"),
        }
        if node.get("measure") == "sum":
            return _("amount of “%(kind)s” events %(window)s %(op)s %(value)s") % words
        return _("number of “%(kind)s” events %(window)s %(op)s %(value)s") % words
