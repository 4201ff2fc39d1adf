"""The contracts of a search space: the JSON-serialisable ``ArchSpec``, the ``SearchSpace`` ABC,
and the registry of families (``@register_search_space("cnn")`` + ``create_search_space``).

A study stores ``ArchSpec.to_json()`` as a trial attr; any trial's model can be rebuilt from
that string alone (``search_spaces.build_model(ArchSpec.from_json(s))``). The registry is here
because ``ArchSpec.encode`` looks its family up in it.
"""

from __future__ import annotations

import importlib
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from search_spaces.errors import BadInputError, ConfigError, InvalidArchError

if TYPE_CHECKING:
    import optuna
    from torch import nn

_SPEC_KEYS = ("family", "in_channels", "num_classes", "image_size", "config")
# The largest image side a spec (and data.resolution) may have: 4096² float32 RGB images are
# 200 MB each, far beyond what a proxy search trains on; larger values are typos or hostile.
MAX_IMAGE_SIZE = 4096


def _json_normalise(config: Any) -> dict[str, Any]:
    """The config as plain JSON types (tuples become lists); TypeError if it is not JSON."""
    if not isinstance(config, dict):
        raise TypeError(f"ArchSpec.config must be a dict, got {type(config).__name__}")
    try:
        return json.loads(json.dumps(config, sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"ArchSpec.config must hold only JSON types: {exc}") from exc


@dataclass(frozen=True)
class ArchSpec:
    """One sampled architecture: the family plus its own hyper-parameters (JSON types only).

    ``config`` is normalised on construction (tuples -> lists, keys sorted on output), so a
    JSON round trip gives an equal spec. Hashable through its JSON text.
    """

    family: str
    in_channels: int
    num_classes: int
    image_size: int
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("in_channels", "num_classes", "image_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"ArchSpec.{key} must be an int, got {value!r}")
        if not 1 <= self.image_size <= MAX_IMAGE_SIZE:
            raise ValueError(
                f"ArchSpec.image_size must be in 1..{MAX_IMAGE_SIZE}, got {self.image_size}"
            )
        if not isinstance(self.family, str) or not self.family:
            raise TypeError(f"ArchSpec.family must be a non-empty str, got {self.family!r}")
        object.__setattr__(self, "config", _json_normalise(self.config))

    def __hash__(self) -> int:
        return hash(self.to_json())

    # -- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "image_size": self.image_size,
            "config": json.loads(json.dumps(self.config)),  # a copy the caller may mutate
        }

    @classmethod
    def from_dict(cls, data: Any) -> ArchSpec:
        """Parse a dict (e.g. a stored trial attr); BadInputError naming what is wrong."""
        if not isinstance(data, dict):
            raise BadInputError(f"arch spec must be a JSON object, got {type(data).__name__}")
        missing = [k for k in _SPEC_KEYS if k not in data]
        unknown = sorted(set(data) - set(_SPEC_KEYS))
        if missing or unknown:
            raise BadInputError(f"arch spec: missing keys {missing}, unknown keys {unknown}")
        try:
            return cls(**{k: data[k] for k in _SPEC_KEYS})
        except (TypeError, ValueError) as exc:
            raise BadInputError(f"arch spec: {exc}") from exc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise BadInputError(f"arch spec is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def encode(self) -> str:
        """Compact timm-style string (``cnn|ir_d2_k3_s2_e4_c32_se|relu``) via the family."""
        return get_search_space_class(self.family).encode(self)


class SearchSpace(ABC):
    """A family of architectures that an Optuna trial samples from.

    Contract (every implementation, checked by the shared tests):

    * ``name`` equals the registry name and every spec's ``family``.
    * ``sample`` draws only from fixed choice lists / int ranges set at construction, with
      every parameter name starting with ``prefix`` (e.g. ``"cnn."``) so several spaces can
      share one study. It never repairs an impossible combination: it returns the spec as
      sampled, and the caller runs ``validate`` before training.
    * ``validate`` raises ``InvalidArchError`` (:mod:`search_spaces.errors`, also
      ``nas.errors``) with a clear message for any spec that cannot be built (or is
      degenerate by the family's documented rules) and returns None otherwise. It depends
      on the spec alone, never on the constructor options.
    * ``build`` validates, then returns an ``nn.Module`` mapping ``(B, in_channels,
      image_size, image_size)`` to ``(B, num_classes)`` logits whose structure depends on the
      spec alone (parameter counts identical on every build); it is exportable with
      ``torch.export.export`` (no data-dependent Python control flow in ``forward``).
    * ``encode`` is a compact, human-readable one-line string of the spec.
    * Constructor options are keyword-only and bound the space; bad values raise
      ``ConfigError``, unknown names raise ``TypeError``.
    * ``params_for(spec)`` (optional: spaces that implement ``param_guess``) returns the trial
      parameters under which ``sample`` returns exactly ``spec``, so a known design can be
      enqueued as an ordinary trial; InvalidArchError when the spec is not in the space.
    """

    name: str = ""

    @abstractmethod
    def sample(
        self,
        trial: optuna.Trial,
        *,
        in_channels: int,
        num_classes: int,
        image_size: int,
        prefix: str = "",
    ) -> ArchSpec: ...

    @abstractmethod
    def validate(self, spec: ArchSpec) -> None: ...

    @abstractmethod
    def build(self, spec: ArchSpec) -> nn.Module: ...

    @classmethod
    @abstractmethod
    def encode(cls, spec: ArchSpec) -> str: ...

    def param_guess(self, spec: ArchSpec) -> dict[str, Any]:
        """Parameter values (without prefix) that should make ``sample`` return ``spec``;
        :meth:`params_for` checks them. Spaces that support enqueuing designs override it."""
        raise InvalidArchError(f"the {self.name!r} space cannot map a spec back to parameters")

    def params_for(self, spec: ArchSpec, *, prefix: str = "") -> dict[str, Any]:
        """The trial parameters (with ``prefix``) under which this space samples ``spec``."""
        from search_spaces._replay import params_for

        return params_for(self, spec, prefix=prefix)


def check_choices(
    option: str, values: Any, allowed: tuple[Any, ...] | None = None, *, integer: bool = False
) -> tuple:
    """A constructor option as a non-empty tuple of distinct choices (ConfigError otherwise).

    With ``allowed`` every choice must be one of it; without, every choice must be a positive
    finite number (an int if ``integer``).
    """
    if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
        raise ConfigError(f"search option {option} must be a list, got {values!r}")
    choices = tuple(values)
    if not choices or len(set(choices)) != len(choices):
        raise ConfigError(f"search option {option} must be a non-empty list without repeats")
    kinds = int if integer else int | float
    for value in choices:
        if allowed is not None:
            if value not in allowed or type(value) is not type(allowed[0]):
                raise ConfigError(
                    f"search option {option}: {value!r} is not one of {list(allowed)}"
                )
        elif isinstance(value, bool) or not isinstance(value, kinds) or not (0 < value < math.inf):
            what = "positive int" if integer else "positive number"
            raise ConfigError(f"search option {option}: {value!r} must be a {what}")
    return choices


# -- the registry of families ----------------------------------------------------------------
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
