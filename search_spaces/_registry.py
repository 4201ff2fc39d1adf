"""Registry of search-space families: ``@register_search_space("cnn")`` + ``create_search_space``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from nas.errors import BadInputError

if TYPE_CHECKING:
    from torch import nn

    from search_spaces.spec import ArchSpec, SearchSpace

_SpaceT = TypeVar("_SpaceT", bound="type[SearchSpace]")
_REGISTRY: dict[str, type[SearchSpace]] = {}


def register_search_space(name: str) -> Callable[[_SpaceT], _SpaceT]:
    """Class decorator registering a ``SearchSpace`` subclass under ``name`` (sets ``cls.name``)."""

    def decorator(cls: _SpaceT) -> _SpaceT:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"search space {name!r} is already registered by {_REGISTRY[name]}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def list_search_spaces() -> list[str]:
    """Names of the registered families, sorted."""
    return sorted(_REGISTRY)


def get_search_space_class(name: str) -> type[SearchSpace]:
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
