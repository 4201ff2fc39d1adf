"""What a report reads from a study's storage: trials as points, fronts, the search's cost."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna

from nas.errors import BadInputError

COMPRESSION_KEYS = ("prune_ratio", "quantization", "precision", "distill")
_COMPLETE = optuna.trial.TrialState.COMPLETE


@dataclass(frozen=True)
class Point:
    """One completed trial on the eco-performance plane."""

    trial: int
    accuracy: float
    kgco2e: float
    attrs: dict[str, Any]

    @property
    def label(self) -> str:
        """Architecture plus compression settings, for hover text and tables."""
        a = self.attrs
        parts = [f"trial {self.trial}", str(a.get("arch", a.get("family", "?")))]
        extra = [f"{k}={a[k]}" for k in COMPRESSION_KEYS if k in a]
        return " | ".join(parts + extra)


def _finite(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def points(trials: Sequence[optuna.trial.FrozenTrial], cost_key: str = "kgco2e") -> list[Point]:
    """Completed trials with a finite accuracy and ``cost_key`` attr, in trial order."""
    out: list[Point] = []
    for t in sorted(trials, key=lambda t: t.number):
        if t.state != _COMPLETE:
            continue
        acc, kg = _finite(t.user_attrs.get("accuracy")), _finite(t.user_attrs.get(cost_key))
        if acc is not None and kg is not None:
            out.append(Point(trial=t.number, accuracy=acc, kgco2e=kg, attrs=dict(t.user_attrs)))
    return out


def pareto_front(pts: Sequence[Point]) -> list[Point]:
    """Non-dominated points (accuracy maximised, kgCO2e minimised), cheapest first."""
    front = [
        p
        for p in pts
        if not any(
            q.accuracy >= p.accuracy
            and q.kgco2e <= p.kgco2e
            and (q.accuracy > p.accuracy or q.kgco2e < p.kgco2e)
            for q in pts
        )
    ]
    return sorted(front, key=lambda p: (p.kgco2e, -p.accuracy, p.trial))


@dataclass
class SearchCost:
    """What the whole search paid (every ended trial, failed and pruned included)."""

    kgco2e: float = 0.0
    energy_kwh: float = 0.0
    trials_by_state: dict[str, int] = field(default_factory=dict)
    meters: list[str] = field(default_factory=list)  # "estimate (estimated) on <hardware>"
    intensities: list[str] = field(default_factory=list)  # "56 gCO2e/kWh from codecarbon..."
    breakdown: dict[str, Any] = field(default_factory=dict)  # by state, family, phase

    @property
    def kinds(self) -> set[str]:
        return {m.split("(")[1].split(")")[0] for m in self.meters if "(" in m}


def search_cost(trials: Sequence[optuna.trial.FrozenTrial]) -> SearchCost:
    """Sum ``search_kgco2e``/``search_energy_kwh`` over all trials, with meter provenance."""
    from nas.scheduling._budget import budget_usage

    cost = SearchCost()
    meters: set[str] = set()
    intens: set[str] = set()
    for t in trials:
        a = t.user_attrs
        state = t.state.name.lower()
        cost.trials_by_state[state] = cost.trials_by_state.get(state, 0) + 1
        cost.kgco2e += _finite(a.get("search_kgco2e")) or 0.0
        cost.energy_kwh += _finite(a.get("search_energy_kwh")) or 0.0
        if a.get("energy_source"):
            meters.add(
                f"{a['energy_source']} ({a.get('energy_kind', '?')}) on {a.get('hardware', '?')}"
            )
        g = _finite(a.get("intensity_g_per_kwh"))
        if g is not None:
            intens.add(f"{g:.4g} gCO2e/kWh from {a.get('intensity_source', '?')}")
    cost.meters, cost.intensities = sorted(meters), sorted(intens)
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
    limit = _finite(a.get("carbon_budget_kgco2e"))
    if limit is None:
        return None
    try:
        breakdown = json.loads(a.get("carbon_budget_breakdown") or "{}")
    except (TypeError, ValueError):
        breakdown = {}
    return Budget(
        limit_kgco2e=limit,
        used_kgco2e=_finite(a.get("carbon_budget_used_kgco2e")),
        stop_reason=a.get("carbon_budget_stop_reason") or None,
        breakdown=breakdown if isinstance(breakdown, dict) else {},
    )


def check_cap(cap_kgco2e: float | None) -> None:
    if cap_kgco2e is not None and not (math.isfinite(cap_kgco2e) and cap_kgco2e > 0):
        raise BadInputError(f"--carbon-cap must be a positive number of kgCO2e, got {cap_kgco2e}")
