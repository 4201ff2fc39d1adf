"""Zero-cost proxies and the rank correlation used to judge them."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nas.efficiency import PROXIES, compute_proxy, grad_norm, naswot, spearman, synflow


def _mlp(width: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(16, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, 4),
    )


def _batch(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 1, 4, 4, generator=g), torch.randint(0, 4, (n,), generator=g)


@pytest.mark.parametrize("name", sorted(PROXIES))
def test_proxies_are_finite_and_leave_the_model_untouched(name: str) -> None:
    model = _mlp(32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = _batch()
    score = compute_proxy(name, model, x, y)
    assert math.isfinite(score)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())


def test_synflow_grows_with_width() -> None:
    x, y = _batch()
    assert synflow(_mlp(32), x, y) > synflow(_mlp(8), x, y)


def test_naswot_is_higher_when_inputs_get_distinct_activation_codes() -> None:
    model = _mlp(32)
    x, y = _batch()
    same = x[:1].repeat(len(x), 1, 1, 1)  # identical inputs: a singular kernel
    assert naswot(model, x, y) > naswot(model, same, y)
    assert naswot(model, same, y) == float("-inf")


def test_grad_norm_is_zero_when_the_loss_cannot_change() -> None:
    model = _mlp(8)
    for p in model.parameters():
        nn.init.zeros_(p)
    x, _ = _batch()
    y = torch.zeros(len(x), dtype=torch.long)
    # all-zero weights: only the last bias gets a gradient
    assert grad_norm(model, x, y) > 0
    model[-1].bias.requires_grad_(False)
    assert grad_norm(model, x, y) == 0.0


def test_spearman() -> None:
    a = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert spearman(a, [10.0, 20.0, 30.0, 40.0, 50.0]) == pytest.approx(1.0)
    assert spearman(a, [5.0, 4.0, 3.0, 2.0, 1.0]) == pytest.approx(-1.0)
    assert spearman(a, [1.0, 1.0, 2.0, 2.0, 3.0]) == pytest.approx(0.9486833, rel=1e-6)
    assert math.isnan(spearman([1.0, float("nan")], [1.0, 2.0]))
