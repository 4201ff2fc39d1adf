"""Mixed and dynamic precision training: which autocast dtype each epoch runs in.

``amp_bf16``/``amp_fp16``: autocast from the first epoch. ``dynamic_bf16``/``dynamic_fp16``:
FP32 for the first ``switch_epoch`` epochs, autocast from then on. ``fp32``: no autocast.
Support is probed on the device before any training (:func:`check_precision_supported`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from nas.errors import BadInputError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def precision_dtype(precision: str) -> torch.dtype | None:
    if precision == "fp32":
        return None
    mode, _, name = precision.partition("_")
    if mode not in ("amp", "dynamic") or name not in DTYPES:
        raise BadInputError(f"training precision {precision!r} is unknown")
    return DTYPES[name]


def autocast_schedule(
    precision: str, *, switch_epoch: int = 1
) -> Callable[[int], torch.dtype | None] | None:
    """``epoch -> dtype | None`` for ``nas.train.train_model(autocast_dtype=...)``."""
    dtype = precision_dtype(precision)
    if dtype is None:
        return None
    if precision.startswith("amp_"):
        return lambda epoch: dtype
    return lambda epoch: dtype if epoch >= switch_epoch else None


def check_precision_supported(precision: str, device: torch.device) -> None:
    """BadInputError when ``device`` cannot train in ``precision`` (probed with a tiny step)."""
    dtype = precision_dtype(precision)
    if dtype is None:
        return
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise BadInputError(f"training precision {precision!r}: this GPU has no bf16 support")
    try:
        layer = torch.nn.Conv2d(1, 2, 3).to(device)
        with torch.autocast(device.type, dtype=dtype):
            out = layer(torch.randn(1, 1, 4, 4, device=device))
            loss = torch.nn.functional.linear(
                out.flatten(1), torch.randn(2, 8, device=device)
            ).sum()
        loss.backward()
    except RuntimeError as exc:
        raise BadInputError(
            f"training precision {precision!r} is not supported on {device}: {str(exc)[:120]}"
        ) from None
