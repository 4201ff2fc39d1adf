"""The [federated] section and a federated trial in a real tiny study (Fashion-MNIST slices)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest

from nas.cli import main
from nas.config import config_from_dict
from nas.errors import ConfigError
from nas.federated import DEFAULT_NETWORK_KWH_PER_GB
from nas.federated.step import FederatedStep
from nas.pipeline import assemble_steps
from nas.workload import TorchWorkload
from tests.configs import tiny_config_dict, to_toml

FEDERATED = {
    "enabled": True,
    "strategies": ["fedprox"],
    "clients": 4,
    "rounds": 2,
    "client_fraction": 0.5,
    "split": "dirichlet",
    "dirichlet_alpha": 0.5,
    "prox_mu": 0.01,
}


def write_fed(path: Path, **federated: object) -> None:
    """Study "fed": one trial of one CNN on 240 training images (batch 32, lr 0.01), charged
    France's average, with the ``[federated]`` section above (``federated`` changes keys)."""
    doc = tiny_config_dict(
        "fed",
        study={"trials": 1, "seed": 1},
        search={"cnn": {"width_choices": [8]}},
        data={"dataset": "fashion-mnist", "train_size": 240, "batch_size": 32},
        train={"lr": 0.01},
        carbon={"intensity_g_per_kwh": None, "region": "FRA"},
        eval={"measure_inference": None, "inference_min_duration_s": 0.02},
        federated={**FEDERATED, **federated},
    )
    path.write_text(to_toml(doc))


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"clients": 0}, "clients must be >= 1"),
        ({"client_fraction": 0.0}, r"client_fraction must be in \(0, 1\]"),
        ({"client_fraction": 1.5}, r"client_fraction must be in \(0, 1\]"),
        ({"dirichlet_alpha": 0.0}, "dirichlet_alpha must be > 0"),
        ({"dirichlet_alpha": -1}, "dirichlet_alpha must be > 0"),
        ({"rounds": 0}, "rounds must be >= 1"),
        ({"strategies": ["fedsgd"]}, "unknown 'fedsgd'"),
        ({"strategies": []}, "at least one strategy"),
        ({"split": "shards"}, "split 'shards' is unknown"),
        ({"prox_mu": -0.1}, "prox_mu must be >= 0"),
        ({"network_kwh_per_gb": -1.0}, "network_kwh_per_gb must be >= 0"),
        ({"network_kwh_per_gb_source": "x"}, "without network_kwh_per_gb"),
        ({"clients": "4"}, "must be an integer"),
        ({"client": 4}, "unknown key 'federated.client'"),
    ],
)
def test_bad_federated_config_is_config_error(table: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        config_from_dict({"federated": {"enabled": True, **table}})


def test_bad_config_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "bad.toml"
    write_fed(cfg, clients=0)
    assert main(["search", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["econas: error: federated.clients must be >= 1, got 0"]
    assert not (tmp_path / "runs").exists()


def test_too_many_clients_for_the_data_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "big.toml"
    write_fed(cfg, clients=200)
    assert main(["search", str(cfg)]) == 2
    assert "cannot be split over 200 clients" in capsys.readouterr().err


def test_absent_or_disabled_section_adds_no_plugin() -> None:
    for doc in ({}, {"federated": {"enabled": False, "clients": 16}}):
        cfg = config_from_dict(doc)
        steps = assemble_steps(SimpleNamespace(config=cfg, data=None, workload=TorchWorkload()))  # type: ignore[arg-type]
        assert not any(isinstance(s, FederatedStep) for s in steps)
    assert config_from_dict({}).federated.network[0] == DEFAULT_NETWORK_KWH_PER_GB


def test_federated_trial_stores_accuracy_energy_and_carbon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "fed.toml"
    write_fed(cfg)
    assert main(["search", str(cfg)]) == 0
    study = optuna.load_study(study_name="fed", storage="sqlite:///runs/fed/study.db")
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    a = trial.user_attrs
    assert 0.0 <= a["accuracy"] <= 1.0 and trial.values[0] == a["accuracy"]
    assert a["federated_strategy"] == "fedprox" and a["federated_prox_mu"] == 0.01
    assert a["federated_clients"] == 4 and a["federated_rounds"] == 2
    assert a["federated_clients_per_round"] == 2 and a["federated_split"] == "dirichlet"
    # per-client and server energy, inside the measured train window
    by_client = json.loads(a["federated_client_energy_kwh_by_client"])
    assert len(by_client) == 4 and sum(v > 0 for v in by_client) >= 2
    assert a["federated_client_energy_kwh"] == pytest.approx(sum(by_client))
    assert a["federated_client_energy_kwh_max"] == pytest.approx(max(by_client))
    assert a["federated_server_energy_kwh"] > 0
    inner = a["federated_client_energy_kwh"] + a["federated_server_energy_kwh"]
    assert 0 < inner <= a["train_energy_kwh"] * 1.05
    # communication: 2 x model bytes x clients per round x rounds, as an estimated phase
    up = a["federated_model_bytes"] * 2 * 2
    assert a["federated_comm_bytes_up"] == a["federated_comm_bytes_down"] == up
    comm_kwh = 2 * up / 1e9 * a["network_kwh_per_gb"]
    assert a["network_kwh_per_gb"] == DEFAULT_NETWORK_KWH_PER_GB
    assert "Aslan" in a["network_kwh_per_gb_source"]
    assert a["federated_comm_energy_kwh"] == pytest.approx(comm_kwh)
    assert a["comm_energy_kwh"] == pytest.approx(comm_kwh)
    assert a["comm_energy_kind"] == "estimated"
    assert a["comm_energy_source"] == "network-estimate"
    assert a["federated_comm_in_energy_total"] is True
    # screen: the cost guard predicts the training energy on the built model
    phases = "sample,reuse,build,screen,train,comm,eval,test,inference,upload,store".split(",")
    assert a["phases"].split(",") == phases, a["phases"]  # comm right after its training
    # the model's cost: training, its communication and validation; the search's: every phase
    total = a["train_energy_kwh"] + a["comm_energy_kwh"] + a["eval_energy_kwh"]
    search = sum(a[f"{p}_energy_kwh"] for p in phases)
    assert math.isclose(a["search_energy_kwh"], search, rel_tol=1e-9)
    assert math.isclose(a["energy_kwh"], total)
    assert math.isclose(a["kgco2e"], a["energy_kwh"] * a["intensity_g_per_kwh"] / 1000)
    assert trial.values[1] == pytest.approx(a["kgco2e"])
    assert a["energy_kind"] == "estimated" and a["energy_source"] == "estimate"
    assert trial.params["cnn.stem_width"] == 8  # the architecture is the searched one
