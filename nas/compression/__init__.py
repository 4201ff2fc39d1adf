"""Compression and efficient training: structured pruning, quantization, distillation, precision.

The search samples these per trial through :mod:`nas.compression.step` (``[compression]``);
``econas ablate`` (:mod:`nas.ablation`) measures each technique against a baseline. All three
runners (a search trial, ``econas train``, ``econas ablate``) train and deploy through one
recipe, :mod:`nas.compression.recipe`.
"""

from __future__ import annotations

from nas.compression.distill import TEACHER_WINDOW, distillation_loss, kd_loss, load_teacher_dir
from nas.compression.precision import autocast_schedule, check_precision_supported
from nas.compression.prune import PrunedAttention, apply_structure, prune_model, pruned_structure
from nas.compression.quantize import CastInput, deploy_device, is_int8, quantize, skeleton
from nas.compression.recipe import (
    CALIBRATION_SAMPLES,
    FINETUNE_LR_FACTOR,
    CompressionChoice,
    MeterWindows,
    calibration_batches,
    deploy,
    finetune_plan,
    place_teacher,
    prune_and_finetune,
    pruned_network,
    quantize_and_calibrate,
    training_plan,
)
from nas.compression.restore import deployed_layout
from nas.sections.compression import (
    PRECISIONS,
    PRUNE_CRITERIA,
    QUANTIZATIONS,
    AblateSection,
    CompressionSection,
)

__all__ = [
    "CALIBRATION_SAMPLES",
    "FINETUNE_LR_FACTOR",
    "PRECISIONS",
    "PRUNE_CRITERIA",
    "QUANTIZATIONS",
    "AblateSection",
    "CastInput",
    "CompressionChoice",
    "CompressionSection",
    "MeterWindows",
    "PrunedAttention",
    "TEACHER_WINDOW",
    "apply_structure",
    "autocast_schedule",
    "calibration_batches",
    "check_precision_supported",
    "deploy",
    "deploy_device",
    "deployed_layout",
    "distillation_loss",
    "finetune_plan",
    "is_int8",
    "kd_loss",
    "load_teacher_dir",
    "place_teacher",
    "prune_and_finetune",
    "prune_model",
    "pruned_network",
    "pruned_structure",
    "quantize",
    "quantize_and_calibrate",
    "skeleton",
    "training_plan",
]
