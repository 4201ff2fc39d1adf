"""Carbon labels: `econas export` writes carbon_label.json and a Hugging Face model card."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import torch

from nas.carbon_label import build_carbon_label, model_card
from nas.cli import main
from nas.text import plural
from tests.report.tiny_study import tiny_study

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[optuna.Study, optuna.trial.FrozenTrial, Path]:
    config, study = tiny_study("tiny")
    trial = max(
        (t for t in study.trials if t.state.name == "COMPLETE"),
        key=lambda t: t.user_attrs["accuracy"],
    )
    out = tmp_path_factory.mktemp("export")
    argv = [
        "export",
        "--storage",
        config.storage_url,
        "--study",
        config.study.name,
        "--trial",
        str(trial.number),
    ]
    assert (
        main([*argv, "--format", "onnx", "--out", str(out), "--inference-min-duration-s", "0.1"])
        == 0
    )
    return study, trial, out


def test_model_card_parses_with_huggingface_hub(exported) -> None:  # noqa: ANN001
    from huggingface_hub import ModelCard

    _, trial, out = exported
    card = ModelCard.load(out / "README.md")
    co2 = card.data.co2_eq_emissions
    assert co2["emissions"] == pytest.approx(
        trial.user_attrs["kgco2e"] * 1000.0, rel=1e-12
    )  # grams
    assert co2["geographical_location"] == "FRA"
    assert co2["hardware_used"] == trial.user_attrs["hardware"]
    assert "estimate meter (estimated)" in co2["source"] and co2["training_type"]
    assert card.data.to_dict()["library_name"] == "pytorch"
    assert f"trial {trial.number}" in card.text


def test_carbon_label_json(exported) -> None:  # noqa: ANN001
    study, trial, out = exported
    label = json.loads((out / "carbon_label.json").read_text())
    a = trial.user_attrs
    assert label["weights"] == "proxy"  # no full-budget training yet
    assert label["proxy_training"]["kgco2e"] == pytest.approx(a["kgco2e"])
    assert label["proxy_training"]["energy_kwh"] == pytest.approx(a["energy_kwh"])
    assert set(label["proxy_training"]["phases"]) == set(a["phases"].split(","))
    final = label["final_training"]  # projected from the proxy: a full split, [final] epochs
    assert final["kind"] == "projected" and final["energy_kwh"] > 10 * a["energy_kwh"]
    assert final["epochs"] == 5 and "per sample-epoch" in final["method"]
    assert label["search_share"]["kgco2e"] == pytest.approx(label["search"]["kgco2e"])
    total = sum(t.user_attrs.get("search_kgco2e", 0.0) for t in study.trials)
    assert label["search"]["kgco2e"] == pytest.approx(total) and total > a["kgco2e"]
    assert label["meter"] == {"source": "estimate", "kind": "estimated"}
    assert label["carbon_intensity"]["g_per_kwh"] == pytest.approx(a["intensity_g_per_kwh"])
    assert "codecarbon" in label["carbon_intensity"]["source"]
    assert label["accuracy"] == pytest.approx(a["accuracy"]) and label[
        "test_accuracy"
    ] == pytest.approx(a["test_accuracy"])
    assert label["dataset"]["dataset"] == "fashion-mnist" and label["dataset"]["train_size"] == 200
    sw = label["software"]
    assert all(sw[k] for k in ("python", "torch", "optuna", "econas", "onnxruntime"))
    pt = label["inference_per_1k"]["pytorch"]
    assert pt["energy_kwh"] == pytest.approx(a["inference_energy_kwh_per_1k"])
    assert pt["kgco2e"] == pytest.approx(
        a["inference_energy_kwh_per_1k"] * a["intensity_g_per_kwh"] / 1000
    )
    ort = label["inference_per_1k"]["onnxruntime_cpu"]  # measured at export
    assert ort["energy_kwh"] > 0 and ort["latency_ms"] > 0 and ort["kind"] == "estimated"
    figures = json.loads((out / "figures.json").read_text())
    assert figures["onnxruntime_cpu_energy_kwh_per_1k"] == pytest.approx(ort["energy_kwh"])
    assert figures["onnxruntime_cpu_window_duration_s"] >= 0.1


def test_label_without_onnx_has_no_onnx_figures(exported) -> None:  # noqa: ANN001
    study, trial, _ = exported
    label = build_carbon_label(study, trial, model_format="state_dict")
    assert "onnxruntime_cpu" not in label["inference_per_1k"]
    assert "emissions: " in model_card(label)


def test_model_card_latency_rows_say_batch_runtime_device_and_threads(exported) -> None:  # noqa: ANN001
    _, trial, out = exported
    card = (out / "README.md").read_text()
    assert "ms/batch" not in card  # PyTorch's and ONNX Runtime's latencies, each labelled
    a = trial.user_attrs
    batch, threads = a["inference_batch_size"], a["inference_threads"]
    assert threads == a["threads"]  # measured in the trial's process, with its torch threads
    how = f"(median, cpu, {plural(threads, 'thread')})"
    assert (
        f"| latency (PyTorch) | {a['inference_latency_ms']:.4g} ms per batch of {batch} {how}"
        in card
    )
    figures = json.loads((out / "figures.json").read_text())
    ort_threads = figures["onnxruntime_cpu_threads"]  # the exporting process's torch threads
    assert ort_threads == torch.get_num_threads()
    ort_how = f"(median, cpu, {plural(ort_threads, 'thread')})"
    ort_ms = figures["onnxruntime_cpu_latency_ms"]
    assert f"| latency (ONNX Runtime, CPU) | {ort_ms:.4g} ms per batch of 1 {ort_how}" in card
    assert "| 1,000 inferences (PyTorch) |" in card
