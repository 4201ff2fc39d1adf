"""Registry of search-space families: ``@register_search_space("cnn")`` + ``create_search_space``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from nas.errors import BadInputError

if TYPE_CHECKING:
    from torch import nn

    from search_spaces.spec import ArchSpec, SearchSpace

_SpaceT = TypeVar("_SpaceT", bound="type[SearchSpace]")
_REGISTRY: dict[str, type[SearchSpace]] = {}
# Built-in families, imported on first use: naming them costs no torch import (reading a
# config checks its space names; `econas pareto` must stay cheap).
_BUILTIN: dict[str, str] = {"cnn": "search_spaces.cnn", "vit": "search_spaces.vit"}


def register_search_space(name: str) -> Callable[[_SpaceT], _SpaceT]:
    """Class decorator registering a ``SearchSpace`` subclass under ``name`` (sets ``cls.name``)."""

    def decorator(cls: _SpaceT) -> _SpaceT:
        builtin = _BUILTIN.get(name)
        if builtin is not None and cls.__module__ != builtin:
            raise ValueError(f"search space {name!r} is already registered by {builtin}")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"search space {name!r} is already registered by {_REGISTRY[name]}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def list_search_spaces() -> list[str]:
    """Names of the registered families (built-in ones included), sorted."""
    return sorted(set(_REGISTRY) | set(_BUILTIN))


def get_search_space_class(name: str) -> type[SearchSpace]:
    if name not in _REGISTRY and name in _BUILTIN:
        module = importlib.import_module(_BUILTIN[name])  # registers it on first import
        for value in vars(module).values():  # imported earlier into another registry copy
            if isinstance(value, type) and getattr(value, "name", None) == name:
                _REGISTRY.setdefault(name, value)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BadInputError(
            f"unknown search space {name!r}; known: {list_search_spaces()}"
        ) from None


def create_search_space(name: str, **options: Any) -> SearchSpace:
    """A configured space; unknown ``name`` -> BadInputError, unknown option -> TypeError."""
    return get_search_space_class(name)(**options)


def build_model(spec: ArchSpec) -> nn.Module:
    """Rebuild the model of ``spec`` from the spec alone: look up its family, validate, build.

    Raises BadInputError for an unknown family and InvalidArchError for an impossible spec.
    """
    space = create_search_space(spec.family)
    space.validate(spec)
    return space.build(spec)
