"""What a report reads from a study's storage: trials as points, fronts, the search's cost."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna

from nas.errors import BadInputError
from nas.pareto import front_indices
from nas.record import (
    Compression,
    Efficiency,
    Provenance,
    StudyAttrs,
    TrialAttrs,
    TrialRecord,
    below_chance,
    finite,
    num_classes,
)

COMPRESSION_KEYS = (
    Compression.prune_ratio,
    Compression.quantization,
    Compression.precision,
    Compression.distill,
)
_COMPLETE = optuna.trial.TrialState.COMPLETE


@dataclass(frozen=True)
class Point:
    """One completed trial on the eco-performance plane (``attrs``: its stored record)."""

    trial: int
    accuracy: float
    kgco2e: float
    attrs: dict[str, Any]

    @property
    def label(self) -> str:
        """Architecture plus compression settings, for hover text and tables."""
        a = self.attrs
        parts = [f"trial {self.trial}", str(a.get(TrialAttrs.arch, a.get(TrialAttrs.family, "?")))]
        extra = [f"{k}={a[k]}" for k in COMPRESSION_KEYS if k in a]
        return " | ".join(parts + extra)

    @property
    def chance_accuracy(self) -> float | None:
        """1 / the number of classes the model predicts (None when unknown)."""
        n = num_classes(self.attrs)
        return 1.0 / n if n else None

    @property
    def at_or_below_chance(self) -> bool:
        return below_chance(self.accuracy, self.chance_accuracy)


def points(
    trials: Sequence[optuna.trial.FrozenTrial], cost_key: str = TrialAttrs.kgco2e
) -> list[Point]:
    """Completed trials with a finite accuracy and ``cost_key`` attr, in trial order.

    A trial that reused the result of another of these trials (same configuration) is that
    trial's finding, not a second one: it is left out (``econas pareto`` lists it with its
    source).
    """
    recs = [TrialRecord.of(t) for t in sorted(trials, key=lambda t: t.number)]
    recs = [r for r in recs if r.state == _COMPLETE]
    sources = {r.get(Efficiency.fingerprint) for r in recs if not r.reused}
    out: list[Point] = []
    for rec in recs:
        if rec.reused and rec.get(Efficiency.fingerprint) in sources:
            continue
        acc, kg = rec.accuracy, rec.num(cost_key)
        if acc is not None and kg is not None:
            out.append(Point(trial=rec.number, accuracy=acc, kgco2e=kg, attrs=dict(rec.attrs)))
    return out


def pareto_front(pts: Sequence[Point]) -> list[Point]:
    """Non-dominated points (accuracy maximised, kgCO2e minimised), cheapest first."""
    idx = front_indices([(p.accuracy, p.kgco2e) for p in pts], (True, False))
    return sorted((pts[i] for i in idx), key=lambda p: (p.kgco2e, -p.accuracy, p.trial))


@dataclass
class SearchCost:
    """What the whole search paid (every ended trial, failed and pruned included)."""

    kgco2e: float = 0.0
    energy_kwh: float = 0.0
    trials_by_state: dict[str, int] = field(default_factory=dict)
    meters: list[str] = field(default_factory=list)  # "estimate (estimated) on <hardware>"
    intensities: list[str] = field(default_factory=list)  # "56 gCO2e/kWh from codecarbon..."
    breakdown: dict[str, Any] = field(default_factory=dict)  # by state, family, phase
    cpu_isa: list[str] = field(default_factory=list)  # instruction sets the trials ran on
    metered_fraction: tuple[float, float] | None = None  # lowest and highest over the trials
    under_metered: list[int] = field(default_factory=list)  # trials below the flag
    calibration_energy_kwh: float = 0.0  # the study's calibration (in energy_kwh)
    calibration_kgco2e: float = 0.0  # ... and in kgco2e

    @property
    def kinds(self) -> set[str]:
        return {m.split("(")[1].split(")")[0] for m in self.meters if "(" in m}


def search_cost(
    trials: Sequence[optuna.trial.FrozenTrial], *, study_attrs: dict[str, Any] | None = None
) -> SearchCost:
    """Sum ``search_kgco2e``/``search_energy_kwh`` over all trials, with meter provenance,
    plus the study's calibration (``study_attrs``: the study's user attrs), counted once."""
    from nas.scheduling import budget_usage

    cost = SearchCost()
    a = study_attrs or {}
    cost.calibration_energy_kwh = finite(a.get(StudyAttrs.calibration_energy_kwh)) or 0.0
    cost.calibration_kgco2e = finite(a.get(StudyAttrs.calibration_kgco2e)) or 0.0
    cost.energy_kwh += cost.calibration_energy_kwh
    cost.kgco2e += cost.calibration_kgco2e
    meters: set[str] = set()
    intens: set[str] = set()
    isas: set[str] = set()
    fractions: list[float] = []
    for t in trials:
        rec = TrialRecord.of(t)
        state = t.state.name.lower()
        cost.trials_by_state[state] = cost.trials_by_state.get(state, 0) + 1
        cost.kgco2e += rec.search_kgco2e
        cost.energy_kwh += rec.search_energy_kwh
        if rec.meter:
            meters.add(rec.meter)
        g = rec.num(TrialAttrs.intensity_g_per_kwh)
        if g is not None:
            intens.add(f"{g:.4g} gCO2e/kWh from {rec.get(TrialAttrs.intensity_source, '?')}")
        if rec.get(Provenance.cpu_isa):
            isas.add(str(rec.get(Provenance.cpu_isa)))
        if rec.metered_fraction is not None:
            fractions.append(rec.metered_fraction)
            if rec.under_metered:
                cost.under_metered.append(rec.number)
    cost.meters, cost.intensities, cost.cpu_isa = sorted(meters), sorted(intens), sorted(isas)
    cost.metered_fraction = (min(fractions), max(fractions)) if fractions else None
    cost.breakdown = budget_usage(trials).breakdown()
    return cost


@dataclass(frozen=True)
class Budget:
    """The study's carbon budget (study user attrs written by nas.scheduling)."""

    limit_kgco2e: float
    used_kgco2e: float | None
    stop_reason: str | None
    breakdown: dict[str, Any]


def carbon_budget(study: optuna.Study) -> Budget | None:
    a = study.user_attrs
    limit = finite(a.get(StudyAttrs.budget_kgco2e))
    if limit is None:
        return None
    try:
        breakdown = json.loads(a.get(StudyAttrs.budget_breakdown) or "{}")
    except (TypeError, ValueError):
        breakdown = {}
    return Budget(
        limit_kgco2e=limit,
        used_kgco2e=finite(a.get(StudyAttrs.budget_used_kgco2e)),
        stop_reason=a.get(StudyAttrs.budget_stop_reason) or None,
        breakdown=breakdown if isinstance(breakdown, dict) else {},
    )


def check_cap(cap_kgco2e: float | None) -> None:
    if cap_kgco2e is not None and not (math.isfinite(cap_kgco2e) and cap_kgco2e > 0):
        raise BadInputError(f"--carbon-cap must be a positive number of kgCO2e, got {cap_kgco2e}")
