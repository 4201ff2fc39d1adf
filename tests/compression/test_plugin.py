"""A tiny study with [compression]: differing trial settings, quantized accuracy reported,
pruned trials exported (ONNX matching PyTorch), bad settings rejected before training."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import numpy as np
import onnxruntime as ort
import optuna
import pytest
import torch

from nas.cli import main
from nas.cost import count_params
from nas.train import evaluate
from nas.workload import TorchWorkload
from search_spaces import ArchSpec, build_model
from tests.configs import TINY_VIT, tiny_toml

RANDOM = """prune_ratios = [0.0, 0.5]
quantization = ["fp32", "int8_dynamic", "int8_static", "bf16"]
precision = ["fp32", "dynamic_bf16"]
distillation = [false, true]
teacher = "best"
"""
PRUNED = """prune_ratios = [0.5]
quantization = ["fp32"]
precision = ["amp_bf16"]
distillation = [false]
"""


def write(
    root: Path, name: str, trials: int, compression: str, spaces: tuple[str, ...] = ("cnn", "vit")
) -> Path:
    """``root / f"{name}.toml"``: a CNN and a ViT with one width each, two epochs, and the
    ``[compression]`` lines given (TOML)."""
    section = {
        "enabled": True,
        "calibrate": False,
    }  # calibration: tests/compression/test_calibrate.py
    return tiny_toml(
        root,
        name,
        study={"trials": trials, "seed": 3},
        search={
            "spaces": list(spaces),
            "cnn": {"max_stages": 2, "width_choices": [16]},
            "vit": {**TINY_VIT, "dim_choices": [32], "heads_choices": [4]},
        },
        data={"train_size": 128, "val_size": 64, "test_size": 64, "batch_size": 64},
        train={"epochs": 2},
        carbon={"intensity_g_per_kwh": None, "region": "FRA"},
        eval={"measure_inference": None, "inference_min_duration_s": 0.01},
        compression={**section, **tomllib.loads(compression)},
    )


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compression")
    old = os.getcwd()
    os.chdir(root)
    try:
        assert main(["search", str(write(root, "mixed", 6, RANDOM))]) == 0
        assert main(["search", str(write(root, "pruned", 2, PRUNED))]) == 0
    finally:
        os.chdir(old)
    return root


def load(root: Path, name: str) -> optuna.Study:
    return optuna.load_study(
        study_name=name, storage=f"sqlite:///{root / 'runs' / name / 'study.db'}"
    )


def complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]


def test_trials_differ_in_compression_and_report_the_deployed_model(
    studies: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(studies)
    study = load(studies, "mixed")
    done = complete(study)
    assert len(done) >= 5
    settings = {
        (a["prune_ratio"], a["quantization"], a["precision"], a["distill"])
        for a in (t.user_attrs for t in done)
    }
    assert len(settings) >= 3
    assert {a["quantization"] for a in (t.user_attrs for t in done)} >= {"fp32"} | (
        {"int8_dynamic", "int8_static", "bf16"} & {t.user_attrs["quantization"] for t in done}
    )
    from nas.data import DataBudget, load_data
    from nas.trial_model import load_trial_model

    data = load_data(
        "fashion-mnist", budget=DataBudget(train_size=128, val_size=64, test_size=64), seed=3
    )
    for t in done:
        a = t.user_attrs
        phases = a["phases"].split(",")
        if a["prune_ratio"] > 0:
            assert "finetune" in phases and a["finetune_energy_kwh"] > 0
            assert a["params"] < a["params_unpruned"] and a["flops"] < a["flops_unpruned"]
        if a["quantization"] != "fp32" or a["prune_ratio"] > 0:
            assert "quantize" in phases
        if a["distill"]:
            assert a["teacher"].startswith("trial:") and a["teacher_energy_kwh"] > 0
            # the teacher's own training: its recorded train (+ finetune) phases, shared
            ta = study.trials[int(a["teacher"].split(":")[1])].user_attrs
            own = ta["train_energy_kwh"] + ta.get("finetune_energy_kwh", 0.0)
            assert a["teacher_training_kwh"] == pytest.approx(own) and own > 0
            assert a["teacher_amortised_over"] == 1
            assert a["teacher_training_share_kwh"] == pytest.approx(own)
        if "weights_artifact_id" not in a:  # reused another trial's result
            continue
        # the stored weights are the deployed (pruned, quantized) model and the accuracy is its own
        model, _ = load_trial_model(study, t)
        device = torch.device("cpu")
        assert evaluate(model, data.val, device=device) == pytest.approx(a["accuracy"])


def test_export_of_a_pruned_trial_matches_pytorch_and_is_smaller(
    studies: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(studies)
    study = load(studies, "pruned")
    # trials that trained (a duplicate configuration may reuse another's result, no weights)
    done = [t for t in complete(study) if "weights_artifact_id" in t.user_attrs]
    assert done
    cfg = studies / "pruned.toml"
    for t in done:
        out = tmp_path / f"t{t.number}"
        assert (
            main(
                [
                    "export",
                    str(cfg),
                    "--trial",
                    str(t.number),
                    "--format",
                    "onnx",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        from nas.trial_model import load_trial_model

        model, spec = load_trial_model(study, t)
        assert count_params(model) < count_params(
            build_model(ArchSpec.from_json(t.user_attrs["arch_spec"]))
        )
        assert count_params(model) == t.user_attrs["params"]
        x = torch.randn(3, spec.in_channels, spec.image_size, spec.image_size)
        sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
        got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
        with torch.no_grad():
            np.testing.assert_allclose(got, model.eval()(x).numpy(), rtol=1e-4, atol=1e-4)
        assert json.loads((out / "figures.json").read_text())["trial"] == t.number


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("prune_ratios = [0.0, 1.2]", "must be in [0, 1)"),
        ('distillation = [true]\nteacher = "does/not/exist"', "teacher"),
        ('quantization = ["int4"]', "unknown"),
        ('precision = ["dynamic_bf16"]\ndynamic_switch_epochs = [5]', "dynamic_switch_epochs"),
    ],
)
def test_impossible_settings_exit_2_before_training(
    extra: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = write(tmp_path, "bad", 1, extra)
    assert main(["search", str(cfg)]) == 2
    err = [
        line for line in capsys.readouterr().err.splitlines() if line.startswith("econas: error")
    ]
    assert len(err) == 1 and message in err[0]
    study_db = tmp_path / "runs" / "bad" / "study.db"
    if study_db.exists():  # nothing was trained
        assert not load(tmp_path, "bad").trials


def test_teacher_with_other_classes_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    spec = ArchSpec.from_json(
        json.dumps(
            {
                "family": "vit",
                "in_channels": 1,
                "num_classes": 5,
                "image_size": 28,
                "config": {
                    "patch": 7,
                    "dim": 32,
                    "depth": 1,
                    "heads": 4,
                    "mlp_ratio": 2,
                    "pool": "cls",
                },
            }
        )
    )
    (teacher / "arch_spec.json").write_text(spec.to_json())
    torch.save(build_model(spec).state_dict(), teacher / "model.pt")
    cfg = write(tmp_path, "badteacher", 1, f'distillation = [true]\nteacher = "{teacher}"')
    assert main(["search", str(cfg)]) == 2
    assert "5 classes but the data has 10" in capsys.readouterr().err


def test_disabled_section_changes_nothing(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from nas.compression.step import CompressionStep
    from nas.config import config_from_dict
    from nas.pipeline import assemble_steps

    for doc in ({"compression": {"enabled": False, "prune_ratios": [0.5]}}, {}):
        steps = assemble_steps(
            SimpleNamespace(config=config_from_dict(doc), workload=TorchWorkload())
        )  # type: ignore[arg-type]
        assert not any(isinstance(s, CompressionStep) for s in steps)
