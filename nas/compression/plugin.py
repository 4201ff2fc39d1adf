"""Compression and efficient training as part of every trial (``[compression]``, issue 3).

Per trial the sampler picks (parameters ``compression.*`` and ``training.*``): a pruning
ratio and criterion, the deployed model's quantization, the training precision (and, for
dynamic precision, the epoch it switches at) and whether to distil from a teacher (with
temperature and weight). Hooks:

* ``before_train``: autocast schedule and, when distilling, the KD loss (teacher forward
  passes run inside the training window and are also metered on their own).
* ``after_train``: structured pruning + short fine-tune in a ``finetune`` phase, then the
  quantization in a ``quantize`` phase; the quantized model is what is evaluated, measured
  and saved (on the CPU for INT8).
* ``after_eval``: params/FLOPs of the pruned model (quantization keeps the multiply-adds).

Without ``[compression]`` or with ``enabled = false`` nothing changes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

import torch

from nas.compression.distill import TeacherCost, distillation_loss, load_teacher_dir
from nas.compression.precision import autocast_schedule, check_precision_supported
from nas.compression.prune import prune_model
from nas.compression.quantize import deploy_device, quantize
from nas.compression.settings import AblateSection, CompressionSection
from nas.cost import analyze_cost
from nas.errors import ConfigError
from nas.plugins import TrialContext, TrialPlugin
from nas.train import train_model

log = logging.getLogger(__name__)

SECTIONS = {"compression": CompressionSection, "ablate": AblateSection}
STRUCTURE_ATTR = "pruned_structure"
FINETUNE_LR_FACTOR = 0.3  # fine-tuning after pruning restarts the one-cycle schedule lower


@dataclass(frozen=True)
class CompressionChoice:
    """What one trial sampled (also its flat attrs)."""

    prune_ratio: float = 0.0
    prune_criterion: str = ""
    quantization: str = "fp32"
    precision: str = "fp32"
    precision_switch_epoch: int = 0
    distill: bool = False
    kd_temperature: float = 0.0
    kd_alpha: float = 0.0


class CompressionPlugin(TrialPlugin):
    name = "compression"

    def __init__(self, objective: Any, section: CompressionSection) -> None:
        self.objective = objective
        self.section = section
        self.fixed_teacher: torch.nn.Module | None = None
        self._best_teacher: tuple[int, torch.nn.Module] | None = None
        # per-trial runtime state (teacher cost, deployed cost), kept out of ctx.settings,
        # which holds only what was sampled (other plugins fingerprint it)
        self._state: dict[int, dict[str, Any]] = {}
        epochs = objective.config.train.epochs
        if any(p.startswith("dynamic_") for p in section.precision):
            if not [e for e in section.dynamic_switch_epochs if e < epochs]:
                raise ConfigError(
                    f"compression.dynamic_switch_epochs must hold an epoch < train.epochs ({epochs})"
                )
        for precision in section.precision:
            check_precision_supported(precision, objective.device)
        if True in section.distillation and section.teacher != "best":
            self.fixed_teacher = load_teacher_dir(
                section.teacher,
                num_classes=objective.data.num_classes,
                input_shape=objective.input_shape,
            )

    # -- sampling -------------------------------------------------------------------------
    def sample(self, ctx: TrialContext) -> None:
        s, t = self.section, ctx.trial
        ratio = float(t.suggest_categorical("compression.prune_ratio", s.prune_ratios))
        criterion = ""
        if ratio > 0:
            criterion = t.suggest_categorical("compression.prune_criterion", s.prune_criteria)
        quant_choices = tuple(
            q for q in s.quantization if not (q == "int8_static" and ctx.spec.family != "cnn")
        ) or ("int8_dynamic",)
        quant_name = "compression.quantization"
        if quant_choices != s.quantization:  # a family-specific choice list needs its own name
            quant_name += f".{ctx.spec.family}"
        quantization = t.suggest_categorical(quant_name, quant_choices)
        precision = t.suggest_categorical("training.precision", s.precision)
        switch = 0
        if precision.startswith("dynamic_"):
            epochs = ctx.config.train.epochs
            options = tuple(e for e in s.dynamic_switch_epochs if e < epochs)
            switch = int(t.suggest_categorical("training.switch_epoch", options))
        distill = bool(t.suggest_categorical("training.distill", s.distillation))
        temp = alpha = 0.0
        if distill:
            temp = float(t.suggest_categorical("training.kd_temperature", s.kd_temperatures))
            alpha = float(t.suggest_categorical("training.kd_alpha", s.kd_alphas))
        choice = CompressionChoice(
            ratio, criterion, quantization, precision, switch, distill, temp, alpha
        )
        ctx.settings["compression"] = choice
        ctx.attrs.update(asdict(choice))

    # -- hooks ----------------------------------------------------------------------------
    def before_train(self, ctx: TrialContext) -> None:
        choice: CompressionChoice = ctx.settings["compression"]
        schedule = autocast_schedule(choice.precision, switch_epoch=choice.precision_switch_epoch)
        if schedule is not None:
            ctx.train_kwargs["autocast_dtype"] = schedule
        if choice.distill:
            teacher = self._teacher(ctx)
            if teacher is None:
                ctx.attrs.update(distill=False, distill_skipped="no finished trial to teach yet")
            else:
                cost = TeacherCost()
                self._state.setdefault(ctx.trial.number, {})["teacher_cost"] = cost
                params = next(teacher.parameters(), None)
                tdev = params.device if params is not None else torch.device("cpu")
                ctx.train_kwargs["loss_fn"] = distillation_loss(
                    teacher,
                    temperature=choice.kd_temperature,
                    alpha=choice.kd_alpha,
                    meter=ctx.meter,
                    cost=cost,
                    teacher_device=tdev,
                )
        return None

    def after_train(self, ctx: TrialContext) -> None:
        choice: CompressionChoice = ctx.settings["compression"]
        device = ctx.device
        shape = (1, *ctx.input_shape)
        if choice.prune_ratio > 0:
            ctx.attrs.update(
                params_unpruned=ctx.attrs.get("params"), flops_unpruned=ctx.attrs.get("flops")
            )
            ctx.meter.begin_window("finetune")
            try:  # pruning and the fine-tune that recovers from it are one phase
                example = ctx.data.train.tensors[0][:2].to(device)
                structure = prune_model(
                    ctx.model,
                    ratio=choice.prune_ratio,
                    criterion=choice.prune_criterion,
                    example_input=example,
                    seed=ctx.config.study.seed + ctx.trial.number,
                )
                if self.section.finetune_epochs > 0:
                    kwargs = dict(ctx.train_kwargs, epochs=self.section.finetune_epochs)
                    kwargs["lr"] = ctx.train_kwargs["lr"] * FINETUNE_LR_FACTOR
                    train_model(ctx.model, ctx.data.train, **kwargs)
            finally:
                ctx.record(ctx.meter.end_window("finetune"))
            ctx.attrs[STRUCTURE_ATTR] = json.dumps(structure, sort_keys=True)
        state = self._state.setdefault(ctx.trial.number, {})
        cost = state.get("teacher_cost")
        if cost is not None:
            ctx.attrs.update(
                teacher_energy_kwh=cost.energy_kwh,
                teacher_duration_s=cost.duration_s,
                teacher_batches=cost.batches,
            )
        if choice.prune_ratio == 0 and choice.quantization == "fp32":
            return
        state["deployed_cost"] = analyze_cost(ctx.model, shape)
        ctx.meter.begin_window("quantize")
        try:
            n = self.section.calibration_samples
            x = ctx.data.train.tensors[0][:n]
            calib = [x[i : i + 64] for i in range(0, len(x), 64)]
            ctx.eval_model = quantize(
                ctx.model, quantization=choice.quantization, device=device, calibration=calib
            )
        finally:
            ctx.record(ctx.meter.end_window("quantize"))
        ctx.eval_device = deploy_device(choice.quantization, device)

    def after_eval(self, ctx: TrialContext) -> None:
        cost = self._state.pop(ctx.trial.number, {}).get("deployed_cost")
        if cost is None:
            return
        # quantization keeps the multiply-adds; fvcore cannot count INT8 kernels
        ctx.attrs.update(params=cost.params, flops=cost.flops, cost_of="deployed_model")
        ctx.metrics["params"] = float(cost.params)

    # -- the teacher ------------------------------------------------------------------------
    def _teacher(self, ctx: TrialContext) -> torch.nn.Module | None:
        import optuna

        if self.fixed_teacher is not None:
            ctx.attrs["teacher"] = self.section.teacher
            return self.fixed_teacher.to(ctx.device)
        from nas.trial_model import load_trial_model

        study = ctx.trial.study
        done = [
            t
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if "accuracy" in t.user_attrs and "weights_artifact_id" in t.user_attrs
        ]
        if not done:
            return None
        best = max(done, key=lambda t: (t.user_attrs["accuracy"], -t.number))
        if self._best_teacher is None or self._best_teacher[0] != best.number:
            model, _spec = load_trial_model(study, best)
            if best.user_attrs.get("quantization", "fp32") not in ("int8_dynamic", "int8_static"):
                model = model.to(ctx.device)
            self._best_teacher = (best.number, model)
        ctx.attrs["teacher"] = f"trial:{best.number}"
        return self._best_teacher[1]


def make_trial_plugins(objective: Any) -> list[TrialPlugin]:
    section = objective.config.compression
    if not section.enabled:
        return []
    return [CompressionPlugin(objective, section)]
