"""``[compression]`` (what a trial may sample) and ``[ablate]`` (``econas ablate``).

Both are checked as strictly as the built-in sections: a value that cannot work (a pruning
ratio outside [0, 1), an unknown quantization, a teacher file that does not exist) is a
:class:`~nas.errors.ConfigError` before any training starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.errors import ConfigError

PRUNE_CRITERIA = ("l1", "l2", "lamp", "random")
QUANTIZATIONS = ("fp32", "fp16", "bf16", "int8_dynamic", "int8_static")
PRECISIONS = ("fp32", "amp_bf16", "amp_fp16", "dynamic_bf16", "dynamic_fp16")
TEACHER_FILES = ("arch_spec.json", "model.pt")


def _check_subset(key: str, values: tuple[Any, ...], allowed: tuple[str, ...]) -> None:
    if not values:
        raise ConfigError(f"compression.{key} must list at least one choice")
    if len(set(values)) != len(values):
        raise ConfigError(f"compression.{key} lists a choice twice")
    for v in values:
        if v not in allowed:
            raise ConfigError(f"compression.{key}: {v!r} is unknown; use one of {list(allowed)}")


FORCEABLE = ("bf16", "fp16", "int8_dynamic", "int8_static")


def check_calibration(where: str, force: tuple[str, ...], rounds: int, min_s: float) -> None:
    for name in force:
        if name not in FORCEABLE:
            raise ConfigError(f"{where}.force: {name!r} is unknown; use some of {list(FORCEABLE)}")
    if rounds < 1 or not (min_s > 0 and math.isfinite(min_s)):
        raise ConfigError(
            f"{where}.calibration_rounds must be >= 1 and calibration_min_duration_s > 0"
        )


def check_ratio(where: str, ratio: float) -> None:
    if not (0.0 <= ratio < 1.0) or not math.isfinite(ratio):
        raise ConfigError(f"{where} {ratio!r} must be in [0, 1)")


def check_teacher(where: str, teacher: str) -> None:
    """``best`` or a directory written by ``econas export --format state_dict``."""
    if teacher == "best":
        return
    path = Path(teacher)
    if not path.is_dir():
        raise ConfigError(f"{where}: teacher {teacher!r} is neither 'best' nor a directory")
    missing = [f for f in TEACHER_FILES if not (path / f).is_file()]
    if missing:
        raise ConfigError(
            f"{where}: teacher directory {teacher!r} lacks {missing} "
            "(write it with `econas export --format state_dict`)"
        )


@dataclass(frozen=True)
class CompressionSection:
    """Per-trial compression and efficient-training choices sampled by the search.

    Each list is a set of choices for the sampler (one choice = fixed). ``prune_ratios``
    include 0.0 for "not pruned"; ``precision`` is the training precision (``amp_*`` autocast
    from the first epoch, ``dynamic_*`` FP32 until a sampled epoch of
    ``dynamic_switch_epochs`` then autocast); ``quantization`` the deployed model's.
    ``teacher`` is ``best`` (the most accurate finished trial of the study so far) or an
    ``econas export --format state_dict`` directory.
    """

    enabled: bool = False
    prune_ratios: tuple[float, ...] = (0.0, 0.25, 0.5)
    prune_criteria: tuple[str, ...] = ("l1", "l2")
    finetune_epochs: int = 1
    quantization: tuple[str, ...] = ("fp32", "int8_dynamic", "int8_static")
    precision: tuple[str, ...] = ("fp32", "amp_bf16", "dynamic_bf16")
    dynamic_switch_epochs: tuple[int, ...] = (1,)
    distillation: tuple[bool, ...] = (False, True)
    teacher: str = "best"
    kd_temperatures: tuple[float, ...] = (2.0, 4.0)
    kd_alphas: tuple[float, ...] = (0.5, 0.9)
    calibration_samples: int = 256
    calibrate: bool = True
    force: tuple[str, ...] = ()
    calibration_rounds: int = 5
    calibration_min_duration_s: float = 0.1
    teacher_amortised_over: int = 1

    def check(self) -> None:
        if self.teacher_amortised_over < 1:
            raise ConfigError("compression.teacher_amortised_over must be >= 1")
        check_calibration(
            "compression", self.force, self.calibration_rounds, self.calibration_min_duration_s
        )
        if not self.prune_ratios:
            raise ConfigError("compression.prune_ratios must list at least one ratio")
        for r in self.prune_ratios:
            check_ratio("compression.prune_ratios:", r)
        _check_subset("prune_criteria", self.prune_criteria, PRUNE_CRITERIA)
        _check_subset("quantization", self.quantization, QUANTIZATIONS)
        _check_subset("precision", self.precision, PRECISIONS)
        if self.finetune_epochs < 0:
            raise ConfigError("compression.finetune_epochs must be >= 0")
        if not self.dynamic_switch_epochs or min(self.dynamic_switch_epochs) < 1:
            raise ConfigError("compression.dynamic_switch_epochs must list epochs >= 1")
        if not self.distillation or len(set(self.distillation)) != len(self.distillation):
            raise ConfigError("compression.distillation must list true and/or false once each")
        if not self.kd_temperatures or min(self.kd_temperatures) <= 0:
            raise ConfigError("compression.kd_temperatures must list temperatures > 0")
        if not self.kd_alphas or not all(0.0 <= a <= 1.0 for a in self.kd_alphas):
            raise ConfigError("compression.kd_alphas must list weights in [0, 1]")
        if self.calibration_samples < 1:
            raise ConfigError("compression.calibration_samples must be >= 1")
        if self.enabled and True in self.distillation:
            check_teacher("compression.teacher", self.teacher)


@dataclass(frozen=True)
class AblateSection:
    """Settings of ``econas ablate``: the baseline, each technique's setting, the lifecycle.

    ``family``/``arch`` give the baseline ArchSpec config (empty ``arch``: the family's
    default baseline in :mod:`nas.ablation`). ``quantization = "auto"`` is ``int8_static``
    for CNNs and ``int8_dynamic`` for ViTs. The lifecycle is one training plus
    ``inference_predictions`` predictions served in batches of ``inference_batch_size``;
    inference is measured in ``inference_rounds`` rounds interleaved over the rows (median).
    ``combined`` is chosen by a small metered search (:mod:`nas.compression.combined`) over
    training precision, distillation (``select_distillation``), pruning ratio
    (``select_prune_ratios``), fine-tune epochs (``select_finetune_epochs``) and what the
    deployment target runs: the largest lifecycle-energy cut within
    ``max_accuracy_loss_pts`` of the baseline's validation accuracy. (``combined_student_width``
    and ``combined_prune_ratio`` are kept for old configs; the search does not read them.)
    ``calibrate``/``force``/``calibration_*``: as in ``[compression]``. A teacher's training is
    counted in the rows that use it, shared over ``teacher_amortised_over`` students.
    ``threads``: CPU threads for every row (1 by default: on a shared CPU, OpenMP threads
    spinning while they wait for each other inflate the CPU time the estimate meter counts);
    0 keeps torch's default.

    ``budget``: ``proxy`` (rows train by ``[train]`` on ``[data]``'s subsets) or ``final``
    (as ``econas train`` trains: ``[final]`` epochs on the whole training split less a
    validation split of ``select_val_size`` images, tested on ``[final] test_size``; the
    combined row's candidates ranked at the ``[train]`` recipe on ``[data] train_size``
    images). Carbon: every row's jobs are charged the intensity of ``trace`` (a shipped name or
    CSV) averaged over every start hour; the scheduling, paper_combined and combined rows'
    training is shifted by ``schedule_policy`` on the causal ``schedule_forecast`` within
    ``window_hours``. ``paper_combined`` is the paper's fixed recipe: ``prune_ratio`` and the
    quantization row's setting, scheduled.
    """

    family: str = "cnn"
    arch: dict[str, Any] = field(default_factory=dict)
    repeats: int = 1
    inference_predictions: int = 1_000_000
    inference_batch_size: int = 32
    inference_min_duration_s: float = 0.5
    inference_rounds: int = 3
    prune_ratio: float = 0.5
    prune_criterion: str = "l1"
    finetune_epochs: int = 1
    quantization: str = "auto"
    precision: str = "amp_bf16"
    student_width: float = 0.5
    kd_temperature: float = 2.0
    kd_alpha: float = 0.3
    combined_student_width: float = 1.0
    combined_prune_ratio: float = 0.2
    threads: int = 1
    calibrate: bool = True
    force: tuple[str, ...] = ()
    calibration_rounds: int = 5
    calibration_min_duration_s: float = 0.1
    max_accuracy_loss_pts: float = 1.5
    select_prune_ratios: tuple[float, ...] = (0.0, 0.3, 0.5)
    select_finetune_epochs: tuple[int, ...] = (1,)
    select_distillation: tuple[bool, ...] = (False, True)
    select_inference_min_duration_s: float = 0.3
    teacher_amortised_over: int = 1
    budget: str = "proxy"
    select_val_size: int = 5000
    trace: str = "gb_2020"
    window_hours: float = 24.0
    schedule_policy: str = "pause-resume"
    schedule_forecast: str = "seasonal"

    def check(self) -> None:
        check_calibration(
            "ablate", self.force, self.calibration_rounds, self.calibration_min_duration_s
        )
        self._check_budget_and_grid()
        if not (self.max_accuracy_loss_pts >= 0 and math.isfinite(self.max_accuracy_loss_pts)):
            raise ConfigError("ablate.max_accuracy_loss_pts must be a number >= 0")
        if not self.select_prune_ratios or not self.select_finetune_epochs:
            raise ConfigError("ablate.select_prune_ratios and select_finetune_epochs need a value")
        for r in self.select_prune_ratios:
            check_ratio("ablate.select_prune_ratios:", r)
        if min(self.select_finetune_epochs) < 0 or not self.select_distillation:
            raise ConfigError(
                "ablate.select_finetune_epochs must be >= 0 and select_distillation non-empty"
            )
        if not self.select_inference_min_duration_s > 0 or self.teacher_amortised_over < 1:
            raise ConfigError(
                "ablate.select_inference_min_duration_s must be > 0, teacher_amortised_over >= 1"
            )
        if self.family not in ("cnn", "vit"):
            raise ConfigError(f"ablate.family {self.family!r} must be cnn or vit")
        if self.repeats < 1 or self.inference_predictions < 0 or self.inference_batch_size < 1:
            raise ConfigError(
                "ablate.repeats, inference_batch_size must be >= 1 (predictions >= 0)"
            )
        if not self.inference_min_duration_s > 0 or self.inference_rounds < 1:
            raise ConfigError(
                "ablate.inference_min_duration_s must be > 0 and inference_rounds >= 1"
            )
        check_ratio("ablate.prune_ratio", self.prune_ratio)
        check_ratio("ablate.combined_prune_ratio", self.combined_prune_ratio)
        if self.prune_criterion not in PRUNE_CRITERIA:
            raise ConfigError(f"ablate.prune_criterion must be one of {list(PRUNE_CRITERIA)}")
        if self.quantization != "auto" and self.quantization not in QUANTIZATIONS[1:]:
            raise ConfigError(
                f"ablate.quantization must be auto or one of {list(QUANTIZATIONS[1:])}"
            )
        if self.precision not in PRECISIONS[1:]:
            raise ConfigError(f"ablate.precision must be one of {list(PRECISIONS[1:])}")
        if not 0.0 < self.student_width < 1.0:
            raise ConfigError("ablate.student_width must be in (0, 1)")
        if not 0.0 < self.combined_student_width <= 1.0:
            raise ConfigError("ablate.combined_student_width must be in (0, 1]")
        if self.threads < 0:
            raise ConfigError("ablate.threads must be >= 0 (0: torch's default)")
        if self.kd_temperature <= 0 or not 0.0 <= self.kd_alpha <= 1.0:
            raise ConfigError("ablate.kd_temperature must be > 0 and kd_alpha in [0, 1]")
        if self.finetune_epochs < 0:
            raise ConfigError("ablate.finetune_epochs must be >= 0")

    def _check_budget_and_grid(self) -> None:
        if self.budget not in ABLATE_BUDGETS:
            raise ConfigError(
                f"ablate.budget {self.budget!r} is unknown; use {list(ABLATE_BUDGETS)}"
            )
        if self.select_val_size < 1:
            raise ConfigError("ablate.select_val_size must be >= 1")
        if not self.trace.strip():
            raise ConfigError("ablate.trace must name a shipped trace (gb_2020, fr_2020) or a CSV")
        if not (self.window_hours > 0 and math.isfinite(self.window_hours)):
            raise ConfigError("ablate.window_hours must be a positive number of hours")
        if self.schedule_policy not in ABLATE_POLICIES:
            raise ConfigError(
                f"ablate.schedule_policy {self.schedule_policy!r} is unknown; "
                f"use {list(ABLATE_POLICIES)}"
            )
        if self.schedule_forecast not in ABLATE_FORECASTS:
            raise ConfigError(
                f"ablate.schedule_forecast {self.schedule_forecast!r} is unknown; use "
                f"{list(ABLATE_FORECASTS)} (the oracle is shown beside it, as an upper bound)"
            )
        if 0.0 not in self.select_prune_ratios or False not in self.select_distillation:
            raise ConfigError(
                "ablate.select_prune_ratios must include 0.0 and select_distillation false: "
                "the baseline's own setting is what the combined row is judged against"
            )


ABLATE_BUDGETS = ("proxy", "final")
ABLATE_POLICIES = ("flexible-start", "pause-resume")  # econas's carbon-aware policies
ABLATE_FORECASTS = ("seasonal", "persistence")  # causal: what econas ships
