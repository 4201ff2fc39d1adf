"""Server aggregation (FedAvg) and the FedProx client objective.

FedAvg (McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks from
Decentralized Data", AISTATS): the new global model is the average of the selected clients'
models weighted by their numbers of training samples. FedProx (Li et al. 2020, "Federated
Optimization in Heterogeneous Networks", MLSys) aggregates the same way but each client
minimises ``loss + mu/2 · ||w - w_global||²``, which keeps local models near the global one
when client data are heterogeneous; ``mu = 0`` is FedAvg.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from nas.sections.federated import STRATEGIES  # noqa: F401  (re-exported: the accepted names)
from nas.train import LossFn

State = dict[str, torch.Tensor]


def clone_state(model: nn.Module) -> State:
    """A detached copy of ``model.state_dict()`` (same device and dtypes)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def fedavg(states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]) -> State:
    """Weighted average of ``states`` (weights: e.g. each client's number of samples).

    Floating-point entries (parameters, BatchNorm statistics) are averaged; integer buffers
    (``num_batches_tracked``) get the rounded weighted mean.
    """
    if not states or len(states) != len(weights):
        raise ValueError("fedavg needs one weight per state and at least one state")
    total = float(sum(weights))
    if not (total > 0 and math.isfinite(total)) or min(weights) < 0:
        raise ValueError(f"fedavg weights must be >= 0 with a positive sum, got {list(weights)}")
    keys = list(states[0])
    for s in states[1:]:
        if list(s) != keys:
            raise ValueError("fedavg: client states have different keys")
    out: State = {}
    for key in keys:
        ref = states[0][key]
        acc = torch.zeros_like(ref, dtype=torch.float64)
        for state, w in zip(states, weights, strict=True):
            acc.add_(state[key].to(torch.float64), alpha=float(w) / total)
        out[key] = acc.to(ref.dtype) if ref.is_floating_point() else acc.round().to(ref.dtype)
    return out


def proximal_loss(inner: LossFn, global_params: Sequence[torch.Tensor], mu: float) -> LossFn:
    """FedProx's client objective: ``inner + mu/2 · Σ ||p - p_global||²`` over trainable params.

    ``global_params`` are detached copies of the global model's trainable parameters, in
    ``model.parameters()`` order.
    """
    if mu == 0:
        return inner
    frozen = [g.detach() for g in global_params]

    def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        base = inner(model, x, y)
        params = [p for p in model.parameters() if p.requires_grad]
        if len(params) != len(frozen):
            raise ValueError("FedProx: the model's trainable parameters changed during training")
        if not params:
            return base
        prox = torch.stack([(p - g).pow(2).sum() for p, g in zip(params, frozen, strict=True)])
        return base + 0.5 * mu * prox.sum()

    return loss


def distance_to(model: nn.Module, global_params: Sequence[torch.Tensor]) -> float:
    """L2 distance between ``model``'s trainable parameters and ``global_params``."""
    params = [p.detach() for p in model.parameters() if p.requires_grad]
    sq = sum(float((p - g).pow(2).sum()) for p, g in zip(params, global_params, strict=True))
    return math.sqrt(sq)
