"""What `econas train` projects (nas.final._project, _spread) and the costs it must count: the
warm-up and build of every process that trains, a checkpoint write every epoch, a restart's
lost energy; the range from benchmarks/projection.py's spread; passive OpenMP waiting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nas.final import (
    SPREAD_FILE,
    Projection,
    hardware_class,
    load_spread,
    project_energy,
    spread_for,
)
from nas.final import SPREAD_FORMAT as FORMAT

ROOT = Path(__file__).resolve().parents[1]

# a proxy of 2 epochs x 1,000 samples: the last epoch 1e-6 kWh, the first 1.5e-6 (warm-up 0.5e-6)
PHASES_KWH = {"build": 1e-7, "train": 2.5e-6, "eval": 2e-8, "test": 4e-8, "upload": 1e-8}
PHASES_S = {"build": 0.1, "train": 2.5, "eval": 0.02, "test": 0.04, "upload": 0.01}
COMMON = dict(
    proxy_train_samples=2000,
    proxy_val_size=100,
    proxy_test_size=200,
    pruned_finetune_samples=None,
    train_size=5000,
    epochs=4,
    val_size=100,
    test_size=400,
    epoch_kwh=(1.5e-6, 1e-6),
    epoch_s=(1.5, 1.0),
)


def test_projection_counts_every_phase_of_the_final_run() -> None:
    p = project_energy(PHASES_KWH, PHASES_S, **COMMON)
    per_sample = 1e-6 / 1000
    expected = (
        per_sample * 5000 * 4  # training
        + 0.5e-6  # the first epoch's warm-up, once
        + 2e-8 / 100 * 100 * 4  # validation every epoch
        + 4e-8 / 200 * 400  # the test set once
        + 1e-8 * 4  # a checkpoint per epoch, as the proxy's weights upload
        + 1e-7  # build, once
        + 1e-8  # the final weights' upload, once
    )
    assert p.energy_kwh == pytest.approx(expected)
    assert p.inputs["checkpoint_kwh_per_epoch"] == pytest.approx(1e-8)
    assert "checkpoint write every epoch" in p.method and "resumed" not in p.method
    assert sum(p.phases_kwh.values()) == pytest.approx(p.energy_kwh)
    assert p.phases_kwh["checkpoint"] == pytest.approx(4e-8)


def test_the_build_a_final_run_redoes_is_the_models_construction_alone() -> None:
    """The proxy's build phase also checks memory and counts FLOPs; a final run only builds
    (benchmarks/projection.py: the whole phase had projected ~10x the final run's build)."""
    whole = project_energy(PHASES_KWH, PHASES_S, **COMMON)
    share = project_energy(PHASES_KWH, PHASES_S, **COMMON, model_build_s=PHASES_S["build"] / 4)
    assert share.phases_kwh["build"] == pytest.approx(whole.phases_kwh["build"] / 4)
    assert whole.energy_kwh - share.energy_kwh == pytest.approx(PHASES_KWH["build"] * 3 / 4)
    assert share.inputs["model_build_share"] == pytest.approx(0.25)
    again = project_energy(PHASES_KWH, PHASES_S, **COMMON, model_build_s=1e9)  # never above
    assert again.phases_kwh["build"] == pytest.approx(whole.phases_kwh["build"])


def test_a_restart_projects_its_rebuild_warm_up_and_lost_energy() -> None:
    fresh = project_energy(PHASES_KWH, PHASES_S, **COMMON)
    resumed = project_energy(PHASES_KWH, PHASES_S, **COMMON, restarts=1, lost_kwh=3e-7, lost_s=0.3)
    assert resumed.energy_kwh - fresh.energy_kwh == pytest.approx(0.5e-6 + 1e-7 + 3e-7)
    assert resumed.duration_s - fresh.duration_s == pytest.approx(0.5 + 0.1 + 0.3)
    assert resumed.inputs["runs"] == 2 and resumed.inputs["lost_kwh"] == 3e-7
    assert resumed.phases_kwh["lost"] == 3e-7
    measured = project_energy(PHASES_KWH, PHASES_S, **COMMON, restarts=1, restart_build_kwh=1e-8)
    assert measured.energy_kwh - fresh.energy_kwh == pytest.approx(0.5e-6 + 1e-8)
    assert "1 earlier run rebuilt and warmed up again" in resumed.method  # not "1 runs"
    assert "3.000e-07 kWh measured as lost" in resumed.method


def test_range_comes_from_the_spread_and_says_where_from() -> None:
    p = Projection(energy_kwh=1e-5, duration_s=10.0, method="m")
    r = p.with_range((-20.0, 10.0), "from 12 fresh runs of benchmarks/projection.py on X")
    assert r.energy_kwh_low == pytest.approx(0.8e-5) and r.energy_kwh_high == pytest.approx(1.1e-5)
    assert "likely 8.000e-06 to 1.100e-05 kWh, from 12 fresh runs" in r.range_text()
    none = p.with_range(None, "benchmarks/projection.py has not been run on Y")
    assert none.energy_kwh_low is None and none.range_text().startswith("range unknown: ")
    assert none.to_json()["kgco2e_low"] is None


def _entries() -> list[dict]:
    hw = hardware_class(cpu_model="CPU A", meter="estimate", device="cpu", threads=1)
    return [
        {
            "hardware_class": hw,
            "commit": "abcdef1234567",
            "at": "2026-01-01T00:00:00Z",
            "fresh": {"runs": 12, "error_pct_min": -8.0, "error_pct_max": 9.0},
            "resumed": {"runs": 12, "error_pct_min": -6.0, "error_pct_max": 14.0},
        }
    ]


def test_spread_matches_the_hardware_class_or_says_it_was_never_benchmarked() -> None:
    hw = hardware_class(cpu_model="CPU A", meter="estimate", device="cpu", threads=1)
    pct, basis = spread_for(hw, resumed=False, entries=_entries())
    assert pct == (-8.0, 9.0)
    assert basis.startswith("from 12 fresh runs of benchmarks/projection.py on CPU A")
    pct, basis = spread_for(hw, resumed=True, entries=_entries())
    assert pct == (-6.0, 14.0) and "resumed runs" in basis
    other_threads = {**hw, "threads": 2}
    pct, basis = spread_for(other_threads, resumed=False, entries=_entries())
    assert pct == (-8.0, 9.0) and "this proxy ran with 2 threads" in basis
    pct, basis = spread_for({**hw, "cpu_model": "CPU B"}, resumed=False, entries=_entries())
    assert pct is None and "has not been run on CPU B" in basis and "CPU A" in basis
    pct, basis = spread_for({**hw, "meter": "nvml"}, resumed=False, entries=_entries())
    assert pct is None


def test_spread_file_is_read_from_the_documented_place(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    path = tmp_path / "spread.json"
    path.write_text(json.dumps({"format": FORMAT, "entries": _entries()}))
    monkeypatch.setenv("ECONAS_PROJECTION_SPREAD", str(path))
    assert load_spread() == _entries()
    path.write_text("{not json")
    assert load_spread() == []  # unreadable: no range, never a crash
    if SPREAD_FILE.exists():  # the shipped one (written by benchmarks/projection.py)
        shipped = json.loads(SPREAD_FILE.read_text())
        assert shipped["format"] == FORMAT and shipped["written_by"] == "benchmarks/projection.py"
        for e in shipped["entries"]:
            assert e["fresh"]["runs"] > 0 and e["commit"]


def test_econas_processes_wait_passively_unless_told_otherwise() -> None:
    """Spinning OpenMP threads charge the estimate for waiting: a 2-thread epoch cost 7-10x
    its quiet CPU time on a loaded 2-core host (issue 27)."""
    code = (
        "import nas, os, torch; from nas.hardware import hardware_provenance; "
        "print(os.environ['OMP_WAIT_POLICY'], hardware_provenance()['omp_wait_policy'])"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "KMP_BLOCKTIME")}
    env["PYTHONPATH"] = str(ROOT)
    run = [sys.executable, "-c", code]
    out = subprocess.run(run, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["PASSIVE", "PASSIVE"]
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run(run, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["ACTIVE", "ACTIVE"]  # a user's setting is kept


def _child(cwd: Path, log: Path, stop_at: int, argv: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tests.final_work_child", str(log), str(stop_at), "--", *argv]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _work(log: Path) -> list[int]:
    return [json.loads(line)["work"] for line in log.read_text().splitlines()]


def test_a_resumed_runs_epochs_cost_no_more_than_the_fresh_runs_beyond_the_projection(
    tmp_path: Path, monkeypatch
) -> None:  # noqa: ANN001
    """Fresh run, and the same run SIGKILLed after epoch 2 and resumed: each resumed epoch's
    work (a deterministic meter, tests/final_work_child.py) stays within the fresh epoch's
    times the resumed projection's upper range; the projection counts the restart."""
    from nas.hardware import hardware_provenance
    from tests.report.tiny_study import tiny_study

    config, study = tiny_study("final", trials=4, seed=3)
    number = next(t.number for t in study.trials if t.state.name == "COMPLETE")
    cpu = hardware_provenance()["cpu_model"]
    entry = {
        "hardware_class": hardware_class(cpu_model=cpu, meter="estimate", device="cpu", threads=1),
        "commit": "test",
        "at": "test",
        "fresh": {"runs": 6, "error_pct_min": -10.0, "error_pct_max": 10.0},
        "resumed": {"runs": 6, "error_pct_min": -10.0, "error_pct_max": 20.0},
    }
    spread = tmp_path / "spread.json"
    spread.write_text(json.dumps({"format": FORMAT, "entries": [entry]}))
    monkeypatch.setenv("ECONAS_PROJECTION_SPREAD", str(spread))
    argv = ["train", "--storage", config.storage_url, "--study", config.study.name]
    argv += ["--trial", str(number), "--epochs", "4", "--train-size", "1500", "--json"]
    fresh_dir, resumed_dir = tmp_path / "fresh", tmp_path / "resumed"
    fresh_dir.mkdir(), resumed_dir.mkdir()
    fresh_log, resumed_log = tmp_path / "fresh.jsonl", tmp_path / "resumed.jsonl"

    fresh = _child(fresh_dir, fresh_log, 0, argv)
    out, err = fresh.communicate(timeout=600)
    assert fresh.returncode == 0, err[-2000:]
    killed = _child(resumed_dir, resumed_log, 2, argv)
    _, status = os.waitpid(killed.pid, os.WUNTRACED)  # stopped itself after epoch 2's checkpoint
    assert os.WIFSTOPPED(status), killed.communicate()[1][-2000:]
    killed.kill()
    killed.communicate()
    assert len(_work(resumed_log)) == 2
    resumed = _child(resumed_dir, resumed_log, 0, argv)
    rout, rerr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, rerr[-2000:]
    assert "resuming at epoch 3/4" in rerr and "projected again for the resumed run" in rerr
    summary = json.loads(rout)
    assert (
        summary["resumed_from_epoch"] == 2
        and "resumed: 1 earlier run rebuilt" in (summary["projection_method"])
    )
    assert summary["projected_energy_kwh"] >= json.loads(out)["projected_energy_kwh"]
    allowed = summary["projected_energy_kwh_high"] / summary["projected_energy_kwh"] - 1.0
    assert allowed == pytest.approx(0.20)
    assert "from 6 resumed runs of benchmarks/projection.py" in summary["projection_range_basis"]
    fresh_work, resumed_work = _work(fresh_log), _work(resumed_log)
    assert len(fresh_work) == 4 and len(resumed_work) == 4
    for epoch in (2, 3):  # the resumed run's own epochs against the same epochs run fresh
        assert resumed_work[epoch] <= fresh_work[epoch] * (1.0 + allowed), (epoch, resumed_work)
        assert resumed_work[epoch] > 0


def test_report_gives_each_projection_with_its_range() -> None:
    import optuna

    from nas.record import final_key
    from nas.report import fidelity

    study = optuna.create_study(directions=["maximize", "minimize"])
    basis = "from 12 fresh runs of benchmarks/projection.py on CPU A, estimate meter on cpu"
    finals = [
        {  # trained
            "final_test_accuracy": 0.9,
            "final_kgco2e": 1e-3,
            "final_energy_kind": "estimated",
            "final_weights_artifact_id": "w0",
            "final_projected_energy_kwh": 2e-5,
            "final_projected_energy_kwh_low": 1.8e-5,
            "final_projected_energy_kwh_high": 2.4e-5,
            "final_projection_range_basis": basis,
            "final_projection_error_pct": 5.0,
        },
        {  # a dry run: projected only, on hardware never benchmarked
            "final_status": "projected",
            "final_projected_energy_kwh": 3e-5,
            "final_projection_range_basis": "benchmarks/projection.py has not been run on CPU B",
        },
    ]
    for n, final in enumerate(finals):
        study.add_trial(optuna.trial.create_trial(values=[0.8, 1e-6], user_attrs={"accuracy": 0.8}))
        study.set_user_attr(final_key(n), json.dumps(final))
    fid = fidelity(study, search_kgco2e=0.01)
    lines = fid.lines()
    assert any(
        "projected 2.000e-05 kWh (likely 1.800e-05 to 2.400e-05 kWh, from 12 fresh runs" in x
        and "error +5.0%" in x
        for x in lines
    ), lines
    assert any(
        x.startswith("trial 1: not trained yet, projected 3.000e-05 kWh (range unknown: ")
        for x in lines
    ), lines
    assert fid.to_json()["projected"][0]["projected_energy_kwh_low"] is None


def test_the_projection_benchmark_still_edits_the_quickstart(tmp_path: Path) -> None:
    """benchmarks/projection.py rewrites studies/quickstart.toml into its proxy study; a change
    to the quickstart (its sampler became "eco") once broke the benchmark before any run."""
    code = (
        "import sys; sys.path.insert(0, 'benchmarks'); import projection; "
        "sys.stdout.write(projection.study_text('proj-r1', 8, 'mnist'))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    config = tmp_path / "proj.toml"
    config.write_text(done.stdout)
    from nas.config import load_config

    cfg = load_config(config)
    assert cfg.study.name == "proj-r1" and cfg.study.sampler == "random"
    assert cfg.study.trials == 8 and cfg.data.dataset == "mnist"


def test_the_projection_benchmarks_noise_floor_is_each_cases_own_repeat_spread() -> None:
    """benchmarks/projection.py states how far the same training, repeated, measured from its
    own median: the floor no projection made before a run gets under on that host."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import projection

    def row(arch: str, measured: float, projected: float) -> dict:
        return {
            "arch": arch,
            "size": 3500,
            "killed": False,
            "measured_kwh": measured,
            "projected_kwh": projected,
        }

    rows = [row("a", m, p) for m, p in ((1.0, 1.0), (1.1, 0.9), (1.4, 1.0))]
    rows += [row("b", m, 2.0) for m in (2.0, 2.0, 2.1)]
    floor = projection.noise_floor(rows)["3500/fresh"]
    assert floor["runs"] == 6
    # a: median 1.1 -> |-9.1|, 0, 27.3 %; b: median 2.0 -> 0, 0, 5 %
    assert floor["repeat"]["worst_abs_pct"] == pytest.approx(300 / 11)
    assert floor["repeat"]["median_abs_pct"] == pytest.approx(2.5)
    assert floor["median_proxy"]["worst_abs_pct"] == pytest.approx(40.0)
    assert floor["proxy"]["worst_abs_pct"] == pytest.approx(10.0)
    assert floor["worst_target_attainable"] is False
    calm = projection.noise_floor([row("a", 1.0, 1.0), row("a", 1.05, 1.0)])["3500/fresh"]
    assert calm["worst_target_attainable"] is True


def test_train_names_each_setting_that_differs_from_the_proxys(monkeypatch) -> None:  # noqa: ANN001
    """The projection assumes the proxy's OpenMP wait policy and freed-memory setting;
    ``econas train`` says which differ, and a setting the proxy did not record says nothing."""
    import nas.final._run as run

    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setattr(run, "freed_memory_kept", lambda: True)
    assert run.setting_differences({"omp_wait_policy": "PASSIVE", "freed_memory_kept": True}) == []
    assert run.setting_differences({}) == []  # a study from before either was recorded
    lines = run.setting_differences({"omp_wait_policy": "ACTIVE", "freed_memory_kept": False})
    assert len(lines) == 2
    assert "OMP_WAIT_POLICY=ACTIVE" in lines[0] and "PASSIVE" in lines[0]
    assert "did not keep freed memory" in lines[1] and "ECONAS_KEEP_FREED_MEMORY" in lines[1]
