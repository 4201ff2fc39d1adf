from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from nas.compression import autocast_schedule, distillation_loss, kd_loss
from nas.compression.precision import check_precision_supported
from nas.energy import EstimateMeter, WindowAccumulator
from nas.errors import BadInputError
from nas.train import TrainingPlan, train_model


def test_kd_loss_limits() -> None:
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(16, 10, generator=g), torch.randn(16, 10, generator=g)
    y = torch.randint(0, 10, (16,), generator=g)
    # alpha 0: plain cross-entropy; identical logits: no soft-label term
    assert kd_loss(s, t, y, temperature=4.0, alpha=0.0) == pytest.approx(
        float(F.cross_entropy(s, y))
    )
    assert kd_loss(s, s, y, temperature=4.0, alpha=1.0) == pytest.approx(0.0, abs=1e-6)
    soft = kd_loss(s, t, y, temperature=2.0, alpha=1.0)
    kl = F.kl_div(F.log_softmax(s / 2, 1), F.softmax(t / 2, 1), reduction="batchmean")
    assert soft == pytest.approx(4.0 * float(kl), rel=1e-5)


def test_student_learns_the_teacher_and_teacher_cost_is_metered() -> None:
    torch.manual_seed(0)
    teacher = nn.Linear(4, 3)
    student = nn.Linear(4, 3)
    x = torch.randn(256, 4)
    y = teacher(x).argmax(1).detach()
    meter = EstimateMeter(watts_per_core=10.0)
    passes = WindowAccumulator(meter, "teacher")
    loss = distillation_loss(teacher, temperature=2.0, alpha=1.0, passes=passes)
    with torch.no_grad():
        before = float(loss(student, x, y))
    plan = TrainingPlan(epochs=5, batch_size=32, lr=0.05, device=torch.device("cpu"), loss_fn=loss)
    train_model(student, TensorDataset(x, y), plan)
    with torch.no_grad():
        assert float(loss(student, x, y)) < 0.5 * before
    assert passes.count == 5 * 8 + 2 and passes.energy_j > 0 and passes.duration_s > 0


def test_dynamic_precision_switches_at_the_sampled_epoch() -> None:
    seen: list[torch.dtype] = []

    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.fc(x)
            seen.append(out.dtype)
            return out

    data = TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,)))
    schedule = autocast_schedule("dynamic_bf16", switch_epoch=2)
    assert [schedule(e) for e in range(4)] == [None, None, torch.bfloat16, torch.bfloat16]
    plan = TrainingPlan(
        epochs=3, batch_size=8, lr=0.01, device=torch.device("cpu"), autocast_dtype=schedule
    )
    train_model(Probe(), data, plan)
    assert seen == [torch.float32, torch.float32, torch.bfloat16]
    amp = autocast_schedule("amp_bf16")
    assert amp(0) == torch.bfloat16 and autocast_schedule("fp32") is None


def test_precision_checks() -> None:
    check_precision_supported("amp_bf16", torch.device("cpu"))  # CPU autocast has bf16
    with pytest.raises(BadInputError, match="unknown"):
        check_precision_supported("amp_int4", torch.device("cpu"))
