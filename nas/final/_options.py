"""The budget of a final training (``[final]``, overridden by ``econas train``'s flags), the run
context it runs in and its training recipe (:func:`final_plan`). ``econas train`` and
``econas ablate --budget final`` both train by them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas.config import Config
from nas.context import RunContext, data_budget
from nas.errors import BadInputError
from nas.runs import build_context

if TYPE_CHECKING:  # pragma: no cover
    from nas.carbon import IntensitySource
    from nas.data import DataBudget
    from nas.train import TrainingPlan


@dataclass(frozen=True)
class FinalOptions:
    """The budget of a final training ([final] section, overridden by flags)."""

    epochs: int
    train_size: int | None  # None: the whole training split less validation
    test_size: int | None  # None: the whole test split
    batch_size: int
    lr: float
    schedule: str
    device: str
    meter: str
    max_kgco2e: float | None

    @classmethod
    def of(cls, config: Config, **overrides: Any) -> FinalOptions:
        f = config.final
        given = {k: v for k, v in overrides.items() if v is not None}
        if given.get("train_size") == "all":  # the flag's way of saying the whole split
            given["train_size"] = None
        opts = cls(
            epochs=f.epochs,
            train_size=f.train_size,
            test_size=f.test_size,
            batch_size=f.batch_size or config.data.batch_size,
            lr=f.lr or config.train.lr,
            schedule=f.schedule,
            device=config.hardware.device,
            meter=config.hardware.meter,
            max_kgco2e=f.max_kgco2e,
        )
        opts = dataclasses.replace(opts, **given)
        if opts.epochs < 1:
            raise BadInputError(f"--epochs must be >= 1, got {opts.epochs}")
        if opts.train_size is not None and opts.train_size < 1:
            raise BadInputError(f"--train-size must be 'all' or >= 1, got {opts.train_size}")
        if opts.max_kgco2e is not None and not opts.max_kgco2e > 0:
            raise BadInputError(f"--max-kgco2e must be > 0, got {opts.max_kgco2e}")
        return opts

    def settings(self) -> dict[str, Any]:
        """What a checkpoint must share with the run that resumes it."""
        keys = ("epochs", "train_size", "test_size", "batch_size", "lr", "schedule", "meter")
        return {k: getattr(self, k) for k in keys}

    def data_budget(self, config: Config, *, val_size: int | None = None) -> DataBudget:
        """The final run's data: the config's validation split (``val_size`` images instead,
        when given) and resolution, these sizes."""
        budget = data_budget(config)
        return dataclasses.replace(
            budget,
            train_size=self.train_size,
            val_size=val_size or budget.val_size,
            test_size=self.test_size,
            batch_size=self.batch_size,
        )


def final_context(
    config: Config,
    options: FinalOptions,
    *,
    metered: bool = True,
    intensity: IntensitySource | None = None,
    val_size: int | None = None,
    seed: int | None = None,
) -> RunContext:
    """The run context of ``econas train``: the options' device, meter and data budget
    (``metered=False``: no meter, for a projection only; ``val_size``: another validation
    split, as ``econas ablate --budget final`` ranks its combined row's candidates on;
    ``seed``: draws the data, default ``study.seed``)."""
    return build_context(
        config,
        seed=seed,
        budget=options.data_budget(config, val_size=val_size),
        device=options.device,
        meter=options.meter,
        metered=metered,
        intensity=intensity,
    )


def final_plan(context: RunContext, options: FinalOptions, *, seed: int) -> TrainingPlan:
    """The config's training recipe at the final budget (the options' epochs, lr, schedule and
    batch size) on ``context``'s device with ``seed``: what every final training runs."""
    return context.plan(
        seed=seed,
        epochs=options.epochs,
        lr=options.lr,
        lr_schedule=options.schedule,
        batch_size=options.batch_size,
    )


class BudgetStop(BadInputError):
    """The measured total reached ``--max-kgco2e``: stopped at a checkpoint (exit 2)."""
