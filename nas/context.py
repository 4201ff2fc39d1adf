"""The run context: what one run of econas works with, built once by
:func:`nas.runs.build_context`.

Three runners take it whole: a search (every trial of :class:`nas.pipeline.Objective` reads it
through ``t.context``), ``econas train`` (:class:`nas.final.FinalRun`) and ``econas ablate``
(:func:`nas.ablation.run_ablation`, whose rows see it as ``ctx.run``)::

    ctx = build_context(config)            # device, meter, carbon source, data: bad input -> exit 2
    plan = ctx.plan(seed=ctx.seed + 3)     # the config's training recipe on ctx.device
    ctx.workload.train(model, ctx.data.train, plan)

A runner that needs something else of the same kind makes a changed copy
(``ctx.replace(config=calibrated)``, ``ctx.replace(seed=seed + repeat)``); nothing is copied
field by field. How a model is built, trained and evaluated is :attr:`RunContext.workload`
(:mod:`nas.workload`; PyTorch by default).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nas.workload import TorchWorkload, Workload

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from nas.carbon import IntensitySource
    from nas.config import Config
    from nas.data import DataBudget, DataSplits
    from nas.energy import Meter
    from nas.train import TrainingPlan


@dataclass(frozen=True, kw_only=True)
class RunContext:
    """What every part of one run shares (see the module docstring).

    ``seed`` is the run's: the data subsets are drawn with it, a trial trains with
    ``seed + trial number``, an ablation repeat runs with its own. ``meter`` is None only in a
    context that measures nothing (``econas train --dry-run`` projects and stops).
    ``artifact_store`` (an ``optuna.artifacts`` store) is where a search uploads weights.
    """

    config: Config
    data: DataSplits
    device: torch.device
    meter: Meter | None
    intensity: IntensitySource
    seed: int
    artifact_store: Any = None
    workload: Workload = field(default_factory=TorchWorkload)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.data.in_channels, self.data.image_size, self.data.image_size)

    def replace(self, **changes: Any) -> RunContext:
        return dataclasses.replace(self, **changes)

    def plan(self, **overrides: Any) -> TrainingPlan:
        """The config's training recipe on this run's device with its seed
        (:meth:`nas.train.TrainingPlan.from_config`); ``overrides`` replace fields."""
        from nas.train import TrainingPlan

        return TrainingPlan.from_config(
            self.config, device=self.device, seed=overrides.pop("seed", self.seed), **overrides
        )


def data_budget(config: Config) -> DataBudget:
    """The ``[data]`` section's subset sizes, resolution and batch size."""
    from nas.data import DataBudget

    d = config.data
    return DataBudget(
        train_size=d.train_size,
        val_size=d.val_size,
        test_size=d.test_size,
        resolution=d.resolution,
        batch_size=d.batch_size,
    )
