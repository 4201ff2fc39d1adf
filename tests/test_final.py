"""`econas train`: full-budget training, projection, checkpoints and resume, export of what was
trained, the lifecycle and report reading it, and bad input."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

from nas.cli import main
from nas.lifecycle import training_cost
from nas.record import Final, TrialRecord, final_key
from nas.stats import kendall_tau
from tests.child import default_signals
from tests.report.tiny_study import tiny_study

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")


@pytest.fixture(scope="module")
def study_cfg() -> tuple:
    return tiny_study("final", trials=4, seed=3)


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [
        t for t in study.trials if t.state.name == "COMPLETE" and not t.user_attrs.get("reused")
    ]


def _argv(config, *more: str) -> list[str]:  # noqa: ANN001
    return ["train", "--storage", config.storage_url, "--study", config.study.name, *more]


@pytest.fixture(scope="module")
def trained(study_cfg, tmp_path_factory: pytest.TempPathFactory) -> dict:  # noqa: ANN001
    config, study = study_cfg
    trial = max(_complete(study), key=lambda t: t.user_attrs["accuracy"])
    cwd = tmp_path_factory.mktemp("train")
    old = os.getcwd()
    os.chdir(cwd)
    try:
        from contextlib import redirect_stdout
        from io import StringIO

        buf = StringIO()
        with redirect_stdout(buf):
            rc = main(
                _argv(
                    config,
                    "--trial",
                    str(trial.number),
                    "--epochs",
                    "2",
                    "--train-size",
                    "600",
                    "--json",
                )
            )
        assert rc == 0
    finally:
        os.chdir(old)
    return {"out": json.loads(buf.getvalue()), "trial": trial, "cwd": cwd}


def test_train_measures_stores_and_beats_its_proxy_budget(study_cfg, trained) -> None:  # noqa: ANN001
    config, study = study_cfg
    out, trial = trained["out"], trained["trial"]
    for key in (
        "trial",
        "epochs",
        "train_size",
        "test_accuracy",
        "proxy_accuracy",
        "proxy_test_accuracy",
        "energy_kwh",
        "kgco2e",
        "energy_kind",
        "energy_source",
        "intensity_g_per_kwh",
        "projected_energy_kwh",
        "projection_error_pct",
        "resumed_from_epoch",
        "weights_artifact_id",
    ):
        assert key in out, key
    assert out["trial"] == trial.number and out["epochs"] == 2 and out["train_size"] == 600
    assert out["resumed_from_epoch"] == 0 and out["energy_kind"] == "estimated"
    assert 0.0 <= out["test_accuracy"] <= 1.0 and out["energy_kwh"] > 0
    err = (out["energy_kwh"] - out["projected_energy_kwh"]) / out["projected_energy_kwh"] * 100
    assert out["projection_error_pct"] == pytest.approx(err)
    study = optuna.load_study(study_name=config.study.name, storage=config.storage_url)
    rec = TrialRecord.of(study.trials[trial.number], study)
    assert rec.has_final and rec.final[Final.test_accuracy] == out["test_accuracy"]
    phases = json.loads(rec.final[Final.phases])
    assert {"build", "train", "eval", "checkpoint", "quantize", "test", "upload", "store"} <= set(
        phases
    )
    assert math.isclose(sum(phases.values()), rec.final[Final.energy_kwh], rel_tol=1e-9)
    assert json.loads(rec.final[Final.provenance])["cpu_isa"]
    # the lifecycle now charges the measured full-budget training, not the proxy's
    kg, basis = training_cost(rec)
    assert kg == pytest.approx(out["kgco2e"]) and "full-budget training" in basis


def test_pareto_json_and_report_show_the_final_training(study_cfg, trained, capsys) -> None:  # noqa: ANN001
    config, _ = study_cfg
    capsys.readouterr()
    assert (
        main(["pareto", "--storage", config.storage_url, "--study", config.study.name, "--json"])
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    mine = [r for r in rows if r["trial"] == trained["trial"].number]
    if mine:  # the trained trial is on the front
        assert mine[0]["final"]["test_accuracy"] == trained["out"]["test_accuracy"]
    out = trained["cwd"] / "r.html"
    assert (
        main(
            [
                "report",
                "--storage",
                config.storage_url,
                "--study",
                config.study.name,
                "--out",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    fid = json.loads(capsys.readouterr().out)["fidelity"]
    assert [r["trial"] for r in fid["trained"]] == [trained["trial"].number]
    assert fid["kendall_tau"] is None and "two or more" in fid["tau_note"]
    assert "Proxy fidelity" in out.read_text()


def test_export_ships_the_final_weights_and_reproduces_test_accuracy_from_raw_images(
    study_cfg,
    trained,
    tmp_path: Path,
    capsys,  # noqa: ANN001
) -> None:
    config, study = study_cfg
    trial = trained["trial"]
    argv = [
        "export",
        "--storage",
        config.storage_url,
        "--study",
        config.study.name,
        "--trial",
        str(trial.number),
        "--format",
        "onnx",
        "--out",
        str(tmp_path / "x"),
        "--inference-min-duration-s",
        "0.05",
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "proxy" not in err  # the final weights: no proxy warning
    prep = json.loads((tmp_path / "x" / "preprocessing.json").read_text())
    label = json.loads((tmp_path / "x" / "carbon_label.json").read_text())
    assert label["weights"] == "final" and label["final_training"]["kind"] == "estimated"
    assert label["final_training"]["test_accuracy"] == trained["out"]["test_accuracy"]
    # raw Fashion-MNIST test images, through preprocessing.json, into ONNX Runtime
    import onnxruntime as ort

    from nas.data import _fashion_mnist

    *_, x_test, y_test, _src = _fashion_mnist(Path.home() / ".cache" / "econas")
    x = x_test.astype(np.float32).transpose(0, 3, 1, 2) * prep["scale"]
    mean = np.array(prep["mean"], np.float32)[None, :, None, None]
    std = np.array(prep["std"], np.float32)[None, :, None, None]
    x = (x - mean) / std
    sess = ort.InferenceSession(
        str(tmp_path / "x" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    name = sess.get_inputs()[0].name
    pred = np.concatenate(
        [sess.run(None, {name: x[i : i + 2000]})[0].argmax(1) for i in range(0, len(x), 2000)]
    )
    assert prep["input_shape"] == [1, 28, 28] and len(pred) == 10_000
    assert abs(float((pred == y_test).mean()) - trained["out"]["test_accuracy"]) <= 0.005
    # asked for the proxy, it says so in one line
    assert (
        main(
            [
                *argv[:-4],
                "--out",
                str(tmp_path / "p"),
                "--weights",
                "proxy",
                "--format",
                "state_dict",
            ]
        )
        == 0
    )
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "proxy weights" in ln]
    assert len(lines) == 1 and "1-epoch proxy on 200 images" in lines[0]


def test_dry_run_projects_and_stops(study_cfg, tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: ANN001
    config, study = study_cfg
    monkeypatch.chdir(tmp_path)
    trial = min(_complete(study), key=lambda t: t.user_attrs["accuracy"])  # not the trained one
    capsys.readouterr()
    assert main(_argv(config, "--trial", str(trial.number), "--dry-run", "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dry_run"] and out["projected_energy_kwh"] > 0 and out["projected_kgco2e"] > 0
    assert "per sample-epoch" in out["projection_method"] and out["test_accuracy"] is None
    assert not (tmp_path / "runs").exists()  # nothing trained, no checkpoint
    stored = TrialRecord.of(trial, study).final  # the projection is kept with the trial
    assert stored[Final.status] == "projected" and not TrialRecord.of(trial, study).has_final
    assert stored[Final.projected_energy_kwh] == pytest.approx(out["projected_energy_kwh"])
    # a budget below the projection refuses to start: one line, exit 2
    cap = out["projected_kgco2e"] / 2
    assert main(_argv(config, "--trial", str(trial.number), "--max-kgco2e", repr(cap))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "exceeds" in err[-1] and "not started" in err[-1] and "Traceback" not in "\n".join(err)


def test_bad_input_is_one_line_and_exit_2(study_cfg, tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: ANN001
    config, study = study_cfg
    monkeypatch.chdir(tmp_path)
    good = _complete(study)[0].number
    cases = [
        (["--trial", "999"], "no trial 999"),
        (["--trial", str(good), "--epochs", "0"], "--epochs must be >= 1"),
    ]
    failed = [t for t in study.trials if t.state.name != "COMPLETE"]
    if failed:
        cases.append((["--trial", str(failed[0].number)], "only a COMPLETE trial"))
    for extra, message in cases:
        capsys.readouterr()
        assert main(_argv(config, *extra)) == 2, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


def _checkpoint(cwd: Path, config, number: int) -> Path:  # noqa: ANN001
    return cwd / "runs" / config.study.name / "final" / f"trial-{number}" / "checkpoint.pt"


def test_corrupt_or_foreign_checkpoints_are_refused_never_restarted(
    study_cfg,
    trained,
    capsys,  # noqa: ANN001
) -> None:
    config, study = study_cfg
    cwd, number = trained["cwd"], trained["trial"].number
    ckpt = _checkpoint(cwd, config, number)
    other = next(t.number for t in _complete(study) if t.number != number)
    foreign = _checkpoint(cwd, config, other)
    foreign.parent.mkdir(parents=True, exist_ok=True)
    foreign.write_bytes(ckpt.read_bytes())  # trial A's checkpoint where B's belongs
    old = os.getcwd()
    os.chdir(cwd)
    try:
        args = ["--epochs", "2", "--train-size", "600"]
        capsys.readouterr()
        assert main(_argv(config, "--trial", str(other), *args)) == 2
        assert f"belongs to trial {number}" in capsys.readouterr().err
        state = torch.load(ckpt, weights_only=True)
        state["record_version"] = 99
        torch.save(state, foreign)
        state["trial"] = other
        torch.save(state, foreign)
        assert main(_argv(config, "--trial", str(other), *args)) == 2
        assert "another econas (record version 99" in capsys.readouterr().err
        foreign.write_bytes(b"not a checkpoint")
        assert main(_argv(config, "--trial", str(other), *args)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is corrupt" in err[0]
        assert foreign.read_bytes() == b"not a checkpoint"  # not overwritten by a fresh start
        assert (
            main(_argv(config, "--trial", str(number), "--epochs", "3", "--train-size", "600")) == 2
        )
        assert "other settings (epochs)" in capsys.readouterr().err
    finally:
        os.chdir(old)


def _train_cmd(config, number: int, *child: str) -> list[str]:  # noqa: ANN001
    """`econas train` of trial ``number`` (2 epochs of 600 images); with ``child``
    (``STOP_EPOCH [work]``), run by tests/final_stop_child.py, which freezes itself mid-epoch."""
    argv = _argv(config, "--trial", str(number), "--epochs", "2", "--train-size", "600", "--json")
    module = ["tests.final_stop_child", *child, "--"] if child else ["nas.cli"]
    return [sys.executable, "-m", *module, *argv]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _folder(cwd: Path, config, number: int) -> Path:  # noqa: ANN001
    return cwd / "runs" / config.study.name / "final" / f"trial-{number}"


def _wait_stopped(proc: subprocess.Popen, timeout_s: float = 300) -> None:
    """Until ``proc`` has stopped itself (SIGSTOP); fails if it exits or takes too long."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid, status = os.waitpid(proc.pid, os.WNOHANG | os.WUNTRACED)
        if pid:
            assert os.WIFSTOPPED(status), f"exited ({status}): {proc.stderr.read()[-2000:]}"
            return
        time.sleep(0.02)
    proc.kill()
    pytest.fail("the child never stopped itself")


def _start_frozen(config, number: int, cwd: Path, *child: str) -> subprocess.Popen:  # noqa: ANN001
    """`econas train` started in a subprocess and returned frozen at a known point: right
    after its first progress.json write in epoch ``child[0]`` (tests/final_stop_child.py)."""
    proc = subprocess.Popen(
        _train_cmd(config, number, *child),
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_signals,  # SIGINT reaches it even when the suite runs in background
    )
    _wait_stopped(proc)
    return proc


def _start_and_freeze_mid_epoch(config, number: int, cwd: Path) -> tuple:  # noqa: ANN001
    """`econas train` frozen inside epoch 2, after epoch 1's checkpoint and once epoch 2 has
    written its energy so far; with the command that resumes it."""
    proc = _start_frozen(config, number, cwd, "1")
    folder = _folder(cwd, config, number)
    assert json.loads((folder / "progress.json").read_text())["epoch"] == 1
    assert torch.load(folder / "checkpoint.pt", weights_only=True)["epoch"] == 1
    return proc, _train_cmd(config, number), _env(), folder


def _ledger_kwh(ckpt: dict) -> dict[str, float]:
    return {d["name"]: sum(d["energy_j"].values()) / 3.6e6 for d in ckpt["ledger"]}


def test_sigkill_mid_epoch_resumes_at_the_boundary_and_keeps_every_joule(
    study_cfg,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    config, study = study_cfg
    number = _complete(study)[-1].number
    proc, cmd, env, folder = _start_and_freeze_mid_epoch(config, number, tmp_path)
    spent = json.loads((folder / "progress.json").read_text())
    ckpt = torch.load(folder / "checkpoint.pt", weights_only=True)
    proc.kill()
    proc.wait()
    carried = _ledger_kwh(ckpt)
    lost_kwh = sum(spent["spent"]["energy_j"].values()) / 3.6e6
    rerun = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"resuming at epoch {ckpt['epoch'] + 1}/2" in rerun.stderr
    out = json.loads(rerun.stdout)
    assert out["resumed_from_epoch"] == ckpt["epoch"]
    assert out["lost_energy_kwh"] == pytest.approx(lost_kwh, rel=1e-9)  # recorded, not dropped
    study = optuna.load_study(study_name=config.study.name, storage=config.storage_url)
    phases = json.loads(json.loads(study.user_attrs[final_key(number)])[Final.phases])
    assert phases["lost"] == pytest.approx(lost_kwh, rel=1e-9)
    for name, kwh in carried.items():  # carried over, each counted once
        assert phases[name] >= kwh * (1 - 1e-9)
    new_kwh = out["energy_kwh"] - sum(carried.values()) - lost_kwh
    assert new_kwh > 0  # the resumed epochs' own energy
    assert out["energy_kwh"] == pytest.approx(sum(phases.values()), rel=1e-9)


def _spent_kwh(folder: Path) -> float:
    return (
        sum(json.loads((folder / "progress.json").read_text())["spent"]["energy_j"].values())
        / 3.6e6
    )


def test_two_sigkills_before_the_first_checkpoint_lose_no_joule(study_cfg, tmp_path: Path) -> None:  # noqa: ANN001
    """Issue 26 item 3: killed before its first checkpoint, rerun, killed again at the same
    point, then finished: both kills' energy is recorded as lost, each exactly once. The work
    meter makes the two killed runs' spending equal (same build, same first batch)."""
    config, study = study_cfg
    number = sorted(_complete(study), key=lambda t: t.user_attrs["accuracy"])[1].number
    folder = _folder(tmp_path, config, number)
    first = _start_frozen(config, number, tmp_path, "0", "work")
    one = _spent_kwh(folder)
    first.kill()
    first.communicate()
    assert one > 0 and not (folder / "checkpoint.pt").exists()
    second = _start_frozen(config, number, tmp_path, "0", "work")
    both = _spent_kwh(folder)
    second.kill()
    second.communicate()
    assert not (folder / "checkpoint.pt").exists()
    assert both == pytest.approx(2 * one, rel=1e-9)  # the first kill's energy carried on
    done = subprocess.run(
        _train_cmd(config, number, "-1", "work"),
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["lost_energy_kwh"] == pytest.approx(2 * one, rel=1e-9)  # once each, not dropped
    study = optuna.load_study(study_name=config.study.name, storage=config.storage_url)
    phases = json.loads(json.loads(study.user_attrs[final_key(number)])[Final.phases])
    assert phases["lost"] == pytest.approx(2 * one, rel=1e-9)
    assert out["energy_kwh"] == pytest.approx(sum(phases.values()), rel=1e-9)
    assert not (folder / "progress.json").exists()


def test_a_second_train_of_the_same_trial_is_refused_while_the_first_runs(
    study_cfg,  # noqa: ANN001
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 26 item 4: one run per trial; the second (this process) gets one line and exit
    2 while the first (a child frozen mid-epoch) holds the lock, and nothing of it is
    touched; once the first has finished, the same command reports the trial trained."""
    config, study = study_cfg
    number = sorted(_complete(study), key=lambda t: t.user_attrs["accuracy"])[2].number
    folder = _folder(tmp_path, config, number)
    first = _start_frozen(config, number, tmp_path, "1")
    monkeypatch.chdir(tmp_path)
    checkpoint, progress = (folder / "checkpoint.pt").read_bytes(), (folder / "progress.json")
    spent = progress.read_text()
    argv = _argv(config, "--trial", str(number), "--epochs", "2", "--train-size", "600")
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert f"trial {number} of study" in err[0] and "another econas train" in err[0]
    assert f"(pid {first.pid})" in err[0] and "train.lock" in err[0]
    assert (folder / "checkpoint.pt").read_bytes() == checkpoint and progress.read_text() == spent
    first.send_signal(signal.SIGCONT)
    out, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err[-2000:]
    study = optuna.load_study(study_name=config.study.name, storage=config.storage_url)
    stored = json.loads(study.user_attrs[final_key(number)])
    assert stored[Final.weights_artifact_id] == json.loads(out)["weights_artifact_id"]
    assert main(argv) == 0  # the lock went with its process; the trial is trained
    assert "already trained" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [
        (signal.SIGINT, 130, "econas: interrupted"),
        (signal.SIGTERM, 143, "econas: terminated (SIGTERM)"),  # issue 26 item 5: as Ctrl-C
    ],
    ids=["sigint", "sigterm"],
)
def test_ctrl_c_keeps_the_boundary_and_the_interrupted_epochs_energy(
    study_cfg,  # noqa: ANN001
    tmp_path: Path,
    signum: int,
    code: int,
    line: str,
) -> None:
    config, study = study_cfg
    # not the module's trained trial (the most accurate), whose record other tests read
    number = min(_complete(study), key=lambda t: t.user_attrs["accuracy"]).number
    proc, cmd, env, folder = _start_and_freeze_mid_epoch(config, number, tmp_path)
    before = torch.load(folder / "checkpoint.pt", weights_only=True)
    proc.send_signal(signum)  # delivered when it runs again
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code and err.strip().splitlines()[-1] == line, err[-2000:]
    after = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert after["epoch"] == before["epoch"]  # the boundary's state, not the half epoch's
    for key, value in before["trainer"]["model"].items():
        assert torch.equal(after["trainer"]["model"][key], value)
    lost = _ledger_kwh(after)["lost"]
    assert lost > 0 and not (folder / "progress.json").exists()  # in the ledger, once
    rerun = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    out = json.loads(rerun.stdout)
    assert out["resumed_from_epoch"] == before["epoch"]
    assert out["lost_energy_kwh"] == pytest.approx(lost, rel=1e-9)


def test_kendall_tau() -> None:
    assert kendall_tau([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert kendall_tau([1, 1, 2, 3], [1, 2, 2, 3]) == pytest.approx(0.8)  # tau-b, ties
    assert math.isnan(kendall_tau([1.0], [2.0]))


def test_fidelity_and_payback_from_stored_trials() -> None:
    from nas.report import fidelity

    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_user_attr("econas_config", json.dumps({"lifecycle": {"requests_per_day": 1e6}}))
    # (proxy accuracy, inference J per sample, final test accuracy, final kgCO2e)
    for acc, j, final_acc, final_kg in [
        (0.9, 0.02, 0.93, 0.010),
        (0.8, 0.005, 0.91, 0.004),
        (0.7, 0.001, 0.85, 0.002),
    ]:
        study.add_trial(
            optuna.trial.create_trial(
                values=[acc, 1e-6],
                user_attrs={
                    "accuracy": acc,
                    "inference_energy_j_per_sample": j,
                    "intensity_g_per_kwh": 100.0,
                },
            )
        )
        n = len(study.trials) - 1
        study.set_user_attr(
            final_key(n),
            json.dumps(
                {
                    "final_test_accuracy": final_acc,
                    "final_kgco2e": final_kg,
                    "final_energy_kind": "estimated",
                    "final_weights_artifact_id": f"w{n}",
                }
            ),
        )
    fid = fidelity(study, search_kgco2e=0.05)
    assert fid.kendall_tau == pytest.approx(1.0)  # proxy and final rankings agree
    rows = {r["trial"]: r for r in fid.rows}
    assert rows[0]["payback"].startswith("none needed")  # the most accurate itself
    # trial 1 saves (0.02 - 0.005) J x 1e6 a day at 100 g/kWh against trial 0
    saved = (0.02 - 0.005) / 3.6e6 * 1e6 * 100.0 / 1000.0
    days = (0.05 + 0.004) / saved
    assert rows[1]["payback"].startswith(f"{days:.3g} days")
    no_volume = optuna.create_study(directions=["maximize", "minimize"])
    no_volume.add_trial(study.trials[1])
    no_volume.set_user_attr(final_key(0), study.user_attrs[final_key(1)])
    assert "unknown" in fidelity(no_volume, 0.05).rows[0]["payback"]
