"""Compression and efficient training as a step of every trial (``[compression]``).

Per trial the sampler picks (parameters ``compression.*`` and ``training.*``): a pruning
ratio and criterion, the deployed model's quantization, the training precision (and, for
dynamic precision, the epoch it switches at) and whether to distil from a teacher (with
temperature and weight). Hooks:

* ``plan``: the autocast schedule and, when distilling, the KD loss; the teacher's forward
  passes run inside the ``train`` phase, each in a ``teacher`` window whose totals are
  reported (``teacher_energy_kwh``), never added again.
* ``deploy`` (the deploy recipe, :mod:`nas.compression.recipe`): structured pruning + a
  short fine-tune in phase ``finetune``, then the quantization in phase ``quantize``; the
  quantized model is what is evaluated, measured and saved (on the CPU for INT8), and its
  params/FLOPs are those of the pruned model (quantization keeps the multiply-adds; fvcore
  cannot count INT8 kernels).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from nas.compression.distill import TEACHER_WINDOW, load_teacher_dir
from nas.compression.precision import check_precision_supported
from nas.compression.quantize import is_int8
from nas.compression.recipe import (
    FINETUNE_LR_FACTOR,
    CompressionChoice,
    deploy,
    finetune_plan,
    training_plan,
)
from nas.energy import WindowAccumulator
from nas.errors import ConfigError
from nas.record import Compression, TrialAttrs, TrialRecord, phase_key
from nas.train import TrainingPlan
from nas.trial import Deployed, RunningTrial, Step

if TYPE_CHECKING:  # pragma: no cover
    from nas.context import RunContext

# study -> (number, loader of its deployed model) of the most accurate finished trial, or None
TeacherLoader = Callable[[Any], "tuple[int, Callable[[], torch.nn.Module]] | None"]

__all__ = ["FINETUNE_LR_FACTOR", "CompressionChoice", "CompressionStep", "TeacherLoader"]


class CompressionStep(Step):
    name = "compression"

    def __init__(self, context: RunContext, *, best_teacher: TeacherLoader | None = None) -> None:
        self.section = section = context.config.compression
        self.best_teacher = best_teacher
        self.fixed_teacher: torch.nn.Module | None = None
        self._teacher_cache: tuple[int, torch.nn.Module] | None = None
        self._passes: dict[int, WindowAccumulator] = {}
        epochs = context.config.train.epochs
        if any(p.startswith("dynamic_") for p in section.precision):
            if not [e for e in section.dynamic_switch_epochs if e < epochs]:
                raise ConfigError(
                    f"compression.dynamic_switch_epochs must hold an epoch < train.epochs ({epochs})"
                )
        for precision in section.precision:
            check_precision_supported(precision, context.device)
        if True in section.distillation and section.teacher != "best":
            self.fixed_teacher = load_teacher_dir(
                section.teacher,
                num_classes=context.data.num_classes,
                input_shape=context.input_shape,
            )

    def sample(self, t: RunningTrial) -> CompressionChoice:
        s, trial = self.section, t.trial
        ratio = float(trial.suggest_categorical("compression.prune_ratio", s.prune_ratios))
        criterion = ""
        if ratio > 0:
            criterion = trial.suggest_categorical("compression.prune_criterion", s.prune_criteria)
        quant_choices = tuple(
            q for q in s.quantization if not (q == "int8_static" and t.spec.family != "cnn")
        ) or ("int8_dynamic",)
        quant_name = "compression.quantization"
        if quant_choices != s.quantization:  # a family-specific choice list needs its own name
            quant_name += f".{t.spec.family}"
        quantization = trial.suggest_categorical(quant_name, quant_choices)
        precision = trial.suggest_categorical("training.precision", s.precision)
        switch = 0
        if precision.startswith("dynamic_"):
            options = tuple(e for e in s.dynamic_switch_epochs if e < t.config.train.epochs)
            switch = int(trial.suggest_categorical("training.switch_epoch", options))
        distill = bool(trial.suggest_categorical("training.distill", s.distillation))
        temp = alpha = 0.0
        if distill:
            temp = float(trial.suggest_categorical("training.kd_temperature", s.kd_temperatures))
            alpha = float(trial.suggest_categorical("training.kd_alpha", s.kd_alphas))
        choice = CompressionChoice(
            ratio, criterion, quantization, precision, switch, distill, temp, alpha
        )
        t.record(choice.attrs())
        return choice

    def plan(self, t: RunningTrial, plan: TrainingPlan) -> TrainingPlan:
        """The trial's precision and, when it distils, the KD loss (the deploy recipe's)."""
        choice: CompressionChoice = t.settings[self.name]
        teacher = self._teacher(t) if choice.distill else None
        passes = None
        if teacher is not None:
            passes = WindowAccumulator(t.meter, TEACHER_WINDOW)
            self._passes = {t.number: passes}  # one trial at a time: drop a failed trial's
        elif choice.distill:
            t.record(
                {
                    Compression.distill: False,
                    Compression.distill_skipped: "no finished trial to teach yet",
                }
            )
        return training_plan(plan, choice, teacher=teacher, passes=passes)

    def after_train(self, t: RunningTrial) -> None:
        self._record_teacher(t)

    def _record_teacher(self, t: RunningTrial, *, done: bool = False) -> None:
        """The teacher passes so far (training, then the fine-tune too)."""
        passes = self._passes.pop(t.number, None) if done else self._passes.get(t.number)
        if passes is not None:
            t.record(
                {
                    Compression.teacher_energy_kwh: passes.energy_kwh,
                    Compression.teacher_duration_s: passes.duration_s,
                    Compression.teacher_batches: passes.count,
                }
            )

    def deploy(self, t: RunningTrial, model: torch.nn.Module) -> Deployed | None:
        try:
            return self._deploy(t, model)
        finally:
            self._record_teacher(t, done=True)

    def _deploy(self, t: RunningTrial, model: torch.nn.Module) -> Deployed | None:
        """Pruning and the fine-tune that recovers from it (phase ``finetune``), then the
        quantization (phase ``quantize``): the deploy recipe, params and FLOPs counted."""
        choice: CompressionChoice = t.settings[self.name]
        if not choice.compresses:
            return None
        if choice.prune_ratio > 0:
            t.record(
                {
                    Compression.params_unpruned: t.attrs.get(TrialAttrs.params),
                    Compression.flops_unpruned: t.attrs.get(TrialAttrs.flops),
                }
            )
        epochs = self.section.finetune_epochs
        finetune = finetune_plan(t.plan, epochs) if epochs > 0 and t.plan is not None else None

        def pruned(structure: dict[str, Any]) -> None:
            t.record({Compression.pruned_structure: json.dumps(structure, sort_keys=True)})

        return deploy(
            model,
            choice,
            data=t.data.train,
            device=t.device,
            seed=t.seed,
            phase=t.phase,
            finetune=finetune,
            calibration_samples=self.section.calibration_samples,
            cost_input_shape=(1, *t.input_shape),
            on_pruned=pruned,
        )

    # -- the teacher ------------------------------------------------------------------------
    def _teacher_training(self, t: RunningTrial, kwh: float | None, source: str) -> None:
        """The teacher's own training energy, shared over ``teacher_amortised_over`` students:
        recorded with the student (the teacher trial's energy is in the study's search cost
        already; the share is what this model's lifecycle owes its teacher)."""
        n = self.section.teacher_amortised_over
        t.record(
            {
                Compression.teacher_training_kwh: kwh,
                Compression.teacher_amortised_over: n,
                Compression.teacher_training_share_kwh: None if kwh is None else kwh / n,
                Compression.teacher_training_source: source,
            }
        )

    def _teacher(self, t: RunningTrial) -> torch.nn.Module | None:
        if self.fixed_teacher is not None:
            t.record({Compression.teacher: self.section.teacher})
            kwh = teacher_dir_training_kwh(self.section.teacher)
            self._teacher_training(
                t,
                kwh,
                "carbon_label.json of the export"
                if kwh is not None
                else "unknown: the export has no carbon_label.json",
            )
            return self.fixed_teacher.to(t.device)
        if self.best_teacher is None:
            return None
        found = self.best_teacher(t.trial.study)
        if found is None:
            return None
        number, load = found
        if self._teacher_cache is None or self._teacher_cache[0] != number:
            model = load()
            if not is_int8(model):
                model = model.to(t.device)
            self._teacher_cache = (number, model)
        t.record({Compression.teacher: f"trial:{number}"})
        rec = TrialRecord.of(t.trial.study.trials[number])
        parts = [rec.num(phase_key(p, "energy_kwh")) for p in ("train", "finetune")]
        known = [x for x in parts if x is not None]
        self._teacher_training(
            t, sum(known) if known else None, f"trial:{number} train+finetune phases"
        )
        return self._teacher_cache[1]


def teacher_dir_training_kwh(path: str) -> float | None:
    """The training energy of an exported model's weights (its ``carbon_label.json``)."""
    import json
    from pathlib import Path

    try:
        label = json.loads((Path(path) / "carbon_label.json").read_text())
    except (OSError, ValueError):
        return None
    shipped = label.get("final_training") if label.get("weights") == "final" else None
    shipped = shipped or label.get("proxy_training") or {}
    kwh = shipped.get("energy_kwh")
    return float(kwh) if isinstance(kwh, int | float) else None
