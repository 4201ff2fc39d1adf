"""nas.memory: data and training estimates, the budget, and the guards at data load, in a
trial's build phase and in `econas train` (one line and exit 2, or fail_reason out_of_memory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
import torch

from nas.cli import main
from nas.config import config_from_dict
from nas.data import DataBudget, load_data
from nas.errors import ConfigError, DataError, TrialFailure
from nas.memory import (
    GIB,
    SAFETY_FRACTION,
    check_training,
    estimate_data,
    estimate_training,
    memory_budget,
)
from search_spaces import ArchSpec, build_model

ROOT = Path(__file__).resolve().parents[1]
CNN = ArchSpec(
    family="cnn",
    in_channels=1,
    num_classes=10,
    image_size=28,
    config={
        "stem_width": 16,
        "stem_stride": 1,
        "activation": "relu",
        "stages": [
            {"block": "conv", "depth": 2, "kernel": 3, "stride": 2, "width": 32, "se": False},
            {
                "block": "ir",
                "depth": 1,
                "kernel": 3,
                "stride": 2,
                "expand": 4,
                "width": 48,
                "se": True,
            },
        ],
    },
)
VIT = ArchSpec(
    family="vit",
    in_channels=1,
    num_classes=10,
    image_size=28,
    config={
        "patch": 4,
        "dim": 64,
        "depth": 2,
        "heads": 4,
        "mlp_ratio": 2,
        "pool": "mean",
    },
)


def _one_line(err: str) -> str:
    """The one error line: stderr less the banner and the progress bar's per-trial lines."""
    lines = [
        line
        for line in err.strip().splitlines()
        if not line.startswith(("econas: study '", "[")) and line.strip()
    ]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- the estimates ------------------------------------------------------------------------------
def test_issue_repro_shape_is_estimated_without_allocating() -> None:
    """300 RGB images of 512x512 (the issue's .npz), all used: raw 225 MiB, floats 900 MiB."""
    e = estimate_data(
        (300, 512, 512, 3), (300, 512, 512, 3), n_train=250, n_val=50, n_test=300, resolution=None
    )
    px = 512 * 512 * 3
    assert e.raw_bytes == 600 * px
    assert e.float_bytes == 600 * px * 4
    assert e.peak_bytes == 600 * px + 600 * px * 4 + 300 * px * 5  # + the test subset's temps
    assert e.image_size == (512, 512)
    assert "GiB" in e.describe()
    # resized to 64: the floats shrink 64-fold, the conversion temporaries do not
    small = estimate_data(
        (300, 512, 512, 3), (300, 512, 512, 3), n_train=250, n_val=50, n_test=300, resolution=64
    )
    assert small.float_bytes == 600 * 64 * 64 * 3 * 4
    assert small.peak_bytes > small.raw_bytes + small.float_bytes + 300 * px * 5


def test_training_estimate_parts_are_exact_where_they_can_be() -> None:
    model = build_model(CNN)
    n_params = sum(p.numel() for p in model.parameters())
    e = estimate_training(lambda: build_model(CNN), input_shape=(1, 28, 28), batch_size=32)
    assert e.params_bytes == n_params * 4
    assert e.grads_bytes == e.params_bytes
    assert e.optimizer_bytes == 2 * e.params_bytes  # AdamW's two moments
    sgd = estimate_training(
        lambda: build_model(CNN), input_shape=(1, 28, 28), batch_size=32, optimizer="sgd"
    )
    assert sgd.optimizer_bytes == e.params_bytes
    # the input batch is saved by the first conv: at least its bytes
    assert e.activations_bytes >= 32 * 28 * 28 * 4
    # activations grow with the batch (linearly, less the per-channel statistics)
    e2 = estimate_training(lambda: build_model(CNN), input_shape=(1, 28, 28), batch_size=64)
    assert 1.9 < e2.activations_bytes / e.activations_bytes <= 2.0
    assert e.eval_batch_size == 512
    assert e.total_bytes > e.params_bytes * 4


def test_estimate_of_a_model_too_large_to_build_allocates_nothing() -> None:
    """A CNN at 4096x4096, batch 256: petabyte-scale activations, estimated on the meta device."""
    big = ArchSpec(CNN.family, 3, 10, 4096, CNN.config)
    e = estimate_training(lambda: build_model(big), input_shape=(3, 4096, 4096), batch_size=256)
    assert e.total_bytes > 1000 * GIB
    assert e.params_bytes < GIB


_MEASURE = """
import gc, json, sys, threading, time
import psutil, torch
from search_spaces import ArchSpec, build_model
from nas.train import make_optimizer
torch.set_num_threads(1)
spec = ArchSpec.from_json(sys.argv[1]); batch = int(sys.argv[2])
shape = (spec.in_channels, spec.image_size, spec.image_size)
def step(model, opt, n):
    x, y = torch.randn(n, *shape), torch.zeros(n, dtype=torch.long)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
m = build_model(spec); o = make_optimizer(m, name="adamw", lr=1e-3, weight_decay=0.0)
step(m, o, 1)  # warm-up: kernels, autograd engine, optimizer imports
del m, o; gc.collect()
proc = psutil.Process()
base = proc.memory_info().rss
peak, done = [base], threading.Event()
def sample():  # the resident set, polled while the steps run (ru_maxrss may hold an older peak)
    while not done.is_set():
        peak[0] = max(peak[0], proc.memory_info().rss)
        time.sleep(0.0005)
t = threading.Thread(target=sample); t.start()
m = build_model(spec); o = make_optimizer(m, name="adamw", lr=1e-3, weight_decay=0.0)
for _ in range(2):
    step(m, o, batch)
done.set(); t.join()
print(json.dumps(peak[0] - base))
"""


@pytest.mark.parametrize("spec", [CNN, VIT], ids=["cnn", "vit"])
def test_training_estimate_matches_measured_peak(spec: ArchSpec) -> None:
    """Two AdamW steps at batch 128 in a fresh process: the peak growth of its resident set
    (after a warm-up step) against the estimate without the evaluation batch. Measured here:
    ratios 0.7-0.93 for sampled CNNs and ViTs; the tolerance is a factor of 2.5."""
    batch = 128
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, spec.to_json(), str(batch)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    e = estimate_training(
        lambda: build_model(spec),
        input_shape=(spec.in_channels, spec.image_size, spec.image_size),
        batch_size=batch,
    )
    held = e.params_bytes + e.grads_bytes + e.optimizer_bytes
    train_peak = held + max(e.activations_bytes + e.backward_temp_bytes, e.step_temp_bytes)
    assert measured > 8 * 2**20, measured  # the step really allocated something
    assert 1 / 2.5 <= train_peak / measured <= 2.5, (train_peak, measured)


# -- the budget -------------------------------------------------------------------------------
def test_default_budget_is_a_share_of_available_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(available=10 * GIB))
    b = memory_budget(None)
    assert b.limit_bytes == int(10 * GIB * SAFETY_FRACTION) and not b.configured
    assert "available" in b.source
    b = memory_budget(0.5)
    assert b.limit_bytes == GIB // 2 and b.configured and "memory_budget_gb" in b.source


@pytest.mark.parametrize("value", [0, -1, "nan", "inf"])
def test_memory_budget_gb_must_be_positive_finite(value: object) -> None:
    v = float(value) if isinstance(value, str) else value
    with pytest.raises(ConfigError, match="memory_budget_gb"):
        config_from_dict({"hardware": {"memory_budget_gb": v}})
    cfg = config_from_dict({"hardware": {"memory_budget_gb": 2}})
    assert cfg.hardware.memory_budget_gb == 2.0
    # a budget is how a run is limited, not what its trials mean: same study either way
    assert cfg.fingerprint() == config_from_dict({}).fingerprint()


def test_training_check_on_cpu_counts_held_data_against_a_configured_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    e = estimate_training(lambda: build_model(CNN), input_shape=(1, 28, 28), batch_size=32)
    gb = 2 * e.total_bytes / GIB
    cpu = torch.device("cpu")
    check_training(e, device=cpu, memory_budget_gb=gb)  # fits
    with pytest.raises(TrialFailure, match="beside the .* of data held") as info:
        check_training(e, device=cpu, memory_budget_gb=gb, held_bytes=e.total_bytes + 1)
    assert info.value.reason == "out_of_memory"
    import psutil  # default budget: what is available now; held data is not available any more

    monkeypatch.setattr(
        psutil, "virtual_memory", lambda: SimpleNamespace(available=e.total_bytes // 2)
    )
    with pytest.raises(TrialFailure, match="80% of the"):
        check_training(e, device=cpu, memory_budget_gb=None)


def test_training_check_on_cuda_uses_free_device_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    e = estimate_training(lambda: build_model(CNN), input_shape=(1, 28, 28), batch_size=32)
    seen: list[torch.device] = []

    def mem_get_info(device: torch.device) -> tuple[int, int]:
        seen.append(device)
        return free[0], 80 * GIB

    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)
    cuda = torch.device("cuda:0")
    free = [2 * e.total_bytes]
    check_training(e, device=cuda, memory_budget_gb=0.001)  # the host budget is not the GPU's
    free = [e.total_bytes]  # 80% of it is too little
    with pytest.raises(TrialFailure, match="on cuda:0, more than 80% of its") as info:
        check_training(e, device=cuda, memory_budget_gb=None)
    assert info.value.reason == "out_of_memory" and seen == [cuda, cuda]


# -- data load --------------------------------------------------------------------------------
def _npz(path: Path, n: int = 300, size: int = 64, channels: int = 3) -> Path:
    shape = (n, size, size, channels) if channels > 1 else (n, size, size)
    x = np.zeros(shape, np.uint8)
    np.savez_compressed(
        path, x_train=x, y_train=np.arange(n) % 10, x_test=x, y_test=np.arange(n) % 10
    )
    return path


def test_data_over_budget_refused_before_reading_the_arrays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _npz(tmp_path / "big.npz")  # 300 x 64 x 64 x 3: 3.5 MiB raw, 14 MiB float
    import nas.data

    def no_read(*args: object) -> None:
        raise AssertionError("the arrays were read before the memory check")

    monkeypatch.setattr(nas.data, "_read_npz", no_read)
    budget = DataBudget(train_size=None, val_size=50, test_size=None)
    with pytest.raises(
        DataError, match=r"npz:big.npz needs about .* GiB .*memory_budget_gb = 0.01"
    ):
        load_data(str(path), budget=budget, memory_budget_gb=0.01)


def test_data_within_budget_loads_and_records_what_it_holds(tmp_path: Path) -> None:
    path = _npz(tmp_path / "ok.npz", n=40, size=16)
    budget = DataBudget(train_size=20, val_size=10, test_size=10, resolution=8)
    d = load_data(str(path), budget=budget, memory_budget_gb=0.05)
    held = sum(t.nbytes for s in (d.train, d.val, d.test) for t in s.tensors[:1])
    raw = 2 * 40 * 16 * 16 * 3
    assert d.resident_bytes == raw + held


def test_huge_npz_repro_is_one_line_exit_2_and_nothing_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's repro at a scale a test can afford: the budget is made small, not the
    machine. The refusal comes at data load: no study database, no run directory."""
    monkeypatch.chdir(tmp_path)
    _npz(tmp_path / "big.npz", size=128)  # 14 MiB raw, 56 MiB float
    cfg = tmp_path / "big.toml"
    cfg.write_text(
        '[study]\nname = "big"\ntrials = 2\n[data]\ndataset = "npz:big.npz"\ntrain_size = 200\n'
        'val_size = 50\ntest_size = 100\n[hardware]\ndevice = "cpu"\nmeter = "estimate"\n'
        "memory_budget_gb = 0.05\n[carbon]\nintensity_g_per_kwh = 50\n"
    )
    assert main(["search", str(cfg)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "npz:big.npz needs about" in line and "memory_budget_gb = 0.05" in line
    assert not (tmp_path / "runs").exists()  # data is checked before the study is created


def test_search_fails_a_trial_that_would_not_fit_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The data fits, no sampled model does at this batch: every trial fails with
    out_of_memory in its build phase, in seconds, and the study says why in one line."""
    monkeypatch.chdir(tmp_path)
    _npz(tmp_path / "d.npz", n=120, size=32, channels=1)
    cfg = tmp_path / "oom.toml"
    cfg.write_text(
        '[study]\nname = "oom"\ntrials = 2\nsampler = "random"\n[search]\nspaces = ["cnn"]\nbaselines = []\n'
        '[data]\ndataset = "npz:d.npz"\ntrain_size = 60\nval_size = 20\ntest_size = 20\n'
        'batch_size = 60\n[hardware]\ndevice = "cpu"\nmeter = "estimate"\n'
        "memory_budget_gb = 0.004\n[carbon]\nintensity_g_per_kwh = 50\n"
        "[eval]\nmeasure_inference = false\n"
    )
    assert main(["search", str(cfg)]) == 1  # every trial failed: an outcome, not bad input
    line = _one_line(capsys.readouterr().err)
    assert "every trial failed (out_of_memory)" in line
    study = optuna.load_study(study_name="oom", storage="sqlite:///runs/oom/study.db")
    trials = study.get_trials()
    assert trials and all(t.state == optuna.trial.TrialState.FAIL for t in trials)
    for t in trials:
        assert t.user_attrs["fail_reason"] == "out_of_memory"
        assert "to train beside the" in t.user_attrs["fail_message"]
        phases = t.user_attrs["phases"].split(",")
        assert "build" in phases and "train" not in phases  # refused before training


def test_econas_train_refuses_a_model_that_would_not_fit(tmp_path: Path) -> None:
    """`econas train` checks before building (FinalRun.check_memory, called by the command
    and by FinalRun.run): a budget that holds the data but not the training is bad input."""
    from nas.errors import BadInputError
    from nas.final import FinalOptions, FinalRun, final_context
    from tests.report.tiny_study import tiny_study

    config, study = tiny_study("final", trials=4, seed=3)  # shared with tests/test_final.py
    trial = next(t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
    opts = FinalOptions.of(config, train_size=200, device="cpu")
    context = final_context(config, opts, metered=False)
    final = FinalRun(study, trial, context, opts, run_dir=tmp_path)
    final.check_memory()  # the default budget: fits
    held = final.data.resident_bytes
    tight = config.replace("hardware", memory_budget_gb=(held + 2 * 2**20) / GIB)
    # the data is held already (the same context's); only the training is left to check
    final = FinalRun(study, trial, context.replace(config=tight), opts, run_dir=tmp_path)
    with pytest.raises(BadInputError, match=r"model needs about .* to train beside the .* data"):
        final.check_memory()
    assert not any(tmp_path.iterdir())  # nothing written
