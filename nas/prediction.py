"""How well a study predicted its trials' training energy before training them.

Each trial's prediction (``predicted_train_energy_kwh``, written by
:class:`nas.efficiency.cost_guard.CostGuard` before it trains) against its measured training
energy (``train_energy_kwh``): the relative errors, their median absolute value and the
share within 30%, which ``econas pareto`` and the report state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import optuna

from nas.record import TrialAttrs, TrialRecord, phase_key
from nas.stats import median, wilson_interval

TRAIN_ENERGY = phase_key("train", "energy_kwh")


@dataclass(frozen=True)
class PredictionErrors:
    """How far the predictions of training energy were from the measurements."""

    trials: int
    median_abs_error: float | None  # |predicted / measured - 1|
    share_within_30pct: float | None
    errors: tuple[tuple[int, float], ...]  # (trial, predicted / measured - 1)
    what: str = "training energy predicted before training"

    def line(self) -> str:
        if not self.trials or self.median_abs_error is None:
            return f"{self.what}: no trial has both figures yet"
        hits = sum(abs(e) <= 0.30 for _, e in self.errors)
        lo, hi = wilson_interval(hits, self.trials)
        return (
            f"{self.what}: median absolute error "
            f"{self.median_abs_error:.0%} over {self.trials} trials, "
            f"{self.share_within_30pct:.0%} within 30% of the measurement "
            f"(95% interval {lo:.0%}-{hi:.0%})"
        )


STATIC = "predicted from static features alone (what the sampler ranks candidates by)"


def prediction_errors(
    trials: Sequence[optuna.trial.FrozenTrial], *, static: bool = False
) -> PredictionErrors:
    """Relative error of each completed, trained trial's prediction against its measured
    training energy (``predicted_train_energy_kwh`` vs ``train_energy_kwh``); ``static``:
    of the prediction from static features alone (``predicted_train_energy_static_kwh``),
    which is the recorded prediction of a trial trained without a cost probe."""
    key = TrialAttrs.predicted_train_energy_static_kwh if static else None
    errs = []
    for t in sorted(trials, key=lambda t: t.number):
        if t.state != optuna.trial.TrialState.COMPLETE:
            continue
        rec = TrialRecord.of(t)
        pred, kwh = rec.num(key or TrialAttrs.predicted_train_energy_kwh), rec.num(TRAIN_ENERGY)
        if rec.reused or pred is None or kwh is None or not kwh > 0:
            continue
        errs.append((t.number, pred / kwh - 1.0))
    absolute = [abs(e) for _, e in errs]
    return PredictionErrors(
        trials=len(errs),
        median_abs_error=median(absolute) if absolute else None,
        share_within_30pct=sum(e <= 0.30 for e in absolute) / len(absolute) if absolute else None,
        errors=tuple(errs),
        **({"what": STATIC} if static else {}),
    )


def prediction_lines(trials: Sequence[optuna.trial.FrozenTrial]) -> list[str]:
    """The recorded prediction's error, then, when some trial was probed (its recorded
    prediction is not the static one), the static features' error on the same study."""
    errors = prediction_errors(trials)
    if not errors.trials:
        return []
    lines = [errors.line()]
    probed = any(TrialAttrs.cost_probe_kwh in t.user_attrs for t in trials)
    static = prediction_errors(trials, static=True)
    if probed and static.trials:
        lines.append(static.line())
    return lines
