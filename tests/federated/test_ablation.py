"""The federated row of `econas ablate` and the to-target comparison it is built on."""

from __future__ import annotations

import pytest
import torch

from nas.config import config_from_dict
from nas.data import DataBudget, load_data
from nas.energy import EstimateMeter
from nas.federated.ablation import MAX_COMPUTE_FACTOR, federated_technique
from nas.federated.compare import centralised_to_target
from nas.train import TrainingPlan, cross_entropy_loss

ARCH = {
    "stem_width": 8,
    "stem_stride": 2,
    "activation": "relu",
    "stages": [{"block": "conv", "depth": 1, "width": 8, "kernel": 3, "stride": 2, "se": False}],
}


@pytest.fixture(scope="module")
def data():
    budget = DataBudget(train_size=240, val_size=100, test_size=100, batch_size=32)
    return load_data("fashion-mnist", budget=budget, seed=0)


def test_centralised_to_target_stops_at_the_target(data) -> None:
    from search_spaces import ArchSpec, build_model

    spec = ArchSpec("cnn", data.in_channels, data.num_classes, data.image_size, ARCH)
    meter = EstimateMeter(rss_interval_s=0.05)
    plan = TrainingPlan(
        epochs=1, batch_size=32, lr=0.01, loss_fn=cross_entropy_loss(), device=torch.device("cpu")
    )
    try:
        easy = centralised_to_target(
            build_model(spec),
            data,
            plan=plan,
            meter=meter,
            target_accuracy=0.0,
            max_epochs=3,
        )
        full = centralised_to_target(
            build_model(spec),
            data,
            plan=plan,
            meter=meter,
            target_accuracy=None,
            max_epochs=2,
        )
    finally:
        meter.close()
    assert easy.reached and easy.epochs_equivalent == 1 and len(easy.curve) == 1
    assert not full.reached and full.epochs_equivalent == 2 and len(full.curve) == 2
    assert full.compute.energy_kwh > 0 and full.check_energy_kwh > 0
    assert len(full.compute.details["combined_from"]) == 2  # eval checks are not in compute


def test_federated_row_reaches_for_the_baseline_accuracy(data) -> None:
    from nas.carbon import FixedIntensity
    from nas.compression.techniques import BUILTIN_TECHNIQUES, AblationContext, total_train
    from nas.context import RunContext
    from search_spaces import ArchSpec

    cfg = config_from_dict(
        {
            "train": {"epochs": 1, "lr": 0.01},
            "data": {"batch_size": 32},
            "federated": {"clients": 4, "client_fraction": 0.5, "split": "dirichlet"},
        }
    )
    spec = ArchSpec("cnn", data.in_channels, data.num_classes, data.image_size, ARCH)
    meter = EstimateMeter(rss_interval_s=0.05)
    run = RunContext(
        config=cfg,
        data=data,
        device=torch.device("cpu"),
        meter=meter,
        intensity=FixedIntensity(intensity_g_per_kwh=100.0),
        seed=0,
    )
    ctx = AblationContext(run=run, spec=spec)
    baseline_fn = dict(BUILTIN_TECHNIQUES)["baseline"]
    try:
        ctx.baseline = baseline_fn(ctx)
        dep = federated_technique(ctx)
    finally:
        meter.close()
    d = dep.details
    assert d["target_accuracy"] is not None and 0 < d["target_accuracy"] <= 1
    assert d["reached"] == (d["val_accuracy"] >= d["target_accuracy"])
    assert 0 < d["epochs_equivalent"] <= MAX_COMPUTE_FACTOR * 1 + 0.5
    assert d["clients"] == 4 and d["clients_per_round"] == 2 and d["split"] == "dirichlet"
    assert d["comm_bytes_up"] == d["model_bytes"] * 2 * d["rounds"]
    (train,) = dep.train
    assert train.source == "estimate+network-estimate" and train.kind == "estimated"
    assert train.energy_j["network"] == pytest.approx(d["comm_energy_kwh"] * 3.6e6)
    assert train.energy_kwh == pytest.approx(d["compute_energy_kwh"] + d["comm_energy_kwh"])
    assert total_train(dep).energy_kwh == pytest.approx(train.energy_kwh)  # ablate sums it
    assert d["client_energy_kwh"] + d["server_energy_kwh"] <= d["compute_energy_kwh"] * 1.05
