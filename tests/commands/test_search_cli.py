"""End to end through the CLI: search -> pareto --json -> optuna.load_study -> export."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
import optuna
import pytest
import torch

from nas.cli import main
from tests.configs import TINY_VIT, tiny_toml


def write_config(
    tmp_path: Path, name: str = "tiny", trials: int = 4, extra: str = "", *, epochs: int = 1
) -> Path:
    """``tmp_path / f"{name}.toml"``: a tiny CNN or ViT (two widths each), 256 training
    images, charged France's average; ``extra`` is raw TOML appended (more sections)."""
    return tiny_toml(
        tmp_path,
        name,
        extra=extra,
        study={"trials": trials, "seed": 2, "startup_trials": 2},
        search={
            "spaces": ["cnn", "vit"],
            "cnn": {"max_stages": 2},
            "vit": {**TINY_VIT, "dim_choices": [16, 32]},
        },
        data={
            "dataset": "fashion-mnist",
            "train_size": 256,
            "val_size": 128,
            "test_size": 128,
            "batch_size": 64,
        },
        train={"epochs": epochs},
        carbon={"intensity_g_per_kwh": None, "region": "FRA"},
        eval={"measure_inference": None, "inference_min_duration_s": 0.02},
    )


def error_lines(stderr: str) -> list[str]:
    """Everything on stderr but the informational 'econas: study ...' banner."""
    return [line for line in stderr.splitlines() if not line.startswith("econas: study '")]


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A finished tiny study made by `econas search` (cwd is where runs/ lands)."""
    root = tmp_path_factory.mktemp("e2e")
    cfg = write_config(root, trials=6)
    import os

    old = os.getcwd()
    os.chdir(root)
    try:
        assert main(["search", str(cfg)]) == 0
    finally:
        os.chdir(old)
    return root, cfg


def test_search_makes_front_with_both_families(searched: tuple[Path, Path]) -> None:
    root, _ = searched
    url = f"sqlite:///{root / 'runs/tiny/study.db'}"
    study = optuna.load_study(study_name="tiny", storage=url)  # plain Optuna reads it
    assert study.metric_names == ["accuracy", "kgco2e"]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) >= 5
    families = {t.user_attrs["family"] for t in done}
    assert families == {"cnn", "vit"}
    for t in done:
        a = t.user_attrs
        assert a["energy_kind"] == "estimated" and a["energy_source"] == "estimate"
        assert a["train_energy_kwh"] > 0 and a["eval_energy_kwh"] > 0
        assert math.isclose(a["energy_kwh"], a["train_energy_kwh"] + a["eval_energy_kwh"])
        assert math.isclose(a["kgco2e"], a["energy_kwh"] * a["intensity_g_per_kwh"] / 1000)
        assert a["intensity_g_per_kwh"] == pytest.approx(56.0, abs=0.1)  # codecarbon FRA
        assert a["params"] > 0 and a["flops"] > 0
        assert t.values[1] == pytest.approx(a["kgco2e"])
        assert 0.0 <= t.values[0] <= 1.0


def test_pareto_json(searched: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = searched
    url = f"sqlite:///{root / 'runs/tiny/study.db'}"
    capsys.readouterr()
    assert main(["pareto", "--storage", url, "--study", "tiny", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list) and rows
    keys = {
        "trial",
        "accuracy",
        "kgco2e",
        "energy_kwh",
        "params",
        "flops",
        "energy_source",
        "energy_kind",
    }
    for row in rows:
        assert keys <= set(row)
    # No row of the front is dominated by another one.
    for a in rows:
        for b in rows:
            dominated = b["accuracy"] >= a["accuracy"] and b["kgco2e"] <= a["kgco2e"]
            strictly = b["accuracy"] > a["accuracy"] or b["kgco2e"] < a["kgco2e"]
            assert not (dominated and strictly)


def test_rerun_resumes_without_new_trials(
    searched: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, cfg = searched
    monkeypatch.chdir(root)
    before = len(
        optuna.load_study(
            study_name="tiny", storage=f"sqlite:///{root / 'runs/tiny/study.db'}"
        ).trials
    )
    assert main(["search", str(cfg)]) == 0
    after = len(
        optuna.load_study(
            study_name="tiny", storage=f"sqlite:///{root / 'runs/tiny/study.db'}"
        ).trials
    )
    assert after == before


@pytest.mark.parametrize("fmt", ["onnx", "pt2", "state_dict"])
def test_export_matches_pytorch(
    searched: tuple[Path, Path], tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, cfg = searched
    monkeypatch.chdir(root)
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{root / 'runs/tiny/study.db'}")
    trial = next(t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
    out = tmp_path / fmt
    assert (
        main(["export", str(cfg), "--trial", str(trial.number), "--format", fmt, "--out", str(out)])
        == 0
    )

    from nas.trial_model import load_trial_model

    model, spec = load_trial_model(study, trial)
    model.eval()
    x = torch.randn(3, spec.in_channels, spec.image_size, spec.image_size)
    with torch.no_grad():
        expected = model(x).numpy()
    if fmt == "onnx":
        sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
        got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    elif fmt == "pt2":
        program = torch.export.load(str(out / "model.pt2"))
        got = program.module()(x).detach().numpy()
    else:
        from search_spaces import ArchSpec, build_model

        rebuilt = build_model(ArchSpec.from_json((out / "arch_spec.json").read_text()))
        rebuilt.load_state_dict(torch.load(out / "model.pt", weights_only=True))
        got = rebuilt.eval()(x).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    # The export holds the trial's own trained weights: its accuracy is the trial's.
    figures = json.loads((out / "figures.json").read_text())
    assert figures["trial"] == trial.number
    assert figures["accuracy"] == pytest.approx(trial.user_attrs["accuracy"])


def test_nan_loss_trial_fails_with_reason_and_study_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nas.train as recipe

    real = recipe.cross_entropy_loss
    calls = {"n": 0}

    def sometimes_nan(smoothing: float = 0.0):  # noqa: ANN202
        inner = real(smoothing)
        calls["n"] += 1
        poisoned = calls["n"] == 1

        def loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            value = inner(model, x, y)
            return value * float("nan") if poisoned else value

        return loss

    monkeypatch.setattr(recipe, "cross_entropy_loss", sometimes_nan)
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path, name="nan", trials=2)
    assert main(["search", str(cfg)]) == 0
    study = optuna.load_study(
        study_name="nan", storage=f"sqlite:///{tmp_path / 'runs/nan/study.db'}"
    )
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 1 and failed[0].user_attrs["fail_reason"] == "nan_loss"
    # The failed trial keeps the energy it burnt before diverging.
    assert failed[0].user_attrs["search_energy_kwh"] > 0
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 2


BAD_CONFIGS = {
    "typo_key": ("[study]\nnmae = 'x'\n", "unknown key 'study.nmae'"),
    "wrong_type": ("[study]\ntrials = 'many'\n", "study.trials must be an integer"),
    "unknown_space": ("[search]\nspaces = ['mlp']\n", "unknown search space 'mlp'"),
    "unknown_dataset": ("[data]\ndataset = 'mnist-3d'\n", "mnist-3d"),
    "unknown_sampler": ("[study]\nsampler = 'grid'\n", "study.sampler 'grid' is unknown"),
    "unknown_meter": ("[hardware]\nmeter = 'wattmeter'\n", "hardware.meter 'wattmeter' is unknown"),
    "unknown_country": ("[carbon]\nregion = 'ATLANTIS'\n", "ATLANTIS"),
    "bad_toml": ("[study\n", "invalid TOML"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_one_line_exit_2(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    text, needle = BAD_CONFIGS[case]
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    assert main(["search", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(error_lines(err)) == 1, err
    assert needle in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--dataset", "npz:missing.npz"], "missing.npz"),
        (["--storage", "postgresql://user:s3cret@127.0.0.1:1/db"], "127.0.0.1"),
        (["--storage", "mysql+nosuchdriver://h/db"], "storage"),
        (["--meter", "rapl"], "rapl"),
    ],
)
def test_bad_arguments_exit_2(
    args: list[str],
    needle: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path, trials=1)
    if args[0] == "--meter" and Path("/sys/class/powercap/intel-rapl:0/energy_uj").exists():
        pytest.skip("RAPL is readable here")
    assert main(["search", str(cfg), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(error_lines(err)) == 1, err
    assert needle in error_lines(err)[0] and "s3cret" not in err and "Traceback" not in err


def test_malformed_npz_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((4, 8, 8)), y_train=np.zeros(4))
    cfg = write_config(tmp_path, trials=1)
    assert main(["search", str(cfg), "--dataset", f"npz:{tmp_path / 'bad.npz'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(error_lines(err)) == 1 and "x_test" in err and "Traceback" not in err


def test_same_name_other_config_refused(
    searched: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = searched
    monkeypatch.chdir(root)
    (root / "other").mkdir(exist_ok=True)
    other = write_config(root / "other", trials=6, epochs=3)  # same name, other epochs
    assert main(["search", str(other)]) == 2
    assert "tiny" in capsys.readouterr().err
