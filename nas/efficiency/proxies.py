"""Zero-cost proxies: score an untrained network from one minibatch.

* ``synflow`` (Tanaka et al. 2020; Abdelfattah et al. 2021): sum of ``|theta * dR/dtheta|``
  where R is the output sum of the network with all weights made positive, on an all-ones
  input (data-free). Computed in float64 to avoid overflow on deep nets.
* ``naswot`` (Mellor et al. 2021, "jacob_cov"'s successor): log-determinant of the kernel
  ``K[i, j] = #units where images i and j have the same binary ReLU/GELU activation code``.
* ``grad_norm`` (Abdelfattah et al. 2021): L2 norm of the loss gradient w.r.t. all weights.
* ``params``: log of the parameter count, the baseline every proxy must beat.

``[efficiency] screen = "auto"`` scores each candidate with all of them and screens, per
family, with ``params`` unless another proxy's Spearman correlation with that family's
trained accuracy beats it clearly over enough trials, and not at all when nothing correlates
positively (:func:`choose_proxy`).

Each proxy runs on a copy of the model, so the candidate's own weights are untouched.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nas.train import onednn_guard

ProxyFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], float]
_ACTIVATIONS = (nn.ReLU, nn.GELU, nn.SiLU, nn.ReLU6, nn.Hardswish, nn.LeakyReLU)


def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Synaptic flow of ``model`` (data-free: only ``x``'s shape is used)."""
    net = copy.deepcopy(model).double()
    net.eval()  # batch norm uses its (initial) running stats: no batch dependence
    with torch.no_grad():
        for p in net.state_dict().values():
            if p.is_floating_point():
                p.abs_()
    net.zero_grad(set_to_none=True)
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
    with onednn_guard(net, ones.device):
        torch.sum(net(ones)).backward()
    total = 0.0
    for p in net.parameters():
        if p.grad is not None:
            total += float((p.detach() * p.grad).abs().sum())
    return _log_or_nan(total)


def naswot(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Log-determinant of the binary activation-code kernel over the batch ``x``."""
    net = copy.deepcopy(model)
    net.train()
    n = x.shape[0]
    kernel = torch.zeros((n, n), dtype=torch.float64, device=x.device)

    def hook(_module: nn.Module, _inp: object, out: torch.Tensor) -> None:
        codes = (out.detach().reshape(n, -1) > 0).double()
        kernel.add_(codes @ codes.t() + (1 - codes) @ (1 - codes).t())

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, _ACTIVATIONS)]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    if not handles:
        return float("nan")
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if float(sign) > 0 else float("-inf")


def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """L2 norm of the cross-entropy gradient over all weights, at initialisation."""
    net = copy.deepcopy(model)
    net.train()
    net.zero_grad(set_to_none=True)
    with onednn_guard(net, x.device):
        F.cross_entropy(net(x), y).backward()
    sq = sum(float(p.grad.pow(2).sum()) for p in net.parameters() if p.grad is not None)
    return math.sqrt(sq)


def _log_or_nan(value: float) -> float:
    """Synflow spans hundreds of orders of magnitude: keep its log (monotone, same ranks)."""
    if not math.isfinite(value) or value <= 0:
        return float("nan")
    return math.log(value)


def params(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """log of the trainable parameter count: the baseline the zero-cost proxy literature
    reports as hard to beat (Abdelfattah et al. 2021; White et al. 2022). Any proxy econas
    screens with must rank candidates better than this."""
    return _log_or_nan(float(sum(p.numel() for p in model.parameters() if p.requires_grad)))


PROXIES: dict[str, ProxyFn] = {
    "synflow": synflow,
    "naswot": naswot,
    "grad_norm": grad_norm,
    "params": params,
}


def compute_proxy(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Score ``model`` with proxy ``name`` on the batch ``(x, y)``."""
    return PROXIES[name](model, x, y)


SWITCH_MIN_TRIALS = 10  # trained trials of a family before a proxy may replace params
SWITCH_MARGIN = 0.1  # and it must beat params's rank correlation by this much


def choose_proxy(
    scores: dict[str, list[float]], accuracy: list[float], *, min_trials: int
) -> tuple[str | None, dict[str, float]]:
    """The proxy to screen with, from finished trials of one family: ``scores[name]`` and
    ``accuracy`` paired by trial. Returns (name or None, each proxy's Spearman rho).

    ``params`` is the default: the literature's hard-to-beat baseline, and the best screen
    measured by ``benchmarks/search_efficiency.py`` in both families here. Another proxy
    replaces it only with at least ``max(min_trials, SWITCH_MIN_TRIALS)`` trained trials and
    a rho at least ``SWITCH_MARGIN`` above params's (a handful of trials ranks proxies by
    noise). None (don't screen) when, with that many trials, nothing correlates positively."""
    from nas.stats import spearman

    need = max(min_trials, SWITCH_MIN_TRIALS)
    if len(accuracy) < need:
        return "params", {}
    rhos = {
        name: rho
        for name, values in scores.items()
        if math.isfinite(rho := spearman(values, accuracy))
    }
    base = rhos.get("params", float("nan"))
    others = {n: r for n, r in rhos.items() if n != "params"}
    best = max(others, key=others.__getitem__, default=None)
    if best is not None and (not math.isfinite(base) or others[best] >= base + SWITCH_MARGIN):
        return (best if others[best] > 0 else None), rhos
    return ("params" if math.isfinite(base) and base > 0 else None), rhos
