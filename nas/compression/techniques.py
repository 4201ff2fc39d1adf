"""The rows of ``econas ablate``: baseline, pruning, quantization, distillation, mixed precision
(and, in :mod:`nas.compression.combined`, combined). Registered in :mod:`nas.ablation`, which
runs and compares them.

Each ``fn(ctx)`` returns the :class:`Deployed` model plus every measured training window the
technique needs. Rows train with the config's recipe (:meth:`AblationContext.plan`) and
prune, fine-tune and quantize with the deploy recipe (:mod:`nas.compression.recipe`), each
stage in a meter window of the row. The baseline runs first and its trained model is
``ctx.baseline``: pruning and quantization start from it (its training windows count in
theirs), distillation uses it as the teacher (the teacher's forward passes count, in nested
windows too; the teacher's own training is the baseline row's and is not counted again).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nas.compression.calibrate import Calibration
from nas.compression.distill import TEACHER_WINDOW
from nas.compression.quantize import deploy_device
from nas.compression.recipe import (
    CompressionChoice,
    MeterWindows,
    finetune_plan,
    prune_and_finetune,
    quantize_and_calibrate,
    training_plan,
)
from nas.config import Config
from nas.context import RunContext
from nas.data import DataSplits
from nas.energy import Measurement, Meter, WindowAccumulator, combine
from nas.errors import BadInputError, ConfigError, InvalidArchError
from nas.sections.compression import AblateSection
from nas.train import TrainingPlan, train_model
from nas.trial import Deployed
from search_spaces import ArchSpec, build_model

DEFAULT_ARCH: dict[str, dict[str, Any]] = {
    "cnn": {
        "stem_width": 32,
        "stem_stride": 1,
        "activation": "relu",
        "stages": [
            {"block": "conv", "depth": 1, "width": 32, "kernel": 3, "stride": 2, "se": False},
            {"block": "conv", "depth": 2, "width": 64, "kernel": 3, "stride": 2, "se": False},
            {"block": "conv", "depth": 1, "width": 128, "kernel": 3, "stride": 2, "se": False},
        ],
    },
    "vit": {"patch": 4, "dim": 96, "depth": 4, "heads": 4, "mlp_ratio": 2, "pool": "mean"},
}


@dataclass(kw_only=True)
class AblationContext:
    """One repeat of the table: the run context (its ``seed`` is the repeat's), the baseline
    architecture, the calibration and where the rows deploy; ``baseline`` once it has run."""

    run: RunContext
    spec: ArchSpec
    baseline: Deployed | None = None
    calibration: Calibration | None = None
    target: torch.device = field(default_factory=lambda: torch.device("cpu"))

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

    def plan(
        self,
        *,
        precision: str = "fp32",
        distill: bool = False,
        passes: WindowAccumulator | None = None,
    ) -> TrainingPlan:
        """The config's training recipe at this repeat's seed, in ``precision``; distilled
        from the baseline row's model when ``distill`` (its passes in ``passes``' windows)."""
        s = self.section
        choice = CompressionChoice(
            precision=precision,
            precision_switch_epoch=1,
            distill=distill,
            kd_temperature=s.kd_temperature,
            kd_alpha=s.kd_alpha,
        )
        teacher = None
        if distill:
            assert self.baseline is not None  # the baseline row runs first
            teacher = self.baseline.float_model
        return training_plan(self.run.plan(), choice, teacher=teacher, passes=passes)

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


# -- building blocks ---------------------------------------------------------------------------
def baseline_spec(config: Config, data: DataSplits) -> ArchSpec:
    s: AblateSection = config.ablate
    arch = s.arch or DEFAULT_ARCH[s.family]
    spec = ArchSpec(
        family=s.family,
        in_channels=data.in_channels,
        num_classes=data.num_classes,
        image_size=data.image_size,
        config=arch,
    )
    try:
        build_model(spec)
    except (InvalidArchError, BadInputError) as exc:
        raise ConfigError(f"ablate.arch is not a valid {s.family} architecture: {exc}") from None
    return spec


def student_spec(spec: ArchSpec, width: float) -> ArchSpec:
    """A reduced baseline: CNN widths scaled by ``width``; ViT depth scaled by ``width``."""
    c = copy.deepcopy(spec.config)
    if spec.family == "cnn":
        c["stem_width"] = max(4, round(c["stem_width"] * width))
        for st in c["stages"]:
            st["width"] = max(4, round(st["width"] * width))
    else:
        c["depth"] = max(1, round(c["depth"] * width))
    return ArchSpec(spec.family, spec.in_channels, spec.num_classes, spec.image_size, c)


def train_window(
    ctx: AblationContext, model: nn.Module, name: str, plan: TrainingPlan
) -> Measurement:
    """Train ``model`` in place by ``plan`` inside one meter window called ``name``."""
    windows = MeterWindows(ctx.meter)
    with windows(name):
        train_model(model, ctx.data.train, plan)
    return windows.measurements[-1]


def prune_window(
    ctx: AblationContext, model: nn.Module, ratio: float, finetune: TrainingPlan
) -> tuple[Measurement, dict[str, Any]]:
    """Prune ``model`` in place and fine-tune it by ``finetune`` (the deploy recipe), both in
    one ``finetune`` window; that window and the pruned structure."""
    windows = MeterWindows(ctx.meter)
    structure = prune_and_finetune(
        model,
        ratio=ratio,
        criterion=ctx.section.prune_criterion,
        data=ctx.data.train,
        device=ctx.device,
        seed=ctx.seed,
        finetune=finetune,
        phase=windows,
    )
    return windows.measurements[-1], structure


def quantize_window(
    ctx: AblationContext, model: nn.Module, quantization: str | None = None
) -> tuple[Deployed, Measurement]:
    """``model`` deployed at ``quantization`` (default the row's) on the target by the deploy
    recipe (static INT8 calibrated on 256 training images), in one ``quantize`` window."""
    windows = MeterWindows(ctx.meter)
    deployed = quantize_and_calibrate(
        model,
        quantization or ctx.quantization,
        data=ctx.data.train,
        device=ctx.target,
        phase=windows,
    )
    return deployed, windows.measurements[-1]


def scaled(m: Measurement, factor: float) -> Measurement:
    """``m`` with its energy multiplied by ``factor`` (a teacher's share); named so."""
    return dataclasses.replace(
        m,
        name=f"{m.name}*{factor:.4g}",
        energy_j={k: v * factor for k, v in m.energy_j.items()},
        total_energy_j=m.total_energy_j * factor,
        details={**m.details, "scaled_by": factor},
    )


def teacher_details(
    passes: WindowAccumulator | None, training_kwh: float, amortised_over: int, *, used: bool = True
) -> dict[str, Any]:
    """How a row accounts for its teacher: the forward passes (inside its training windows)
    and the teacher's own training, counted in full (``amortised_over`` 1) or shared."""
    return {
        "teacher_energy_kwh": passes.energy_kwh if passes is not None else None,
        "teacher_batches": passes.count if passes is not None else None,
        "teacher": "baseline row (trained for the purpose)" if used else None,
        "teacher_training_kwh": training_kwh if used else 0.0,
        "teacher_amortised_over": amortised_over if used else None,
        "teacher_training_counted": True,
    }


def teacher_training(ctx: AblationContext) -> list[Measurement]:
    """The teacher's (the baseline's) training windows, shared over ``teacher_amortised_over``."""
    assert ctx.baseline is not None
    n = ctx.section.teacher_amortised_over
    return list(ctx.baseline.train) if n == 1 else [scaled(m, 1.0 / n) for m in ctx.baseline.train]


# -- the rows ----------------------------------------------------------------------------------
def _baseline(ctx: AblationContext) -> Deployed:
    torch.manual_seed(ctx.seed)
    model = build_model(ctx.spec)
    m = train_window(ctx, model, "train", ctx.plan())
    return Deployed(
        model=model.eval(), device=ctx.target, train=[m], details={"arch": ctx.spec.encode()}
    )


def _pruning(ctx: AblationContext) -> Deployed:
    assert ctx.baseline is not None
    model = copy.deepcopy(ctx.baseline.float_model)
    finetune = ctx.finetune_plan(ctx.plan(), ctx.section.finetune_epochs)
    m, _ = prune_window(ctx, model, ctx.section.prune_ratio, finetune)
    details = {"prune_ratio": ctx.section.prune_ratio, "criterion": ctx.section.prune_criterion}
    return Deployed(
        model=model.eval(), device=ctx.target, train=[*ctx.baseline.train, m], details=details
    )


def _quantization(ctx: AblationContext) -> Deployed:
    assert ctx.baseline is not None
    deployed, m = quantize_window(ctx, ctx.baseline.float_model)
    deployed.train = [*ctx.baseline.train, m]
    deployed.details = {"quantization": ctx.quantization}
    return deployed


def _distillation(ctx: AblationContext) -> Deployed:
    torch.manual_seed(ctx.seed)
    spec = student_spec(ctx.spec, ctx.section.student_width)
    student = build_model(spec)
    passes = WindowAccumulator(ctx.meter, TEACHER_WINDOW)
    m = train_window(ctx, student, "train", ctx.plan(distill=True, passes=passes))
    teacher_kwh = total_train(ctx.baseline).energy_kwh  # type: ignore[arg-type]
    details = {
        "student": spec.encode(),
        **teacher_details(passes, teacher_kwh, ctx.section.teacher_amortised_over),
    }
    return Deployed(
        model=student.eval(), device=ctx.target, train=[*teacher_training(ctx), m], details=details
    )


def _mixed_precision(ctx: AblationContext) -> Deployed:
    torch.manual_seed(ctx.seed)
    model = build_model(ctx.spec)
    m = train_window(ctx, model, "train", ctx.plan(precision=ctx.section.precision))
    details = {"precision": ctx.section.precision}
    return Deployed(model=model.eval(), device=ctx.target, train=[m], details=details)


def total_train(deployed: Deployed) -> Measurement:
    return combine(deployed.train, "train")


BUILTIN_TECHNIQUES: tuple[tuple[str, Callable[[AblationContext], Deployed]], ...] = (
    ("baseline", _baseline),
    ("pruning", _pruning),
    ("quantization", _quantization),
    ("distillation", _distillation),
    ("mixed_precision", _mixed_precision),
)  # then "combined" (nas.compression.combined, a metered search over these), "federated"
