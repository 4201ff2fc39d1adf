"""Cost known before training: every trial's training energy predicted, the costly refused.

:class:`CostGuard` is a step of every trial. On the built model (hook ``screen``, so inside
phase ``screen``, before any training) it describes the trial's training work
(:class:`~nas.efficiency.cost_model.TrainingWork`: forward FLOPs, parameters and activation
elements per sample, the samples and optimiser steps of the ``[train]`` budget), predicts its
training energy with a :class:`~nas.efficiency.cost_model.TrainingCostModel` fitted on the
study's own completed trials (their stored work and measured ``train_energy_kwh``, in trial
order) and records the prediction next to the measurement (``predicted_train_energy_kwh``).

A trial predicted to cost more than :data:`MAX_RATIO` times the median measured training
energy of the study's completed trials (from :data:`MIN_TRIALS` of them on) is refused (PRUNED, its one-line reason in
``stop_reason``) unless ``[search] allow_costly = true``. :func:`nas.prediction.prediction_errors` is
the prediction's error over a study's trials, which ``pareto`` and the report state.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict

import optuna

from nas.efficiency.cost_model import (
    TrainingCostModel,
    TrainingWork,
    forward_work,
    refusal,
)
from nas.efficiency.cost_probe import probe_prediction, probe_step_energy
from nas.prediction import TRAIN_ENERGY
from nas.record import TrialAttrs, TrialRecord
from nas.trial import RunningTrial, Step

log = logging.getLogger(__name__)

MAX_RATIO = 10.0  # refuse above this multiple of the study's median trial
MIN_TRIALS = 3  # measured trials before the guard refuses: a median of one or two is no norm


def work_of(rec: TrialRecord) -> TrainingWork | None:
    """The training work a trial stored, None when it stored none (or an unreadable one)."""
    raw = rec.json(TrialAttrs.training_work)
    if not isinstance(raw, dict):
        return None
    try:
        return TrainingWork(**raw)
    except (TypeError, ValueError):
        return None


def observations(
    trials: Sequence[optuna.trial.FrozenTrial], *, exclude: int | None = None
) -> list[tuple[TrainingWork, float]]:
    """(work, measured training kWh) of the completed, trained (not reused) trials, in
    trial order."""
    out = []
    for t in sorted(trials, key=lambda t: t.number):
        if t.state != optuna.trial.TrialState.COMPLETE or t.number == exclude:
            continue
        rec = TrialRecord.of(t)
        work, kwh = work_of(rec), rec.num(TRAIN_ENERGY)
        if rec.reused or work is None or kwh is None or not (kwh > 0 and math.isfinite(kwh)):
            continue
        out.append((work, kwh))
    return out


def probe_history(
    trials: Sequence[optuna.trial.FrozenTrial], *, exclude: int | None = None
) -> list[tuple[float, float]]:
    """(probed kWh, measured training kWh) of the completed, trained, probed trials, in trial
    order."""
    out = []
    for t in sorted(trials, key=lambda t: t.number):
        if t.state != optuna.trial.TrialState.COMPLETE or t.number == exclude:
            continue
        rec = TrialRecord.of(t)
        probed, kwh = rec.num(TrialAttrs.cost_probe_kwh), rec.num(TRAIN_ENERGY)
        if rec.reused or probed is None or kwh is None:
            continue
        if probed > 0 and kwh > 0 and math.isfinite(probed) and math.isfinite(kwh):
            out.append((probed, kwh))
    return out


class CostGuard(Step):
    name = "cost_guard"

    def __init__(
        self,
        *,
        allow_costly: bool = False,
        max_ratio: float = MAX_RATIO,
        min_trials: int = MIN_TRIALS,
        probe_steps: int = 0,
    ) -> None:
        self.allow_costly = allow_costly
        self.probe_steps = probe_steps
        self.max_ratio = max_ratio
        self.min_trials = min_trials

    def uses(self, hook: str) -> bool:
        return hook == "screen" or super().uses(hook)

    def work(self, t: RunningTrial) -> TrainingWork:
        cfg = t.config
        assert t.model is not None and t.spec is not None
        _, elements, calls = forward_work(t.model, t.input_shape)
        return TrainingWork.of(
            flops_per_sample=float(t.attrs.get(TrialAttrs.flops) or 0),
            params=int(t.attrs.get(TrialAttrs.params) or 0),
            activations_per_sample=float(elements),
            calls_per_step=float(calls),
            train_size=len(t.data.train),
            epochs=cfg.train.epochs,
            batch_size=cfg.data.batch_size,
            family=t.spec.family,
        )

    def screen(self, t: RunningTrial) -> None:
        work = self.work(t)
        trials = t.trial.study.get_trials(deepcopy=False)
        seen = observations(trials, exclude=t.number)
        static = TrainingCostModel.from_observations(seen).predict(work)
        predicted_kwh, basis = static.energy_kwh, static.basis
        attrs: dict[str, object] = {
            TrialAttrs.training_work: json.dumps(asdict(work), sort_keys=True),
            TrialAttrs.predicted_train_energy_static_kwh: static.energy_kwh,
        }
        if self.probe_steps:
            per_step, spent = probe_step_energy(
                t.model,
                t.data.train,
                t.context.plan(seed=t.seed),
                t.meter,
                steps=self.probe_steps,
            )
            probed = probe_prediction(per_step, work.steps, probe_history(trials, exclude=t.number))
            predicted_kwh, basis = probed.energy_kwh, f"{probed.basis} ({self.probe_steps} steps)"
            attrs[TrialAttrs.cost_probe_kwh] = per_step * work.steps
            attrs[TrialAttrs.cost_probe_energy_kwh] = spent
        attrs[TrialAttrs.predicted_train_energy_kwh] = predicted_kwh
        attrs[TrialAttrs.predicted_train_energy_basis] = basis
        t.record(attrs)
        if len(seen) < self.min_trials:
            return
        reason = refusal(predicted_kwh, [kwh for _, kwh in seen], max_ratio=self.max_ratio)
        if reason is None:
            return
        if self.allow_costly:
            log.info("trial %d: %s; trained anyway (search.allow_costly)", t.number, reason)
            return
        raise optuna.TrialPruned(f"cost guard: {reason} (search.allow_costly = true trains it)")
