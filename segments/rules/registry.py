"""The condition types by name. The compiler, the validator and the describer look types up here and
never name one, so a new type plugs in by defining a class with @register."""

from typing import TypeVar

from .base import Condition

C = TypeVar("C", bound=type[Condition])

GROUP = "group"  # the one node type that is not a condition
_registry: dict[str, Condition] = {}


def register(cls: C) -> C:
    """Class decorator: make `cls.type` a condition type. A second class for a taken name is a
    programming error (two apps fighting over a name), so it fails loudly at import."""
    name = getattr(cls, "type", None)
    if not isinstance(name, str) or not name or name == GROUP:
        raise ValueError(f"{cls.__name__} needs a condition type name other than {GROUP!r}")
    if name in _registry and type(_registry[name]) is not cls:
        raise ValueError(f"condition type {name!r} is already registered by {type(_registry[name]).__name__}")
    _registry[name] = cls()
    return cls


def unregister(name: str) -> None:
    """Remove a type (tests that plug in a throwaway type clean up with this)."""
    _registry.pop(name, None)


def get_condition(name: object) -> Condition | None:
    return _registry.get(name) if isinstance(name, str) else None


def condition_types() -> dict[str, Condition]:
    """Every registered type by name, in registration order (the builder's menu)."""
    return dict(_registry)
