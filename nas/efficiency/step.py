"""The ``[efficiency]`` section and its trial plugin: reuse, zero-cost screening, early stopping.

Order inside a trial's ``before_train``: fingerprint (always stored) -> reuse a COMPLETE trial
with the same fingerprint (no new cost) -> screen with a zero-cost proxy (phase ``screen``;
PRUNED when below the quantile) -> arm the rung callback for multi-objective early stopping.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any

import optuna
import torch
from torch.utils.data import TensorDataset

from nas.efficiency.early_stop import rung_attr, rung_history, should_stop
from nas.efficiency.proxies import PROXIES, compute_proxy
from nas.efficiency.reuse import (
    FINGERPRINT_ATTR,
    METRICS_ATTR,
    find_match,
    reuse_attrs,
    reused_values,
    trial_fingerprint,
)
from nas.errors import ConfigError
from nas.plugins import TrialContext, TrialPlugin

log = logging.getLogger(__name__)

RUNG_WINDOW = "efficiency_rung"  # overlaps "train"; read for energy-so-far, never recorded
_FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


@dataclass(frozen=True)
class EfficiencySection:
    reuse: bool = True  # a duplicate configuration reuses the stored result
    reuse_across_studies: bool = False  # also look in the other studies of the storage
    screen: str = "none"  # none | synflow | naswot | grad_norm
    screen_quantile: float = 0.5  # prune candidates scoring below this quantile
    screen_warmup: int = 6  # candidates of a family scored before screening starts
    screen_batch_size: int = 64
    early_stop: bool = False  # successive halving on the non-dominated rank at each rung
    early_stop_keep: float = 0.5  # fraction of trials kept at a rung
    early_stop_min_trials: int = 4  # trials that must have reached a rung before stopping
    early_stop_val_size: int = 200  # validation samples evaluated at a rung

    def check(self) -> None:
        if self.screen != "none" and self.screen not in PROXIES:
            raise ConfigError(
                f"efficiency.screen {self.screen!r} is unknown; use none or one of {list(PROXIES)}"
            )
        if not 0.0 < self.screen_quantile < 1.0 or not 0.0 < self.early_stop_keep < 1.0:
            raise ConfigError("efficiency.screen_quantile and early_stop_keep must be in (0, 1)")
        if min(self.screen_warmup, self.early_stop_min_trials) < 1:
            raise ConfigError("efficiency.screen_warmup and early_stop_min_trials must be >= 1")
        if min(self.screen_batch_size, self.early_stop_val_size) < 2:
            raise ConfigError("efficiency.screen_batch_size and early_stop_val_size must be >= 2")


SECTIONS: dict[str, type] = {"efficiency": EfficiencySection}


class EfficiencyPlugin(TrialPlugin):
    name = "efficiency"

    def before_train(self, ctx: TrialContext) -> list[float] | None:
        sec: EfficiencySection = ctx.config.efficiency
        fingerprint = trial_fingerprint(ctx)
        ctx.attrs[FINGERPRINT_ATTR] = fingerprint
        ctx.trial.set_user_attr(FINGERPRINT_ATTR, fingerprint)
        if sec.reuse:
            match = find_match(
                ctx.trial.study, fingerprint, across_studies=sec.reuse_across_studies
            )
            values = reused_values(match, ctx.config.study.objectives) if match else None
            if match is not None and values is not None:
                ctx.attrs.update(reuse_attrs(match))
                log.info(
                    "trial %d reuses trial %d of study %s (same fingerprint %s)",
                    ctx.trial.number,
                    match.trial.number,
                    match.study_name,
                    fingerprint,
                )
                return values
        if sec.screen != "none":
            _screen(ctx, sec)
        if sec.early_stop:
            _arm_early_stop(ctx, sec)
        return None

    def after_train(self, ctx: TrialContext) -> None:
        if RUNG_WINDOW in ctx.meter.open_windows:
            ctx.meter.end_window(RUNG_WINDOW, sync=False)

    def after_eval(self, ctx: TrialContext) -> None:
        metrics = {k: float(v) for k, v in ctx.metrics.items() if math.isfinite(float(v))}
        ctx.attrs[METRICS_ATTR] = json.dumps(metrics, sort_keys=True)


def make_trial_plugins(objective: Any) -> list[TrialPlugin]:
    return [EfficiencyPlugin()]


# -- screening ------------------------------------------------------------------------------
def _screen(ctx: TrialContext, sec: EfficiencySection) -> None:
    x, y = (t[: sec.screen_batch_size] for t in ctx.data.train.tensors)
    x, y = x.to(ctx.device), y.to(ctx.device)
    ctx.model.to(ctx.device)
    ctx.meter.begin_window("screen")
    try:
        score = compute_proxy(sec.screen, ctx.model, x, y)
    finally:
        ctx.record(ctx.meter.end_window("screen"))
    key = f"proxy_{sec.screen}"
    ctx.attrs[key] = score
    ctx.trial.set_user_attr(key, score)
    family = ctx.spec.family
    history = [
        float(t.user_attrs[key])
        for t in ctx.trial.study.get_trials(deepcopy=False, states=_FINISHED)
        if t.number != ctx.trial.number
        and t.user_attrs.get("family") == family
        and isinstance(t.user_attrs.get(key), int | float)
        and math.isfinite(float(t.user_attrs[key]))
    ]
    if len(history) < sec.screen_warmup:
        return
    threshold = quantile(history, sec.screen_quantile)
    if not math.isfinite(score) or score < threshold:
        raise optuna.TrialPruned(
            f"screened: {sec.screen} {score:.4g} below the {sec.screen_quantile:.2f} quantile "
            f"{threshold:.4g} of {len(history)} {family} candidates"
        )


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolated ``q`` quantile of ``values`` (non-empty)."""
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


# -- early stopping -------------------------------------------------------------------------
def _arm_early_stop(ctx: TrialContext, sec: EfficiencySection) -> None:
    epochs = int(ctx.train_kwargs.get("epochs", 1))
    if epochs < 2:
        log.debug("early stopping needs >= 2 epochs (a rung before the last); off")
        return
    meter = ctx.meter
    if RUNG_WINDOW in meter.open_windows:  # left open by a trial that failed
        meter.end_window(RUNG_WINDOW, sync=False)
    inner = ctx.train_kwargs["loss_fn"]
    state = {"started": False, "kwh": 0.0}

    def loss_fn(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not state["started"]:  # training starts: energy so far counts from here
            meter.begin_window(RUNG_WINDOW, sync=False)
            state["started"] = True
        return inner(model, x, y)

    ctx.train_kwargs["loss_fn"] = loss_fn
    xs, ys = (t[: sec.early_stop_val_size] for t in ctx.data.val.tensors)
    val = TensorDataset(xs, ys)

    def at_rung(epoch: int, loss: float) -> None:
        if epoch >= epochs - 1 or not state["started"]:
            return
        from nas.train import evaluate

        accuracy = evaluate(ctx.model, val, device=ctx.device)
        ctx.model.train()
        state["kwh"] += meter.end_window(RUNG_WINDOW).energy_kwh
        meter.begin_window(RUNG_WINDOW, sync=False)
        ctx.attrs[rung_attr(epoch, "accuracy")] = accuracy
        ctx.attrs[rung_attr(epoch, "energy_kwh")] = state["kwh"]
        history = rung_history(ctx.trial.study, epoch, exclude=ctx.trial.number)
        stop, reason = should_stop(
            (accuracy, state["kwh"]),
            history,
            keep=sec.early_stop_keep,
            min_trials=sec.early_stop_min_trials,
        )
        if stop:
            meter.end_window(RUNG_WINDOW, sync=False)
            ctx.attrs["early_stopped_at_rung"] = epoch
            raise optuna.TrialPruned(reason)

    ctx.epoch_callbacks.append(at_rung)
