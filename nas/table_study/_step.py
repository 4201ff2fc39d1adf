"""A table study's own step: the epochs it trains to, and what each trial looked up."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nas.record import TrialAttrs
from nas.tabular import Table
from nas.trial import RunningTrial, Step

if TYPE_CHECKING:  # pragma: no cover
    from nas.train import TrainingPlan


class TableStep(Step):
    """``sample``: records ``benchmark_arch`` (a listed encoding's architecture id);
    ``plan``: trains to ``min(train.epochs, max_epochs)`` and records ``benchmark_repeat`` and
    ``benchmark_epochs`` (the recorded epoch reached) after every epoch, so a trial stopped
    at a rung keeps what it was trained to. Runs before reuse and early stopping."""

    name = "table"

    def __init__(self, table: Table) -> None:
        self.table = table

    def sample(self, t: RunningTrial) -> None:
        assert t.spec is not None
        arch = t.spec.config.get("arch")
        if arch is not None:
            t.record({TrialAttrs.benchmark_arch: arch})
        return None  # nothing of its own sampled: not part of the fingerprint

    def plan(self, t: RunningTrial, plan: TrainingPlan) -> TrainingPlan:
        def trained(epoch: int, loss: float) -> None:
            model = t.model
            t.record(
                {
                    TrialAttrs.benchmark_repeat: model.repeat,
                    TrialAttrs.benchmark_epochs: model.epochs,
                }
            )

        return plan.replace(
            epochs=min(plan.epochs, self.table.max_epochs),
            epoch_callbacks=(*plan.epoch_callbacks, trained),
        )
