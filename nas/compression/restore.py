"""Rebuild what a trial deployed: its pruned structure, then its quantization's module layout.

The trial's saved state_dict (``torch.load(weights_only=True)``) then loads into the result,
so ``econas export --trial N`` gives exactly the model the trial evaluated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from torch import nn

from nas.compression.prune import apply_structure
from nas.compression.quantize import skeleton
from nas.errors import BadInputError
from nas.record import Compression, TrialRecord


def deployed_layout(
    model: nn.Module, attrs: TrialRecord | Mapping[str, Any], *, input_shape: tuple[int, int, int]
) -> nn.Module:
    """``model`` (freshly built from the trial's ArchSpec) reshaped as the trial deployed it.

    Trials without compression attrs get ``model`` back unchanged.
    """
    raw = attrs.get(Compression.pruned_structure)
    if raw:
        try:
            structure = json.loads(raw)
        except (TypeError, ValueError) as exc:
            raise BadInputError(
                f"trial attr {Compression.pruned_structure} is not JSON: {exc}"
            ) from None
        apply_structure(model, structure)
    quantization = attrs.get(Compression.quantization, "fp32")
    if quantization == "fp32":
        return model
    return skeleton(model, quantization=str(quantization), input_shape=input_shape)
