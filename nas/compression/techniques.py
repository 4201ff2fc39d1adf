"""The rows of ``econas ablate``: baseline, pruning, quantization, distillation, mixed precision,
combined. Registered in :mod:`nas.ablation`, which runs and compares them.

Each ``fn(ctx)`` returns the :class:`Deployed` model plus every measured training window the
technique needs. The baseline runs first and its trained model is ``ctx.baseline``: pruning
and quantization start from it (its training windows count in theirs), distillation uses it
as the teacher (the teacher's forward passes count, in nested windows too; the teacher's
own training is the baseline row's and is not counted again).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nas.compression import (
    TEACHER_WINDOW,
    autocast_schedule,
    distillation_loss,
    prune_model,
    quantize,
)
from nas.compression.calibrate import Calibration
from nas.compression.quantize import INT8
from nas.compression.step import FINETUNE_LR_FACTOR
from nas.config import Config
from nas.context import RunContext
from nas.data import DataSplits
from nas.energy import Measurement, Meter, WindowAccumulator, combine
from nas.errors import BadInputError, ConfigError, InvalidArchError
from nas.sections.compression import AblateSection
from nas.train import LossFn, TrainingPlan, train_model
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

    def plan(self, *, precision: str = "fp32", loss_fn: LossFn | None = None) -> TrainingPlan:
        """The config's training recipe at this repeat's seed, in ``precision``."""
        plan = self.run.plan()
        schedule = autocast_schedule(precision)
        if schedule is not None:
            plan = plan.replace(autocast_dtype=schedule)
        return plan if loss_fn is None else plan.replace(loss_fn=loss_fn)

    def deploy_device(self, quantization: str) -> torch.device:
        """Where a model deployed at ``quantization`` runs: INT8 on the CPU, else the target."""
        return torch.device("cpu") if quantization in INT8 else self.target

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
    ctx.meter.begin_window(name)
    try:
        train_model(model, ctx.data.train, plan)
    finally:
        m = ctx.meter.end_window(name)
    return m


def finetune_plan(ctx: AblationContext, plan: TrainingPlan, epochs: int) -> TrainingPlan:
    """The fine-tune after pruning: ``plan`` for ``epochs`` at a lower rate, its own seed."""
    return plan.replace(epochs=epochs, lr=plan.lr * FINETUNE_LR_FACTOR, seed=ctx.seed + 1)


def prune_window(
    ctx: AblationContext, model: nn.Module, ratio: float, finetune: TrainingPlan
) -> tuple[Measurement, dict[str, Any]]:
    """Prune ``model`` in place and fine-tune it by ``finetune``, both in one ``finetune``
    window."""
    model.to(ctx.device)
    ctx.meter.begin_window("finetune")
    try:
        example = ctx.data.train.tensors[0][:2].to(ctx.device)
        structure = prune_model(
            model,
            ratio=ratio,
            criterion=ctx.section.prune_criterion,
            example_input=example,
            seed=ctx.seed,
        )
        if finetune.epochs > 0:
            train_model(model, ctx.data.train, finetune)
    finally:
        m = ctx.meter.end_window("finetune")
    return m, structure


def quantize_window(
    ctx: AblationContext, model: nn.Module, quantization: str | None = None
) -> tuple[nn.Module, Measurement]:
    """The deployed copy of ``model`` at ``quantization`` (default the row's), on
    :meth:`AblationContext.deploy_device` (static INT8 calibrated on 256 training images)."""
    x = ctx.data.train.tensors[0][:256]
    ctx.meter.begin_window("quantize")
    try:
        q = quantize(
            model,
            quantization=quantization or ctx.quantization,
            device=ctx.target,
            calibration=[x[i : i + 64] for i in range(0, len(x), 64)],
        )
    finally:
        m = ctx.meter.end_window("quantize")
    return q, m


def distill_loss(ctx: AblationContext, passes: WindowAccumulator) -> LossFn:
    assert ctx.baseline is not None  # the baseline row runs first
    teacher = ctx.baseline.float_model.to(ctx.device)
    return distillation_loss(
        teacher,
        temperature=ctx.section.kd_temperature,
        alpha=ctx.section.kd_alpha,
        passes=passes,
    )


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
    finetune = finetune_plan(ctx, ctx.plan(), ctx.section.finetune_epochs)
    m, _ = prune_window(ctx, model, ctx.section.prune_ratio, finetune)
    details = {"prune_ratio": ctx.section.prune_ratio, "criterion": ctx.section.prune_criterion}
    return Deployed(
        model=model.eval(), device=ctx.target, train=[*ctx.baseline.train, m], details=details
    )


def _quantization(ctx: AblationContext) -> Deployed:
    assert ctx.baseline is not None
    model = ctx.baseline.float_model
    q, m = quantize_window(ctx, model)
    return Deployed(
        model=q,
        device=ctx.deploy_device(ctx.quantization),
        float_model=model,
        train=[*ctx.baseline.train, m],
        details={"quantization": ctx.quantization},
    )


def _distillation(ctx: AblationContext) -> Deployed:
    torch.manual_seed(ctx.seed)
    spec = student_spec(ctx.spec, ctx.section.student_width)
    student = build_model(spec)
    passes = WindowAccumulator(ctx.meter, TEACHER_WINDOW)
    m = train_window(ctx, student, "train", ctx.plan(loss_fn=distill_loss(ctx, passes)))
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


def _combined(ctx: AblationContext) -> Deployed:
    """Chosen by a small metered search: :mod:`nas.compression.combined`."""
    from nas.compression.combined import select_combined

    return select_combined(ctx)


def total_train(deployed: Deployed) -> Measurement:
    return combine(deployed.train, "train")


BUILTIN_TECHNIQUES: tuple[tuple[str, Callable[[AblationContext], Deployed]], ...] = (
    ("baseline", _baseline),
    ("pruning", _pruning),
    ("quantization", _quantization),
    ("distillation", _distillation),
    ("mixed_precision", _mixed_precision),
    ("combined", _combined),
)
