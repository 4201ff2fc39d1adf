"""Compression and efficient training: structured pruning, quantization, distillation, precision.

The search samples these per trial through :mod:`nas.compression.step` (``[compression]``);
``econas ablate`` (:mod:`nas.ablation`) measures each technique against a baseline.
"""

from __future__ import annotations

from nas.compression.distill import TEACHER_WINDOW, distillation_loss, kd_loss, load_teacher_dir
from nas.compression.precision import autocast_schedule, check_precision_supported
from nas.compression.prune import PrunedAttention, apply_structure, prune_model, pruned_structure
from nas.compression.quantize import CastInput, deploy_device, quantize, skeleton
from nas.compression.restore import deployed_layout
from nas.sections.compression import (
    PRECISIONS,
    PRUNE_CRITERIA,
    QUANTIZATIONS,
    AblateSection,
    CompressionSection,
)

__all__ = [
    "PRECISIONS",
    "PRUNE_CRITERIA",
    "QUANTIZATIONS",
    "AblateSection",
    "CastInput",
    "CompressionSection",
    "PrunedAttention",
    "TEACHER_WINDOW",
    "apply_structure",
    "autocast_schedule",
    "check_precision_supported",
    "deploy_device",
    "deployed_layout",
    "distillation_loss",
    "kd_loss",
    "load_teacher_dir",
    "prune_model",
    "pruned_structure",
    "quantize",
    "skeleton",
]
