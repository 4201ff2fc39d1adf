"""How costly a training step is now against when the proxy trained: the projection's speed.

The projection scales the proxy's measured energy per sample-epoch, measured minutes or days
earlier. On a shared machine the same step costs more or less as the load on the host
changes (``benchmarks/projection.py``: one round's runs all off by +45-53%, another's by
-27%, the same architecture and data). The proxy's cost probe
(:mod:`nas.efficiency.cost_probe`, ``cost_probe_kwh``) metered a few steps of the same
network next to its training; :func:`speed_factor` meters them again now, on the same
recipe (the proxy's batch size, fp32), as the median of three probes, and returns their
ratio: the factor the projection's training, validation and test are scaled by
(:meth:`~nas.final._project.Projection.at_speed`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import TensorDataset

from nas.efficiency.cost_guard import work_of
from nas.efficiency.cost_probe import probe_step_energy
from nas.energy import Meter
from nas.record import TrialAttrs, TrialRecord
from nas.stats import median
from nas.train import TrainingPlan

REPEATS = 3


@dataclass(frozen=True)
class Speed:
    factor: float | None  # None: not measured (why says so); the projection is left as it was
    why: str
    probe_kwh: float = 0.0  # what measuring it drew, before the run


def speed_factor(
    rec: TrialRecord,
    network: torch.nn.Module,
    data: TensorDataset,
    plan: TrainingPlan,
    meter: Meter | None,
    *,
    steps: int,
    repeats: int = REPEATS,
) -> Speed:
    """The proxy trial's probed energy per step against ``repeats`` probes of ``network`` now
    (``plan``: the search's recipe, the proxy's batch size). ``network`` must be what the
    proxy probed (the unpruned architecture)."""
    probed, work = rec.num(TrialAttrs.cost_probe_kwh), work_of(rec)
    if meter is None:
        return Speed(None, "no meter: the machine's speed now is not measured")
    if probed is None or not probed > 0 or work is None or work.steps <= 0 or steps <= 0:
        return Speed(None, "the proxy has no cost probe to compare the machine's speed with")
    per_step, spent = [], 0.0
    for _ in range(repeats):
        value, whole = probe_step_energy(network, data, plan, meter, steps=steps)
        per_step.append(value)
        spent += whole
    then = probed / work.steps
    factor = median(per_step) / then
    why = (
        f"scaled by {factor:.2f}: a training step of this network costs {factor:.2f}x now what "
        f"it cost beside the proxy's training (median of {repeats} probes of {steps} steps, "
        f"{spent:.3e} kWh drawn before the run)"
    )
    return Speed(factor, why, spent)
