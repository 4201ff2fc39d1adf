"""Carbon budget of a study: what the search has emitted so far, and stopping at a limit.

What counts is ``search_kgco2e`` of every trial that ended (complete, pruned or failed: the
search paid for all of them), read from the storage, so several workers sharing a study
share one budget. Study user attrs (read by ``econas pareto``, the report and the dashboard):

- ``carbon_budget_kgco2e``: the limit; ``carbon_budget_used_kgco2e``: spent so far;
- ``carbon_budget_breakdown``: JSON of where it went (by trial state, family and phase);
- ``carbon_budget_stop_reason``: set once the study was stopped for the budget.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import optuna

__all__ = [
    "BUDGET_ATTR",
    "BREAKDOWN_ATTR",
    "STOP_REASON_ATTR",
    "USED_ATTR",
    "BudgetUsage",
    "CarbonBudgetCallback",
    "budget_usage",
    "record_usage",
]

log = logging.getLogger(__name__)

BUDGET_ATTR = "carbon_budget_kgco2e"
USED_ATTR = "carbon_budget_used_kgco2e"
BREAKDOWN_ATTR = "carbon_budget_breakdown"
STOP_REASON_ATTR = "carbon_budget_stop_reason"

_ENDED = {
    optuna.trial.TrialState.COMPLETE: "complete",
    optuna.trial.TrialState.PRUNED: "pruned",
    optuna.trial.TrialState.FAIL: "failed",
}


def _add(table: dict[str, float], key: str, kg: float) -> None:
    table[key] = table.get(key, 0.0) + kg


@dataclass
class BudgetUsage:
    """kgCO2e the search emitted over the ended trials, and where it went."""

    used_kgco2e: float = 0.0
    trials: int = 0
    by_state: dict[str, float] = field(default_factory=dict)
    by_family: dict[str, float] = field(default_factory=dict)
    by_phase: dict[str, float] = field(default_factory=dict)
    complete_kgco2e: list[float] = field(default_factory=list)

    @property
    def per_trial_kgco2e(self) -> float | None:
        """Mean cost of a complete trial (None before the first one)."""
        if not self.complete_kgco2e:
            return None
        return sum(self.complete_kgco2e) / len(self.complete_kgco2e)

    def breakdown(self) -> dict[str, Any]:
        return {
            "used_kgco2e": self.used_kgco2e,
            "trials": self.trials,
            "by_state": self.by_state,
            "by_family": self.by_family,
            "by_phase": self.by_phase,
            "per_complete_trial_kgco2e": self.per_trial_kgco2e,
        }


def budget_usage(trials: Iterable[optuna.trial.FrozenTrial]) -> BudgetUsage:
    """Sum ``search_kgco2e`` over ended trials; split it by state, family and phase.

    A trial's phases (``<phase>_energy_kwh`` for each name in ``phases``, plus the inference
    measurement) share its kgCO2e in proportion to their energy; what no phase accounts for
    is listed as ``other``.
    """
    usage = BudgetUsage()
    for t in trials:
        state = _ENDED.get(t.state)
        if state is None:
            continue
        a = t.user_attrs
        kg = float(a.get("search_kgco2e") or 0.0)
        usage.trials += 1
        usage.used_kgco2e += kg
        _add(usage.by_state, state, kg)
        _add(usage.by_family, str(a.get("family", "unknown")), kg)
        if state == "complete" and not a.get("reused"):  # a reused trial costs nothing
            usage.complete_kgco2e.append(kg)
        kwh = float(a.get("search_energy_kwh") or 0.0)
        if kg <= 0 or kwh <= 0:
            continue
        kg_per_kwh = kg / kwh
        left = kg
        names = [p for p in str(a.get("phases", "")).split(",") if p]
        parts = [(p, a.get(f"{p}_energy_kwh")) for p in names]
        parts.append(("inference", a.get("inference_energy_kwh_window")))
        for phase, phase_kwh in parts:
            if phase_kwh:
                share = float(phase_kwh) * kg_per_kwh
                _add(usage.by_phase, phase, share)
                left -= share
        if left > 1e-9 * kg:
            _add(usage.by_phase, "other", left)
    return usage


def record_usage(study: optuna.Study, max_kgco2e: float) -> BudgetUsage:
    """Compute the usage from the storage and store it in the study's user attrs."""
    usage = budget_usage(study.get_trials(deepcopy=False))
    study.set_user_attr(BUDGET_ATTR, max_kgco2e)
    study.set_user_attr(USED_ATTR, usage.used_kgco2e)
    study.set_user_attr(BREAKDOWN_ATTR, json.dumps(usage.breakdown(), sort_keys=True))
    return usage


class CarbonBudgetCallback:
    """Optuna callback: after each trial, stop the study once its budget is spent.

    It stops when the search has emitted ``max_kgco2e`` or more, and also (``lookahead``)
    when what is left is less than a complete trial costs on average, so that the next
    trial would be expected to overshoot. Either way the study ends within one trial of
    the budget.
    """

    def __init__(self, *, max_kgco2e: float, lookahead: bool = True) -> None:
        self.max_kgco2e = float(max_kgco2e)
        self.lookahead = lookahead

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        usage = record_usage(study, self.max_kgco2e)
        used, cap = usage.used_kgco2e, self.max_kgco2e
        reason = None
        if used >= cap:
            reason = (
                f"carbon budget reached: {used:.3e} of {cap:.3e} kgCO2e after trial {trial.number}"
            )
        elif self.lookahead and (per := usage.per_trial_kgco2e) is not None and used + per > cap:
            reason = (
                f"carbon budget nearly spent: {used:.3e} of {cap:.3e} kgCO2e after trial "
                f"{trial.number}; a trial costs {per:.3e} on average, more than the "
                f"{cap - used:.3e} left"
            )
        if reason is not None:
            if study.user_attrs.get(STOP_REASON_ATTR) is None:
                study.set_user_attr(STOP_REASON_ATTR, reason)
            log.warning("econas: %s; stopping the study", reason)
            study.stop()


def spent_reason(used_kgco2e: float, max_kgco2e: float) -> str:
    return f"carbon budget spent: {used_kgco2e:.3e} of {max_kgco2e:.3e} kgCO2e"
