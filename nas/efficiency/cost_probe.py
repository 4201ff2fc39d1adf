"""A measured probe of a trial's training cost: a few timed optimiser steps before it trains.

Static features (FLOPs, activations, operator calls) rank candidates the sampler has not
built, but a built trial can be measured: :func:`probe_step_energy` trains a copy of the
model for one warm-up step and ``steps`` metered steps on the first batches of the training
data, with the run's recipe (optimizer, loss, batch size, device; fp32, constant learning
rate), and returns the metered energy of one step. The copy is discarded and torch's random
state restored, so the trial trains exactly as it would without the probe. The probe's energy
is drawn inside phase ``screen`` and counted in the trial's energy like any other phase.

:func:`probe_prediction` turns it into the trial's predicted training energy: energy per step
x the trial's optimiser steps, scaled by the median measured / probed ratio of the study's
latest trials (what the probe leaves out: the one-cycle schedule, the epochs' loss
bookkeeping, a partial last batch). On seven quickstarts (one thread, estimate meter) two
probed steps put 106 of 112 trials within 30% of their measured training energy, the static
features 79 of the same 112; ``benchmarks/cost_model.py`` measures both on the same trainings.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import TensorDataset

from nas.energy import Meter
from nas.stats import median
from nas.train import Trainer, TrainingPlan

WINDOW = "screen:cost_probe"
DEFAULT_STEPS = 2  # metered steps after the warm-up one: ~3/64 of a quickstart trial's training
MAX_STEPS = 64


@dataclass(frozen=True)
class ProbePrediction:
    energy_kwh: float
    basis: str


def probe_step_energy(
    model: torch.nn.Module,
    data: TensorDataset,
    plan: TrainingPlan,
    meter: Meter,
    *,
    steps: int = DEFAULT_STEPS,
) -> tuple[float, float]:
    """(kWh of one metered training step, kWh of the whole probe, warm-up and copy included)
    of ``model`` under ``plan``'s recipe, on a copy. ``steps`` >= 1 metered steps follow one
    warm-up step (oneDNN primitives, allocator, first-touch pages)."""
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"probe steps must be in [1, {MAX_STEPS}], got {steps}")
    n = min(len(data), plan.batch_size * (steps + 1))
    batches = -(-n // plan.batch_size)
    warmup = 1 if batches > 1 else 0  # one batch of data: meter that one step
    subset = TensorDataset(*(t[:n] for t in data.tensors))
    devices = [plan.device.index or 0] if plan.device.type == "cuda" else []
    total = f"{WINDOW}:total"
    meter.begin_window(total, restart=True)
    try:
        with torch.random.fork_rng(devices=devices):
            trainer = Trainer(
                copy.deepcopy(model),
                subset,
                plan.replace(epochs=1, lr_schedule="constant", autocast_dtype=None),
            )
            done = [0]

            def on_batch(_samples: int) -> None:
                done[0] += 1
                if done[0] == warmup:  # the warm-up step is over: the metered ones begin
                    meter.begin_window(WINDOW, restart=True)

            if not warmup:
                meter.begin_window(WINDOW, restart=True)
            trainer.run_epoch(on_batch)
            metered = meter.end_window(WINDOW)
            del trainer
    finally:
        if WINDOW in meter.open_windows:
            meter.end_window(WINDOW, cancel=True)
        whole = meter.end_window(total)
    per_step = metered.energy_kwh / (batches - warmup)
    return per_step, whole.energy_kwh


def probe_prediction(
    per_step_kwh: float,
    steps: int,
    history: Sequence[tuple[float, float]],
    *,
    recent: int = 3,
) -> ProbePrediction:
    """Predicted training kWh: ``per_step_kwh x steps``, scaled by the median measured /
    probed ratio of the latest ``recent`` of ``history`` ((probed kWh, measured kWh) of the
    study's earlier trials, in trial order)."""
    raw = per_step_kwh * steps
    ratios = [m / p for p, m in history if p > 0 and m > 0][-recent:]
    if not ratios:
        return ProbePrediction(raw, "probe")
    whose = "trial's" if len(ratios) == 1 else f"{len(ratios)} trials'"
    return ProbePrediction(raw * median(ratios), f"probe x the last {whose} ratio")
