"""Reading a trial's record: typed access to its attrs, migrated from earlier record versions.

``pareto``, ``report``, ``export``, the carbon label, lifecycle, reuse and the carbon budget
all read trials through :class:`TrialRecord`. A study written by an earlier release (no
``record_version``, version 1) is migrated on read; one written by a newer release is refused
with one clear line (:class:`~nas.errors.BadInputError`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import optuna

from nas.errors import BadInputError
from nas.record._fields import (
    RECORD_VERSION,
    Compression,
    Efficiency,
    Field,
    Final,
    Inference,
    TrialAttrs,
    final_key,
    phase_key,
)
from nas.record._phases import METERED_FRACTION_FLAG

_S = optuna.trial.TrialState


@dataclass(frozen=True)
class PhaseEnergy:
    """One phase of a trial as stored."""

    name: str
    energy_kwh: float
    duration_s: float | None
    kind: str | None
    source: str | None


def finite(value: Any) -> float | None:
    """``value`` as a finite float, else None (missing, text, NaN, infinite)."""
    if isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


class TrialRecord:
    """A trial's stored attrs, with typed accessors; ``get(field)`` reads any other one."""

    def __init__(
        self,
        attrs: Mapping[str, Any],
        *,
        number: int = -1,
        state: optuna.trial.TrialState = _S.COMPLETE,
        values: list[float] | None = None,
        final: Mapping[str, Any] | None = None,
    ) -> None:
        raw = attrs.get(TrialAttrs.record_version, 1)
        version = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
        if version is None or version < 1:
            raise BadInputError(f"trial {number}: record_version {raw!r} is not a version")
        if version > RECORD_VERSION:
            raise BadInputError(
                f"trial {number} was written by a newer econas (record version {version}, "
                f"this one reads up to {RECORD_VERSION}); upgrade econas to read this study"
            )
        self.version = version
        self.number = number
        self.state = state
        self.values = values
        self.attrs: dict[str, Any] = _migrate(dict(attrs), version)
        self.final: dict[str, Any] = dict(final or {})
        fv = self.final.get(Final.record_version, RECORD_VERSION)
        if isinstance(fv, int) and fv > RECORD_VERSION:
            raise BadInputError(
                f"trial {number}'s final training was written by a newer econas (record version "
                f"{fv}); upgrade econas to read this study"
            )

    @classmethod
    def of(cls, trial: optuna.trial.FrozenTrial, study: optuna.Study | None = None) -> TrialRecord:
        """The trial's record; with ``study``, merged with its final training (if any)."""
        final = final_of(study, trial.number) if study is not None else None
        return cls(
            trial.user_attrs,
            number=trial.number,
            state=trial.state,
            values=trial.values,
            final=final,
        )

    def get(self, field: Field | str, default: Any = None) -> Any:
        return self.attrs.get(field, default)

    def num(self, field: Field | str) -> float | None:
        """A numeric attr as a finite float, else None."""
        return finite(self.attrs.get(field))

    def __contains__(self, field: object) -> bool:
        return field in self.attrs

    # -- what most readers want -------------------------------------------------------------
    @property
    def complete(self) -> bool:
        return self.state == _S.COMPLETE

    @property
    def accuracy(self) -> float | None:
        return self.num(TrialAttrs.accuracy)

    @property
    def test_accuracy(self) -> float | None:
        """Accuracy on the test slice (reporting only, never an objective)."""
        return self.num(TrialAttrs.test_accuracy)

    @property
    def kgco2e(self) -> float | None:
        return self.num(TrialAttrs.kgco2e)

    @property
    def energy_kind(self) -> str | None:
        """``measured``, or ``estimated`` when any phase is; None without a meter."""
        kind = self.attrs.get(TrialAttrs.energy_kind)
        return str(kind) if kind else None

    @property
    def energy_kwh(self) -> float | None:
        return self.num(TrialAttrs.energy_kwh)

    @property
    def num_classes(self) -> int | None:
        """Classes the model predicts (from its stored ``arch_spec``), None when unknown."""
        return num_classes(self.attrs)

    @property
    def chance_accuracy(self) -> float | None:
        """The accuracy of guessing uniformly: 1 / num_classes (None when unknown)."""
        n = self.num_classes
        return 1.0 / n if n else None

    @property
    def at_or_below_chance(self) -> bool:
        """Validation accuracy no better than guessing (:attr:`chance_accuracy`): the model
        learnt nothing, however cheap it is."""
        return below_chance(self.accuracy, self.chance_accuracy)

    @property
    def search_energy_kwh(self) -> float:
        return self.num(TrialAttrs.search_energy_kwh) or 0.0

    @property
    def search_kgco2e(self) -> float:
        return self.num(TrialAttrs.search_kgco2e) or 0.0

    @property
    def family(self) -> str:
        return str(self.attrs.get(TrialAttrs.family, "unknown"))

    @property
    def quantization(self) -> str:
        return str(self.attrs.get(Compression.quantization, "fp32"))

    @property
    def metered_fraction(self) -> float | None:
        return self.num(TrialAttrs.metered_fraction)

    @property
    def under_metered(self) -> bool:
        """Less than :data:`METERED_FRACTION_FLAG` of the trial's time ran in a phase window."""
        mf = self.metered_fraction
        return mf is not None and mf < METERED_FRACTION_FLAG

    @property
    def reused(self) -> bool:
        return bool(self.attrs.get(Efficiency.reused))

    @property
    def reused_from(self) -> tuple[str | None, int] | None:
        """(study, trial) this trial's result was reused from, or None."""
        if not self.reused:
            return None
        number = self.attrs.get(Efficiency.reused_from_trial)
        if not isinstance(number, int):
            return None
        return self.attrs.get(Efficiency.reused_from_study), number

    @property
    def phases(self) -> list[PhaseEnergy]:
        out = []
        for name in [p for p in str(self.attrs.get(TrialAttrs.phases, "")).split(",") if p]:
            kwh = finite(self.attrs.get(phase_key(name, "energy_kwh")))
            if kwh is None:
                continue
            out.append(
                PhaseEnergy(
                    name=name,
                    energy_kwh=kwh,
                    duration_s=finite(self.attrs.get(phase_key(name, "duration_s"))),
                    kind=self.attrs.get(phase_key(name, "energy_kind")),
                    source=self.attrs.get(phase_key(name, "energy_source")),
                )
            )
        return out

    @property
    def meter(self) -> str | None:
        """``"estimate (estimated) on AMD EPYC (2 logical cores)"``, None without a meter."""
        src = self.attrs.get(TrialAttrs.energy_source)
        if not src:
            return None
        kind = self.attrs.get(TrialAttrs.energy_kind, "?")
        return f"{src} ({kind}) on {self.attrs.get(TrialAttrs.hardware, '?')}"

    # -- the final training (econas train) -----------------------------------------------
    @property
    def has_final(self) -> bool:
        return bool(self.final.get(Final.weights_artifact_id))

    def final_num(self, field: Field | str) -> float | None:
        return finite(self.final.get(field))

    def json(self, field: Field | str) -> Any:
        """A JSON-valued attr decoded (None when missing or not JSON)."""
        raw = self.attrs.get(field)
        if not isinstance(raw, str):
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None


def num_classes(attrs: Mapping[str, Any]) -> int | None:
    """``num_classes`` of a trial's stored ``arch_spec`` JSON; None when missing or bad."""
    raw = attrs.get(TrialAttrs.arch_spec)
    if not isinstance(raw, str):
        return None
    try:
        n = json.loads(raw).get("num_classes")
    except (ValueError, AttributeError):
        return None
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 2 else None


def below_chance(accuracy: float | None, chance: float | None) -> bool:
    """``accuracy`` is at or below ``chance`` (a small tolerance for float noise)."""
    return accuracy is not None and chance is not None and accuracy <= chance + 1e-9


def records(
    trials: Iterable[optuna.trial.FrozenTrial],
    *,
    states: tuple[Any, ...] | None = None,
    study: optuna.Study | None = None,
) -> list[TrialRecord]:
    """Records of ``trials`` (optionally only those in ``states``; with ``study``, merged with
    their final trainings), in trial order."""
    study_attrs = study.user_attrs if study is not None else {}  # one read, not one per trial
    out = [
        TrialRecord(
            t.user_attrs,
            number=t.number,
            state=t.state,
            values=t.values,
            final=_final(study_attrs, t.number),
        )
        for t in trials
        if states is None or t.state in states
    ]
    return sorted(out, key=lambda r: r.number)


def final_of(study: optuna.Study, number: int) -> dict[str, Any] | None:
    """Trial ``number``'s final training as stored in the study (None without one)."""
    return _final(study.user_attrs, number)


def _final(study_attrs: Mapping[str, Any], number: int) -> dict[str, Any] | None:
    raw = study_attrs.get(final_key(number))
    if not isinstance(raw, str):
        return None
    try:
        out = json.loads(raw)
    except ValueError:
        raise BadInputError(f"study attr {final_key(number)} is not JSON") from None
    if not isinstance(out, dict):
        raise BadInputError(f"study attr {final_key(number)} is not a JSON object")
    return out


def _migrate(attrs: dict[str, Any], version: int) -> dict[str, Any]:
    """Bring version-1 attrs to the current names: the inference window becomes a phase."""
    if version >= 2:
        return attrs
    kwh = finite(attrs.get(Inference.energy_kwh_window))
    names = [p for p in str(attrs.get(TrialAttrs.phases, "")).split(",") if p]
    if kwh is not None and "inference" not in names:
        names.append("inference")
        attrs[phase_key("inference", "energy_kwh")] = kwh
        attrs[phase_key("inference", "duration_s")] = attrs.get(Inference.window_duration_s)
        attrs[phase_key("inference", "energy_kind")] = attrs.get(Inference.energy_kind)
        attrs[phase_key("inference", "energy_source")] = attrs.get(Inference.energy_source)
        attrs[TrialAttrs.phases] = ",".join(names)
    return attrs
