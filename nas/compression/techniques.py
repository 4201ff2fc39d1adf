"""The rows of ``econas ablate``: baseline, pruning, quantization, distillation, mixed precision,
scheduling (and the two combined rows, in :mod:`nas.compression.paper_combined` and
:mod:`nas.compression.combined`). Registered in :mod:`nas.ablation`, which runs and compares
them.

Each ``fn(ctx)`` returns the :class:`Deployed` model plus every measured training window the
technique needs, each stage in a meter window of the row. How a row trains depends on the
budget (:mod:`nas.compression.row_context`):

* proxy: the config's recipe (:meth:`AblationContext.plan`); pruning prunes the baseline's
  trained model and fine-tunes it, with the deploy recipe (:mod:`nas.compression.recipe`);
* final: as ``econas train`` trains a trial (:func:`train_final`: the final recipe, the pruned
  structure from scratch, the deploy recipe's :func:`~nas.compression.recipe.scratch_model`
  and :func:`~nas.compression.recipe.deploy`), once per row and repeat.

The baseline runs first and its trained model is ``ctx.baseline``: quantization starts from
it (its training windows count in the row), distillation uses it as the teacher (the
teacher's forward passes count, in nested windows too; its training is counted, shared over
``teacher_amortised_over``), and at the proxy budget pruning starts from it too. The
scheduling row is the baseline's job, shifted in time (:mod:`nas.ablation` charges it).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nas.compression.distill import TEACHER_WINDOW
from nas.compression.prune import prune_model
from nas.compression.recipe import (
    CompressionChoice,
    MeterWindows,
    deploy,
    prune_and_finetune,
    quantize_and_calibrate,
    scratch_model,
)
from nas.compression.row_context import (  # re-exported: the rows' context lives there
    AblationContext,
    RowBudget,
    target_quantizations,
)
from nas.config import Config
from nas.data import DataSplits
from nas.energy import Measurement, WindowAccumulator, combine
from nas.errors import BadInputError, ConfigError, InvalidArchError
from nas.sections.compression import AblateSection
from nas.train import TrainingPlan, train_model
from nas.trial import Deployed
from search_spaces import ArchSpec, build_model

__all__ = [
    "BUILTIN_TECHNIQUES",
    "DEFAULT_ARCH",
    "AblationContext",
    "Deployed",
    "RowBudget",
    "baseline_spec",
    "student_spec",
    "target_quantizations",
    "total_train",
    "train_final",
]

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


def pruned_structure_for(spec: ArchSpec, ratio: float, criterion: str, seed: int) -> dict[str, Any]:
    """The structure ``ratio`` prunes ``spec``'s network to (every group loses the same share,
    so the widths do not depend on the weights): what a pruned row trains from scratch."""
    torch.manual_seed(seed)
    model = build_model(spec)
    example = torch.zeros(2, spec.in_channels, spec.image_size, spec.image_size)
    return prune_model(model, ratio=ratio, criterion=criterion, example_input=example, seed=seed)


def train_final(
    ctx: AblationContext,
    spec: ArchSpec,
    choice: CompressionChoice,
    *,
    structure: dict[str, Any] | None = None,
    passes: WindowAccumulator | None = None,
) -> Deployed:
    """``spec`` (pruned to ``structure``) trained as ``econas train`` trains a trial: the final
    recipe (``ctx.base_plan()``) as ``choice`` trains it, from scratch, on the whole training
    split, in one ``train`` window; then deployed as ``choice`` says (quantized only: the
    structure was trained as it is), in a ``quantize`` window. ``train`` holds both windows."""
    torch.manual_seed(ctx.seed)
    model, plan = scratch_model(
        spec, structure, choice, ctx.base_plan(), teacher=ctx.teacher(choice), passes=passes
    )
    windows = MeterWindows(ctx.meter)
    with windows("train"):
        train_model(model, ctx.data.train, plan)
    deployed = deploy(
        model,
        choice,
        data=ctx.data.train,
        device=ctx.target,
        seed=ctx.seed,
        phase=windows,
        pruned_before_training=True,
    )
    deployed.model.eval()
    deployed.train = list(windows.measurements)
    return deployed


# -- the rows ----------------------------------------------------------------------------------
def _baseline(ctx: AblationContext) -> Deployed:
    details = {"arch": ctx.spec.encode()}
    if ctx.final:
        deployed = train_final(ctx, ctx.spec, ctx.choice())
        deployed.details = details
        return deployed
    torch.manual_seed(ctx.seed)
    model = build_model(ctx.spec)
    m = train_window(ctx, model, "train", ctx.plan())
    return Deployed(model=model.eval(), device=ctx.target, train=[m], details=details)


def _pruning(ctx: AblationContext) -> Deployed:
    assert ctx.baseline is not None
    s = ctx.section
    details: dict[str, Any] = {"prune_ratio": s.prune_ratio, "criterion": s.prune_criterion}
    if ctx.final:  # the pruned structure trained from scratch, as econas train does
        structure = pruned_structure_for(ctx.spec, s.prune_ratio, s.prune_criterion, ctx.seed)
        deployed = train_final(
            ctx, ctx.spec, ctx.choice(prune_ratio=s.prune_ratio), structure=structure
        )
        deployed.details = {**details, "trained": "pruned structure, from scratch"}
        return deployed
    model = copy.deepcopy(ctx.baseline.float_model)
    finetune = ctx.finetune_plan(ctx.plan(), s.finetune_epochs)
    m, _ = prune_window(ctx, model, s.prune_ratio, finetune)
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
    spec = student_spec(ctx.spec, ctx.section.student_width)
    passes = WindowAccumulator(ctx.meter, TEACHER_WINDOW)
    if ctx.final:
        deployed = train_final(ctx, spec, ctx.choice(distill=True), passes=passes)
        student, own = deployed.model, deployed.train
    else:
        torch.manual_seed(ctx.seed)
        student = build_model(spec)
        own = [train_window(ctx, student, "train", ctx.plan(distill=True, passes=passes))]
    teacher_kwh = total_train(ctx.baseline).energy_kwh  # type: ignore[arg-type]
    details = {
        "student": spec.encode(),
        **teacher_details(passes, teacher_kwh, ctx.section.teacher_amortised_over),
    }
    return Deployed(
        model=student.eval(),
        device=ctx.target,
        train=[*teacher_training(ctx), *own],
        details=details,
    )


def _mixed_precision(ctx: AblationContext) -> Deployed:
    details = {"precision": ctx.section.precision}
    if ctx.final:
        deployed = train_final(ctx, ctx.spec, ctx.choice(precision=ctx.section.precision))
        deployed.details = details
        return deployed
    torch.manual_seed(ctx.seed)
    model = build_model(ctx.spec)
    m = train_window(ctx, model, "train", ctx.plan(precision=ctx.section.precision))
    return Deployed(model=model.eval(), device=ctx.target, train=[m], details=details)


SAME_AS = "same_as_row"  # details key: the row is another row's model, measured once


def _scheduling(ctx: AblationContext) -> Deployed:
    """The baseline's training job, unchanged, shifted in time by econas's carbon-aware
    policy: the same model and energy (measured once, in the baseline row)."""
    assert ctx.baseline is not None
    b = ctx.baseline
    return Deployed(
        model=b.model,
        device=b.device,
        float_model=b.float_model,
        train=list(b.train),
        details={SAME_AS: "baseline", "scheduled": True},
    )


def total_train(deployed: Deployed) -> Measurement:
    return combine(deployed.train, "train")


BUILTIN_TECHNIQUES: tuple[tuple[str, Callable[[AblationContext], Deployed]], ...] = (
    ("baseline", _baseline),
    ("pruning", _pruning),
    ("quantization", _quantization),
    ("distillation", _distillation),
    ("mixed_precision", _mixed_precision),
    ("scheduling", _scheduling),
)  # then "paper_combined" (the paper's fixed combination), "combined" (a metered search
#   over these: nas.compression.combined), "federated"
