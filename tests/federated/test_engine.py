from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from nas.energy import EstimateMeter
from nas.federated import (
    FederatedSpec,
    clone_state,
    fedavg,
    iid_split,
    proximal_loss,
    state_bytes,
    train_federated,
)
from nas.train import cross_entropy_loss

from .conftest import plan, tiny_model


def test_fedavg_of_identical_updates_is_that_update() -> None:
    model = tiny_model()
    model(torch.randn(8, 1, 8, 8))  # BatchNorm buffers move away from their init
    state = clone_state(model)
    avg = fedavg([state, clone_state(model), clone_state(model)], [10, 37, 3])
    assert list(avg) == list(state)
    for key, value in state.items():
        assert avg[key].dtype == value.dtype
        assert torch.allclose(avg[key], value, rtol=0, atol=1e-6), key


def test_fedavg_weights_by_samples() -> None:
    a = {"w": torch.zeros(3), "n": torch.tensor(2)}
    b = {"w": torch.ones(3), "n": torch.tensor(6)}
    out = fedavg([a, b], [1, 3])
    assert torch.allclose(out["w"], torch.full((3,), 0.75))
    assert out["n"].dtype == torch.int64 and int(out["n"]) == 5
    with pytest.raises(ValueError):
        fedavg([a, b], [1])


def test_proximal_term_is_added_only_with_mu() -> None:
    model = tiny_model()
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    ref = [p.detach().clone() + 1.0 for p in model.parameters()]  # every weight 1 away
    n = sum(p.numel() for p in model.parameters())
    base = cross_entropy_loss()
    assert proximal_loss(base, ref, 0.0) is base
    with torch.no_grad():
        plain = float(base(model, x, y))
        prox = float(proximal_loss(base, ref, 0.2)(model, x, y))
    assert prox == pytest.approx(plain + 0.5 * 0.2 * n, rel=1e-5)


def _run(data: TensorDataset, spec: FederatedSpec, **kw: object):
    parts = iid_split(len(data), clients=spec.clients, seed=0)
    model = tiny_model()
    result = train_federated(model, data, parts, spec=spec, plan=plan(**kw), meter=None)
    return model, result


def test_fedprox_keeps_clients_closer_to_the_global_model(blobs: TensorDataset) -> None:
    common = dict(clients=4, rounds=2, local_epochs=2)
    _, avg = _run(blobs, FederatedSpec(strategy="fedavg", prox_mu=1.0, **common), lr=0.05)
    _, prox = _run(blobs, FederatedSpec(strategy="fedprox", prox_mu=1.0, **common), lr=0.05)
    assert len(avg.client_drift_l2) == len(prox.client_drift_l2) == 8
    assert np.mean(prox.client_drift_l2) < 0.9 * np.mean(avg.client_drift_l2)


def test_comm_bytes_follow_the_protocol(blobs: TensorDataset) -> None:
    spec = FederatedSpec(clients=6, rounds=3, client_fraction=0.5)
    model, res = _run(blobs, spec)
    m = spec.clients_per_round
    assert m == 3 and res.rounds == 3
    expected = state_bytes(model) * m * res.rounds
    assert res.comm.bytes_up == res.comm.bytes_down == expected
    assert sum(res.client_rounds) == m * res.rounds
    # 2 x (params + buffers) x 4 bytes (float32; one int64 BN counter) x m x rounds
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    assert res.comm.total_bytes == 2 * (params * 4 + buffers) * m * res.rounds
    meas = res.comm.measurement(kwh_per_gb=0.5, source="test")
    assert meas.kind == "estimated" and meas.source == "network-estimate"
    assert meas.energy_kwh == pytest.approx(res.comm.total_bytes / 1e9 * 0.5)


def test_rounds_map_to_centralised_epochs(blobs: TensorDataset) -> None:
    calls: list[int] = []
    spec = FederatedSpec(clients=4, client_fraction=0.5, local_epochs=1)
    assert spec.rounds_for(2) == 4  # compute-matched: 2 / (1 * 2/4)
    parts = iid_split(len(blobs), clients=4)
    res = train_federated(
        tiny_model(),
        blobs,
        parts,
        spec=spec,
        plan=plan(epochs=2, epoch_callbacks=(lambda e, _loss: calls.append(e),)),
        meter=None,
    )
    assert calls == [0, 1] and res.train.epochs == 2 and res.rounds == 4
    assert res.train.samples == pytest.approx(2 * len(blobs), rel=0.05)  # same compute


def test_clients_and_server_have_their_own_meter_windows(blobs: TensorDataset) -> None:
    meter = EstimateMeter(rss_interval_s=0.05)
    spec = FederatedSpec(clients=4, rounds=2, client_fraction=0.5)
    parts = iid_split(len(blobs), clients=4)
    model = tiny_model()
    try:
        with meter.window("train") as outer:
            res = train_federated(model, blobs, parts, spec=spec, plan=plan(), meter=meter)
    finally:
        meter.close()
    assert outer.measurement is not None
    took_part = [k for k in range(4) if res.client_rounds[k]]
    assert all(res.client_energy_kwh[k] > 0 for k in took_part)
    assert all(res.client_energy_kwh[k] == 0 for k in range(4) if k not in took_part)
    assert res.server_energy_kwh > 0 and math.isfinite(res.server_energy_kwh)
    inner = sum(res.client_energy_kwh) + res.server_energy_kwh
    assert inner <= outer.measurement.energy_kwh * 1.05  # nested inside the train window
    assert res.energy_kind == "estimated"


def test_without_a_meter_energy_is_nan_not_zero(blobs: TensorDataset) -> None:
    _, res = _run(blobs, FederatedSpec(clients=4, rounds=1))
    assert math.isnan(res.server_energy_kwh)
    assert all(math.isnan(v) for v in res.client_energy_kwh)


def test_round_learning_rates_follow_one_cycle() -> None:
    from nas.federated.local import round_learning_rates

    assert round_learning_rates(0.1, 1) == [0.1]
    lrs = round_learning_rates(0.1, 20)
    assert len(lrs) == 20 and max(lrs) == pytest.approx(0.1, rel=1e-3)
    peak = lrs.index(max(lrs))
    assert 1 <= peak <= 4 and lrs[0] < 0.01 and lrs[-1] < 0.001
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1 :], strict=False))


def test_the_plans_loss_fn_and_autocast_are_used(blobs: TensorDataset) -> None:
    seen: list[torch.dtype] = []
    base = cross_entropy_loss()

    def loss_fn(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        seen.append(model(x).dtype)
        return base(model, x, y)

    epochs_asked: list[int] = []

    def autocast_dtype(epoch: int) -> torch.dtype | None:
        epochs_asked.append(epoch)
        return torch.bfloat16 if epoch >= 1 else None

    spec = FederatedSpec(clients=4, rounds=4)
    recipe = plan(epochs=2, loss_fn=loss_fn, autocast_dtype=autocast_dtype)
    parts = iid_split(len(blobs), clients=4)
    train_federated(tiny_model(), blobs, parts, spec=spec, plan=recipe, meter=None)
    assert epochs_asked == [0, 0, 1, 1]  # round r of 4 is centralised epoch floor(r * 2 / 4)
    assert torch.float32 in seen and torch.bfloat16 in seen
    assert seen[0] == torch.float32 and seen[-1] == torch.bfloat16
