"""Carbon budget of a study: what the search has emitted so far, and stopping at a limit.

What counts is ``search_kgco2e`` of every trial that ended (complete, pruned or failed: the
search paid for all of them), read from the storage, so several workers sharing a study
share one budget. Study user attrs (``nas.record.Study``; read by ``econas pareto``, the
report and the dashboard): the limit, what was spent so far, a JSON breakdown of where it
went (by trial state, family and phase) and, once the study stopped for it, the reason.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import optuna

from nas.errors import BadInputError
from nas.record import StudyAttrs, TrialRecord

__all__ = [
    "BudgetUsage",
    "CarbonBudgetCallback",
    "budget_callbacks",
    "budget_usage",
    "record_usage",
    "spent_reason",
]

log = logging.getLogger(__name__)

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

    A trial's phases (``<phase>_energy_kwh`` for each name in ``phases``) share its kgCO2e in
    proportion to their energy; what no phase accounts for (studies of earlier releases) is
    listed as ``other``.
    """
    usage = BudgetUsage()
    for t in trials:
        state = _ENDED.get(t.state)
        if state is None:
            continue
        rec = TrialRecord.of(t)
        kg = rec.search_kgco2e
        usage.trials += 1
        usage.used_kgco2e += kg
        _add(usage.by_state, state, kg)
        _add(usage.by_family, rec.family, kg)
        if state == "complete" and not rec.reused:  # a reused trial costs next to nothing
            usage.complete_kgco2e.append(kg)
        kwh = rec.search_energy_kwh
        if kg <= 0 or kwh <= 0:
            continue
        kg_per_kwh = kg / kwh
        left = kg
        for phase in rec.phases:
            if phase.energy_kwh:
                share = phase.energy_kwh * kg_per_kwh
                _add(usage.by_phase, phase.name, share)
                left -= share
        if left > 1e-9 * kg:
            _add(usage.by_phase, "other", left)
    return usage


def record_usage(study: optuna.Study, max_kgco2e: float) -> BudgetUsage:
    """Compute the usage from the storage and store it in the study's user attrs; the
    study's calibration (run once before its trials) counts as phase ``calibration``."""
    usage = budget_usage(study.get_trials(deepcopy=False))
    cal = study.user_attrs.get(StudyAttrs.calibration_kgco2e)
    if isinstance(cal, int | float) and cal > 0:
        usage.used_kgco2e += float(cal)
        _add(usage.by_phase, "calibration", float(cal))
    study.set_user_attr(StudyAttrs.budget_kgco2e, max_kgco2e)
    study.set_user_attr(StudyAttrs.budget_used_kgco2e, usage.used_kgco2e)
    study.set_user_attr(StudyAttrs.budget_breakdown, json.dumps(usage.breakdown(), sort_keys=True))
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
            if study.user_attrs.get(StudyAttrs.budget_stop_reason) is None:
                study.set_user_attr(StudyAttrs.budget_stop_reason, reason)
            log.warning("%s; stopping the study", reason)
            study.stop()


def spent_reason(used_kgco2e: float, max_kgco2e: float) -> str:
    return f"carbon budget spent: {used_kgco2e:.3e} of {max_kgco2e:.3e} kgCO2e"


def budget_callbacks(max_kgco2e: float | None, study: optuna.Study) -> list[CarbonBudgetCallback]:
    """The study's carbon-budget callback (none without a budget); refuses to resume a study
    whose budget is spent (BadInputError: nothing to run)."""
    if max_kgco2e is None:
        return []
    usage = record_usage(study, max_kgco2e)
    used, per = usage.used_kgco2e, usage.per_trial_kgco2e
    if used >= max_kgco2e or (per is not None and used + per > max_kgco2e):
        raise BadInputError(
            f"study {study.study_name!r}: {spent_reason(used, max_kgco2e)}, less than a trial "
            "left; nothing to run"
        )
    return [CarbonBudgetCallback(max_kgco2e=max_kgco2e)]
