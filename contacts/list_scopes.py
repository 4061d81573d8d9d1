"""Narrowing the contact list from apps above contacts, by a query parameter.

contacts cannot import the apps built on it, yet the list (and its export, which re-reads the list's query
in a worker) must understand "?segment=4". So such an app registers a scope at start-up (its
AppConfig.ready), and the list applies every registered scope it finds in the query:

    register_list_scope("segment", narrow)          # narrow(user, qs, raw_value) -> (qs, label)
    register_bulk_template("segments/_save_selection.html")   # an extra control in the bulk bar

`narrow` raises ScopeRejected(message) for a value the user may not use (unknown, not visible); the list then
shows the message and ignores the parameter, like any other bad filter.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from django.db.models import QuerySet

_bulk_templates: list[str] = []


def register_bulk_template(template_name: str) -> None:
    """A control another app adds to the list's bulk bar (segments: "save the selection as a list"). The
    template checks the user's permissions itself."""
    if template_name not in _bulk_templates:
        _bulk_templates.append(template_name)


def bulk_templates() -> list[str]:
    return list(_bulk_templates)


class ScopeRejected(ValueError):
    pass


Narrow = Callable[[object, QuerySet, str], tuple[QuerySet, str]]
_scopes: dict[str, Narrow] = {}


def register_list_scope(param: str, narrow: Narrow) -> None:
    _scopes[param] = narrow


@dataclass
class ScopedList:
    contacts: QuerySet
    active: dict[str, tuple[str, str]]  # param -> (raw value, label), for the page's chips and hidden inputs
    rejected: list[str]


def apply_list_scopes(user, contacts: QuerySet, params: Mapping[str, str]) -> ScopedList:
    active, rejected = {}, []
    for param, narrow in _scopes.items():
        raw = (params.get(param) or "").strip()
        if not raw:
            continue
        try:
            contacts, label = narrow(user, contacts, raw)
        except ScopeRejected as error:
            rejected.append(str(error))
            continue
        active[param] = (raw, label)
    return ScopedList(contacts, active, rejected)
