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
from nas.compression.quantize import deploy_device
from nas.compression.step import FINETUNE_LR_FACTOR
from nas.config import Config
from nas.data import DataSplits
from nas.energy import Measurement, Meter, WindowAccumulator, combine
from nas.errors import BadInputError, ConfigError, InvalidArchError
from nas.sections.compression import AblateSection
from nas.train import LossFn, train_model
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


@dataclass
class Deployed:
    """What a technique produced: the deployed model, where it runs, and its training windows."""

    model: nn.Module
    device: torch.device
    float_model: nn.Module  # before quantization: params and FLOPs are counted on it
    train: list[Measurement]
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class AblationContext:
    config: Config
    section: AblateSection
    data: DataSplits
    device: torch.device
    meter: Meter
    spec: ArchSpec
    seed: int
    baseline: Deployed | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.data.in_channels, self.data.image_size, self.data.image_size)

    @property
    def quantization(self) -> str:
        q = self.section.quantization
        return (
            q if q != "auto" else ("int8_static" if self.spec.family == "cnn" else "int8_dynamic")
        )


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
    ctx: AblationContext,
    model: nn.Module,
    name: str,
    *,
    precision: str = "fp32",
    loss_fn: LossFn | None = None,
    epochs: int | None = None,
    lr_factor: float = 1.0,
) -> Measurement:
    """Train ``model`` in place inside one meter window called ``name``."""
    t = ctx.config.train
    ctx.meter.begin_window(name)
    try:
        train_model(
            model,
            ctx.data.train,
            epochs=epochs if epochs is not None else t.epochs,
            batch_size=ctx.config.data.batch_size,
            lr=t.lr * lr_factor,
            weight_decay=t.weight_decay,
            optimizer=t.optimizer,
            loss_fn=loss_fn,
            device=ctx.device,
            seed=ctx.seed,
            autocast_dtype=autocast_schedule(precision),
        )
    finally:
        m = ctx.meter.end_window(name)
    return m


def prune_window(
    ctx: AblationContext, model: nn.Module, ratio: float, **train: Any
) -> tuple[Measurement, dict[str, Any]]:
    """Prune ``model`` in place and fine-tune it, both in one ``finetune`` window."""
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
        if ctx.section.finetune_epochs > 0:
            train_model(
                model,
                ctx.data.train,
                epochs=ctx.section.finetune_epochs,
                batch_size=ctx.config.data.batch_size,
                lr=ctx.config.train.lr * FINETUNE_LR_FACTOR,
                weight_decay=ctx.config.train.weight_decay,
                optimizer=ctx.config.train.optimizer,
                device=ctx.device,
                seed=ctx.seed + 1,
                loss_fn=train.get("loss_fn"),
                autocast_dtype=autocast_schedule(train.get("precision", "fp32")),
            )
    finally:
        m = ctx.meter.end_window("finetune")
    return m, structure


def quantize_window(ctx: AblationContext, model: nn.Module) -> tuple[nn.Module, Measurement]:
    """The deployed INT8 copy of ``model`` (calibrated on 256 training images for static)."""
    x = ctx.data.train.tensors[0][:256]
    ctx.meter.begin_window("quantize")
    try:
        q = quantize(
            model,
            quantization=ctx.quantization,
            device=ctx.device,
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


def _teacher_details(passes: WindowAccumulator) -> dict[str, Any]:
    return {
        "teacher_energy_kwh": passes.energy_kwh,
        "teacher_batches": passes.count,
        "teacher_training_counted": False,
    }


# -- the rows ----------------------------------------------------------------------------------
def _baseline(ctx: AblationContext) -> Deployed:
    torch.manual_seed(ctx.seed)
    model = build_model(ctx.spec)
    m = train_window(ctx, model, "train")
    return Deployed(model.eval(), ctx.device, model, [m], {"arch": ctx.spec.encode()})


def _pruning(ctx: AblationContext) -> Deployed:
    assert ctx.baseline is not None
    model = copy.deepcopy(ctx.baseline.float_model)
    m, _ = prune_window(ctx, model, ctx.section.prune_ratio)
    details = {"prune_ratio": ctx.section.prune_ratio, "criterion": ctx.section.prune_criterion}
    return Deployed(model.eval(), ctx.device, model, [*ctx.baseline.train, m], details)


def _quantization(ctx: AblationContext) -> Deployed:
    assert ctx.baseline is not None
    model = ctx.baseline.float_model
    q, m = quantize_window(ctx, model)
    dev = deploy_device(ctx.quantization, ctx.device)
    return Deployed(q, dev, model, [*ctx.baseline.train, m], {"quantization": ctx.quantization})


def _distillation(ctx: AblationContext) -> Deployed:
    torch.manual_seed(ctx.seed)
    spec = student_spec(ctx.spec, ctx.section.student_width)
    student = build_model(spec)
    passes = WindowAccumulator(ctx.meter, TEACHER_WINDOW)
    m = train_window(ctx, student, "train", loss_fn=distill_loss(ctx, passes))
    details = {"student": spec.encode(), **_teacher_details(passes)}
    return Deployed(student.eval(), ctx.device, student, [m], details)


def _mixed_precision(ctx: AblationContext) -> Deployed:
    torch.manual_seed(ctx.seed)
    model = build_model(ctx.spec)
    m = train_window(ctx, model, "train", precision=ctx.section.precision)
    return Deployed(model.eval(), ctx.device, model, [m], {"precision": ctx.section.precision})


def _combined(ctx: AblationContext) -> Deployed:
    """A distilled student (``combined_student_width`` of the baseline) trained in mixed
    precision, pruned and fine-tuned against the same teacher, then quantized."""
    torch.manual_seed(ctx.seed)
    s = ctx.section
    spec = (
        ctx.spec
        if s.combined_student_width >= 1.0
        else student_spec(ctx.spec, s.combined_student_width)
    )
    student = build_model(spec)
    passes = WindowAccumulator(ctx.meter, TEACHER_WINDOW)
    loss = distill_loss(ctx, passes)
    windows = [train_window(ctx, student, "train", precision=s.precision, loss_fn=loss)]
    if s.combined_prune_ratio > 0:
        m, _ = prune_window(
            ctx, student, s.combined_prune_ratio, loss_fn=loss, precision=s.precision
        )
        windows.append(m)
    q, m = quantize_window(ctx, student)
    windows.append(m)
    dev = deploy_device(ctx.quantization, ctx.device)
    details = {
        "student": spec.encode(),
        "precision": s.precision,
        "prune_ratio": s.combined_prune_ratio,
        "quantization": ctx.quantization,
        **_teacher_details(passes),
    }
    return Deployed(q, dev, student.eval(), windows, details)


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
