"""What one repeat of ``econas ablate`` gives each row: :class:`AblationContext` (the run
context at the repeat's seed, the baseline architecture, the calibration, the deployment
target, the budget) and :class:`RowBudget`, how much each row trains.

Two budgets (``econas ablate --budget``):

* ``proxy``: every row trains by the config's recipe (``[train]`` epochs) on ``[data]``'s
  subsets, as a search trial does; the combined row's candidates are ranked on ``[data]``'s
  validation split.
* ``final``: every row's model is trained as ``econas train`` trains it (the recipe at the
  ``[final]`` budget, :func:`nas.final.final_plan`, on the whole training split less
  validation; a pruned model's structure from scratch); the combined row's candidates are
  trained at the proxy recipe on the first ``select_train_size`` training images and ranked
  on a validation split of ``[ablate] select_val_size`` images, then the chosen one is
  trained at the final budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import TensorDataset

from nas.compression.calibrate import Calibration
from nas.compression.quantize import deploy_device
from nas.compression.recipe import CompressionChoice, finetune_plan, training_plan
from nas.config import Config
from nas.context import RunContext
from nas.data import DataSplits
from nas.energy import Meter, WindowAccumulator
from nas.sections.compression import AblateSection
from nas.train import TrainingPlan
from nas.trial import Deployed
from search_spaces import ArchSpec

BUDGETS = ("proxy", "final")


@dataclass(frozen=True, kw_only=True)
class RowBudget:
    """How much each row trains (module docstring). ``final_plan(run, seed)`` is the final
    budget's recipe (:func:`nas.final.final_plan` with the run's options); ``select_train_size``
    the combined selection's training images at the final budget."""

    name: str = "proxy"
    final_plan: Callable[[RunContext, int], TrainingPlan] | None = None
    select_train_size: int | None = None

    def __post_init__(self) -> None:
        if self.name not in BUDGETS:
            raise ValueError(f"budget {self.name!r} is not one of {BUDGETS}")
        if self.name == "final" and self.final_plan is None:
            raise ValueError("the final budget needs its plan")

    @property
    def final(self) -> bool:
        return self.name == "final"


@dataclass(kw_only=True)
class AblationContext:
    """One repeat of the table: the run context (its ``seed`` is the repeat's), the baseline
    architecture, the calibration, where the rows deploy and the budget; ``baseline`` once
    it has run."""

    run: RunContext
    spec: ArchSpec
    baseline: Deployed | None = None
    calibration: Calibration | None = None
    target: torch.device = field(default_factory=lambda: torch.device("cpu"))
    budget: RowBudget = field(default_factory=RowBudget)

    @property
    def config(self) -> Config:
        return self.run.config

    @property
    def section(self) -> AblateSection:
        return self.run.config.ablate

    @property
    def data(self) -> DataSplits:
        return self.run.data

    @property
    def device(self) -> torch.device:
        return self.run.device

    @property
    def meter(self) -> Meter:
        assert self.run.meter is not None  # an ablation's context is metered (nas.ablation)
        return self.run.meter

    @property
    def seed(self) -> int:
        return self.run.seed

    @property
    def final(self) -> bool:
        return self.budget.final

    def base_plan(self) -> TrainingPlan:
        """The budget's recipe at this repeat's seed: the config's (proxy) or the final one."""
        if self.budget.final_plan is not None:
            return self.budget.final_plan(self.run, self.seed)
        return self.run.plan()

    @property
    def epochs(self) -> int:
        """Epochs a row trains at this budget."""
        return self.base_plan().epochs

    @property
    def select_data(self) -> TensorDataset:
        """What the combined row's candidates train on: the training split at the proxy
        budget; its first ``select_train_size`` images at the final budget."""
        n = self.budget.select_train_size
        if not self.final or n is None or n >= len(self.data.train):
            return self.data.train
        x, y = self.data.train.tensors
        return TensorDataset(x[:n], y[:n])

    def choice(self, **settings: Any) -> CompressionChoice:
        """A row's :class:`CompressionChoice`: ``settings`` plus ``[ablate]``'s KD settings."""
        s = self.section
        base: dict[str, Any] = {
            "precision_switch_epoch": 1,
            "kd_temperature": s.kd_temperature,
            "kd_alpha": s.kd_alpha,
            "prune_criterion": s.prune_criterion,
        }
        return CompressionChoice(**{**base, **settings})

    def teacher(self, choice: CompressionChoice) -> torch.nn.Module | None:
        """The baseline row's model when ``choice`` distils (the baseline runs first)."""
        if not choice.distill:
            return None
        assert self.baseline is not None
        return self.baseline.float_model

    def plan(
        self,
        *,
        precision: str = "fp32",
        distill: bool = False,
        passes: WindowAccumulator | None = None,
        base: TrainingPlan | None = None,
    ) -> TrainingPlan:
        """``base`` (default the budget's recipe) in ``precision``; distilled from the
        baseline row's model when ``distill`` (its passes in ``passes``' windows)."""
        choice = self.choice(precision=precision, distill=distill)
        base = base or self.base_plan()
        return training_plan(base, choice, teacher=self.teacher(choice), passes=passes)

    def finetune_plan(self, plan: TrainingPlan, epochs: int) -> TrainingPlan:
        """The deploy recipe's fine-tune after pruning, with a shuffle of its own (seed + 1)."""
        return finetune_plan(plan, epochs).replace(seed=self.seed + 1)

    def deploy_device(self, quantization: str) -> torch.device:
        """Where a model deployed at ``quantization`` runs: INT8 on the CPU, else the target."""
        return deploy_device(quantization, self.target)

    def allowed_precision(self, precision: str) -> bool:
        """False when the calibration measured ``precision`` dearer than fp32 here."""
        if self.calibration is None:
            return True
        return precision in self.calibration.allowed_precisions([precision])

    def allowed_quantizations(self) -> list[str]:
        """What the deployment target runs (INT8 on a CPU; fp16/bf16 on a GPU), less what the
        calibration excludes."""
        cands = target_quantizations(self.target, self.spec.family)
        if self.calibration is None:
            return cands
        return list(self.calibration.allowed_quantizations(cands))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.data.in_channels, self.data.image_size, self.data.image_size)

    @property
    def quantization(self) -> str:
        q = self.section.quantization
        return q if q != "auto" else target_quantizations(self.target, self.spec.family)[0]


def target_quantizations(target: torch.device, family: str) -> list[str]:
    """The deployed quantizations a target runs, preferred first: static INT8 (CNNs) and
    dynamic INT8 on a CPU, compared with fp32 on that CPU; fp16 and bf16 on a GPU."""
    if target.type == "cpu":
        return ["int8_static", "int8_dynamic"] if family == "cnn" else ["int8_dynamic"]
    return ["fp16", "bf16"]
