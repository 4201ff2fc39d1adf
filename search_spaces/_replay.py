"""The trial parameters that make a space sample a given spec (to enqueue a known design).

:func:`params_for` runs the space's own ``sample`` against :class:`ReplayTrial`, which answers
every question from a guess of the parameters (the space's ``param_guess``) and refuses a
value outside the choices it is asked with, then checks that the sampled spec is the spec.
The parameters returned are exactly those ``sample`` asked for, so an Optuna study can
``enqueue_trial`` them and the trial is an ordinary sample of the space.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from search_spaces.errors import InvalidArchError

# ``space`` is a search_spaces.spec.SearchSpace and ``spec`` an ArchSpec; not imported here
# (spec.py imports this module: the file-level import graph stays acyclic).


def _same(value: Any, choice: Any) -> bool:
    return value == choice and type(value) is type(choice)


class ReplayTrial:
    """Stands in for ``optuna.Trial`` in ``SearchSpace.sample``: answers from ``params``."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.given = dict(params)
        self.params: dict[str, Any] = {}

    def _value(self, name: str) -> Any:
        if name not in self.given:
            raise InvalidArchError(f"the space asks for {name!r}, which the spec does not give")
        return self.given[name]

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        value = self._value(name)
        if not any(_same(value, c) for c in choices):
            raise InvalidArchError(f"{name} = {value!r} is not one of the space's {list(choices)}")
        self.params[name] = value
        return value

    def suggest_int(self, name: str, low: int, high: int, **_: Any) -> int:
        value = self._value(name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidArchError(f"{name} = {value!r} is outside the space's {low}..{high}")
        self.params[name] = value
        return value


def params_for(space: Any, spec: Any, *, prefix: str = "") -> dict[str, Any]:
    """The parameters (names with ``prefix``) under which ``space`` samples ``spec``;
    InvalidArchError naming why when the spec is not in the space as configured."""
    if spec.family != space.name:
        raise InvalidArchError(f"spec family {spec.family!r} is not {space.name!r}")
    space.validate(spec)
    guess = {prefix + k: v for k, v in space.param_guess(spec).items()}
    trial = ReplayTrial(guess)
    sampled = space.sample(
        trial,  # type: ignore[arg-type]  # duck-typed: only suggest_* are used
        in_channels=spec.in_channels,
        num_classes=spec.num_classes,
        image_size=spec.image_size,
        prefix=prefix,
    )
    if sampled.to_dict() != spec.to_dict():
        raise InvalidArchError(
            f"{spec.encode()} is not in this {space.name} space (it samples {sampled.encode()})"
        )
    return trial.params
