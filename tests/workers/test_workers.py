"""`econas worker`: several processes share one study on PostgreSQL (and on a journal file)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from nas.cli import main
from nas.study import open_storage

ROOT = Path(__file__).resolve().parents[2]
PG_PASSWORD = "s3cret-Pw-42"  # as in conftest.py

S = optuna.trial.TrialState


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _run_workers(config: Path, storage: str, *, workers: int, trials: int, cwd: Path) -> None:
    cmd = [sys.executable, "-m", "nas.cli", "worker", str(config), "--storage", storage]
    procs = [
        subprocess.Popen(
            [*cmd, "--trials", str(trials)],
            cwd=cwd,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        assert PG_PASSWORD not in err + out


def _check_counts(storage: str, name: str, expected: int) -> None:
    study = optuna.load_study(study_name=name, storage=open_storage(storage, heartbeat=False))
    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert len(trials) == expected
    assert sorted(numbers) == list(range(expected))  # none lost, none duplicated
    assert len({t._trial_id for t in trials}) == expected
    assert all(t.state in (S.COMPLETE, S.PRUNED, S.FAIL) for t in trials)
    assert not [t for t in trials if t.state == S.RUNNING]
    assert sum(t.state == S.COMPLETE for t in trials) >= 1
    for t in trials:  # every trial carries its configuration fingerprint
        assert len(t.user_attrs.get("fingerprint", "")) == 16


def test_three_workers_on_postgres(postgres_url: str, tmp_path: Path, tiny_config) -> None:
    config = tiny_config(tmp_path, "pgworkers")
    _run_workers(config, postgres_url, workers=3, trials=2, cwd=tmp_path)
    _check_counts(postgres_url, "pgworkers", 6)


def test_two_workers_on_a_journal_file(tmp_path: Path, tiny_config) -> None:
    config = tiny_config(tmp_path, "jworkers")
    storage = f"journal:{tmp_path / 'study.log'}"
    _run_workers(config, storage, workers=2, trials=1, cwd=tmp_path)
    _check_counts(storage, "jworkers", 2)


def test_wrong_password_is_one_line_without_the_password(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, tiny_config
) -> None:
    monkeypatch.chdir(tmp_path)
    config = tiny_config(tmp_path, "badpw")
    bad = postgres_url.replace(PG_PASSWORD, "Wr0ng-Secret-99")
    rc = main(["worker", str(config), "--storage", bad, "--trials", "1"])
    err = capsys.readouterr().err
    assert rc == 2
    lines = [line for line in err.splitlines() if line.startswith("econas: error")]
    assert len(lines) == 1 and "Traceback" not in err
    assert "Wr0ng-Secret-99" not in err and PG_PASSWORD not in err
    assert "***" in lines[0]


def test_unreachable_storage_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, tiny_config
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.chdir(tmp_path)
    config = tiny_config(tmp_path, "unreach")
    url = f"postgresql+psycopg://u:Hidden-Pw-7@127.0.0.1:{port}/nope"
    rc = main(["worker", str(config), "--storage", url, "--trials", "1"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback" not in err and "Hidden-Pw-7" not in err
    assert len([ln for ln in err.splitlines() if ln.startswith("econas: error")]) == 1


def test_worker_with_another_config_is_refused(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, tiny_config
) -> None:
    monkeypatch.chdir(tmp_path)
    first = tiny_config(tmp_path, "clash")
    assert main(["worker", str(first), "--storage", postgres_url, "--trials", "1"]) == 0
    other = tmp_path / "other.toml"
    other.write_text(first.read_text().replace("epochs = 1", "epochs = 2"))
    capsys.readouterr()
    rc = main(["worker", str(other), "--storage", postgres_url, "--trials", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and "different config" in err and PG_PASSWORD not in err
