"""Static cost model of a network: parameter count and FLOPs (fvcore, attention included).

FLOP convention (fvcore's): one fused multiply-add counts as ONE flop, so a linear layer of
``(B, L, in) -> (B, L, out)`` counts ``B*L*in*out``. fvcore has no handle for
``aten::scaled_dot_product_attention``; we register one that counts its two matmuls in the
same convention: ``B*H*L*S*D`` for ``Q @ K^T`` plus ``B*H*L*S*Dv`` for ``softmax(.) @ V``
(``2*B*H*L*L*D`` for self-attention). Softmax, scaling and element-wise ops are not counted
(fvcore ignores them too). Operators fvcore could not count are listed in
``CostReport.uncounted_ops`` instead of being logged as warnings.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

SDPA_OP = "aten::scaled_dot_product_attention"


@dataclass(frozen=True)
class CostReport:
    """Static cost of one model at one input shape.

    ``params``: number of parameter elements (trainable and frozen; buffers such as
    BatchNorm running statistics are not counted). ``flops``: fvcore convention (one
    multiply-add = one flop) for the whole ``input_shape`` batch; None where nothing was
    counted (a tabular benchmark's architecture: the table has no FLOPs). ``flops_by_operator``:
    the same total split by operator (``conv``, ``linear``, ``scaled_dot_product_attention``...).
    ``uncounted_ops``: operator name -> number of calls fvcore could not count.
    """

    params: int
    flops: int | None
    input_shape: tuple[int, ...]
    flops_by_operator: dict[str, int] = field(default_factory=dict)
    uncounted_ops: dict[str, int] = field(default_factory=dict)


def count_params(model: nn.Module) -> int:
    """Number of parameter elements, trainable and frozen alike; buffers are not counted."""
    return sum(p.numel() for p in model.parameters())


def sdpa_flop_jit(inputs: list[Any], outputs: list[Any]) -> Counter[str]:
    """fvcore handle for ``aten::scaled_dot_product_attention``: QK^T + AV multiply-adds."""
    from fvcore.nn.jit_handles import get_shape

    q_shape, k_shape, v_shape = (get_shape(v) for v in inputs[:3])
    *batch, length, dim_qk = q_shape  # (B, H, L, D); any number of leading batch dims
    source_len = k_shape[-2]  # (B, H, S, D)
    dim_v = v_shape[-1]  # (B, H, S, Dv)
    batch_heads = math.prod(batch)
    macs = batch_heads * length * source_len * (dim_qk + dim_v)
    return Counter({"scaled_dot_product_attention": macs})


def _example_input(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    ref = next(model.parameters(), None)
    if ref is None:
        ref = next(model.buffers(), None)
    if ref is None or not ref.is_floating_point():
        return torch.zeros(input_shape)
    return torch.zeros(input_shape, device=ref.device, dtype=ref.dtype)


def analyze_cost(
    model: nn.Module, input_shape: tuple[int, ...], *, count_attention: bool = True
) -> CostReport:
    """Params and FLOPs of ``model`` on one zero input of ``input_shape`` (batch included).

    The model is traced in eval mode under ``no_grad`` (BatchNorm statistics are left
    untouched) and its train/eval flags are restored afterwards. ``count_attention=False``
    gives fvcore's plain count (attention then shows up in ``uncounted_ops``).
    """
    input_shape = tuple(int(d) for d in input_shape)
    if not input_shape or min(input_shape) < 1:
        raise ValueError(f"input_shape must be positive dims, got {input_shape}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fvcore's import and torch.jit.trace are noisy
        from fvcore.nn import FlopCountAnalysis

        modes = {m: m.training for m in model.modules()}
        model.eval()
        try:
            with torch.no_grad():
                analysis = FlopCountAnalysis(model, (_example_input(model, input_shape),))
                if count_attention:
                    analysis.set_op_handle(SDPA_OP, sdpa_flop_jit)
                analysis.unsupported_ops_warnings(False)
                analysis.uncalled_modules_warnings(False)
                analysis.tracer_warnings("none")
                flops = int(analysis.total())
                by_op = {k: int(v) for k, v in analysis.by_operator().items() if v}
                uncounted = dict(analysis.unsupported_ops())
        finally:
            for module, training in modes.items():
                module.training = training
    if uncounted:
        log.debug(
            "FLOPs of %s exclude operators fvcore cannot count: %s", type(model).__name__, uncounted
        )
    return CostReport(
        params=count_params(model),
        flops=flops,
        input_shape=input_shape,
        flops_by_operator=by_op,
        uncounted_ops=uncounted,
    )


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs (one multiply-add = one flop) of one forward pass on ``input_shape``."""
    flops = analyze_cost(model, input_shape).flops
    assert flops is not None  # fvcore counted them
    return flops
