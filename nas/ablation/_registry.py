"""The rows of the table: a small registry, run in registration order (``baseline`` first)."""

from __future__ import annotations

from collections.abc import Callable

from nas.compression.techniques import AblationContext
from nas.trial import Deployed

TechniqueFn = Callable[[AblationContext], Deployed]
_TECHNIQUES: dict[str, TechniqueFn] = {}


def register_technique(name: str, fn: TechniqueFn, *, replace: bool = False) -> None:
    """Add a row to the table (rows run in registration order; ``baseline`` is first)."""
    if name in _TECHNIQUES and not replace:
        raise ValueError(f"technique {name!r} is already registered")
    _TECHNIQUES[name] = fn


def list_techniques() -> list[str]:
    return list(_TECHNIQUES)


def techniques() -> dict[str, TechniqueFn]:
    """The registry itself (name -> row function), in order."""
    return _TECHNIQUES
