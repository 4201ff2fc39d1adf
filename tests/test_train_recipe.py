"""econas's training recipe adds nothing hidden to a plain loop, and its schedule is as stated.

benchmarks/space_diagnosis.py (section ``recipe``) found that econas's loop does not lose
accuracy against a plain 20-line loop at the quickstart's budget: with a constant learning
rate the two are the same loop, step for step, which these tests pin down; the one-cycle
schedule (15% warm-up to ``lr``, cosine down to ``lr / 25e4``) is econas's only addition.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from nas.train import Trainer, TrainingPlan, cross_entropy_loss, train_model

CPU = torch.device("cpu")


def _data(n: int = 200) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 8, 8, generator=g)
    return TensorDataset(x, (x.mean(dim=(1, 2, 3)) > 0).long())


def _model() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 4 * 4, 2),
    )  # fmt: skip


def _plain(model: nn.Module, data: TensorDataset, *, seed: int, lr: float, wd: float) -> None:
    x, y = data.tensors
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    model.train()
    for _ in range(2):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), 32):
            idx = order[start : start + 32]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def test_at_a_constant_rate_econas_trains_exactly_as_a_plain_loop() -> None:
    data = _data()
    ours, plain = _model(), _model()
    plan = TrainingPlan(
        epochs=2, batch_size=32, lr=3e-3, device=CPU, seed=5, weight_decay=0.01,
        loss_fn=cross_entropy_loss(0.0), lr_schedule="constant",
    )  # fmt: skip
    train_model(ours, data, plan)
    _plain(plain, data, seed=5, lr=3e-3, wd=0.01)
    for (name, a), b in zip(ours.state_dict().items(), plain.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)  # weights and BatchNorm statistics


def test_one_cycle_warms_up_for_15_percent_of_the_steps_to_the_peak_rate() -> None:
    data = _data(320)  # 10 steps an epoch
    plan = TrainingPlan(epochs=2, batch_size=32, lr=6e-3, device=CPU)
    trainer = Trainer(_model(), data, plan)
    rates: list[float] = []
    for _ in range(2):
        trainer.run_epoch(lambda _n: rates.append(trainer.opt.param_groups[0]["lr"]))
    before = [6e-3 / 25, *rates[:-1]]  # the rate each step used
    assert len(before) == 20
    peak = max(range(20), key=before.__getitem__)
    assert peak == 2 and before[peak] == pytest.approx(6e-3)  # 0.15 * 20 - 1: the third step
    assert before[0] == pytest.approx(6e-3 / 25) and before[-1] == pytest.approx(6e-3 / 25e4)
    assert all(a >= b for a, b in zip(before[peak:], before[peak + 1 :], strict=False))


_HAZARD = """
import torch
from torch import nn
from torch.utils.data import TensorDataset
from nas.train import TrainingPlan, onednn_backward_hazard, train_model

torch.manual_seed(0)
model = nn.Sequential(
    nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 8, 1, stride=2, bias=False),
    nn.Flatten(), nn.Linear(8 * 7 * 7, 2),
)
assert onednn_backward_hazard(model)
x = torch.randn(400, 1, 14, 14).to(memory_format=torch.channels_last)
data = TensorDataset(x, (x.mean(dim=(1, 2, 3)) > 0).long())
train_model(model, data, TrainingPlan(epochs=2, batch_size=50, lr=1e-3, device=torch.device("cpu")))
print("trained")
"""


def test_a_strided_1x1_conv_on_few_channels_trains_without_corrupting_the_heap() -> None:
    """torch 2.14.1's oneDNN AVX2 1x1 backward-weights kernel corrupts the heap on a strided 1x1
    conv with < 8 input channels (a pruned ResNet shortcut); the trainer must steer around it.
    Run in a child: a heap corruption aborts the process."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _HAZARD], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0 and "trained" in out.stdout, out.stderr[-2000:]


def test_only_strided_1x1_convs_on_few_channels_are_a_hazard() -> None:
    from nas.train import onednn_backward_hazard

    assert onednn_backward_hazard(nn.Conv2d(3, 8, 1, stride=2))
    assert not onednn_backward_hazard(nn.Conv2d(8, 8, 1, stride=2))
    assert not onednn_backward_hazard(nn.Conv2d(4, 8, 1, stride=1))
    assert not onednn_backward_hazard(nn.Conv2d(4, 8, 3, stride=2))
