"""Two `econas search` processes on one study (issue 16), on the real PostgreSQL server of
``conftest.py`` and on SQLite: they share the study's target instead of each running it,
draw different candidates, and no credential reaches any stored attr, report, label or card.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import optuna
import pytest

from nas.cli import main
from nas.record import Efficiency, TrialAttrs
from nas.study import open_storage
from tests.workers.test_workers import PG_PASSWORD, _env

S = optuna.trial.TrialState
TARGET = 3


def _two_searches(config: Path, storage: str, cwd: Path) -> list[str]:
    cmd = [sys.executable, "-m", "nas.cli", "search", str(config), "--storage", storage]
    procs = [
        subprocess.Popen(
            [*cmd, "--trials", str(TARGET)],
            cwd=cwd,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=400)
        assert p.returncode == 0, err[-3000:]
        outputs.append(out + err)
    return outputs


def _check_shared_target(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=open_storage(storage, heartbeat=False))
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (S.COMPLETE, S.PRUNED)]
    # each process stops once finished + running reaches the target; the only overshoot is a
    # trial one process asked for while the other's last trial was being told (one at most)
    assert TARGET <= len(finished) <= TARGET + 1, [t.state for t in trials]
    by_fingerprint: dict[str, list[optuna.trial.FrozenTrial]] = defaultdict(list)
    for t in sorted(finished, key=lambda t: t.number):
        by_fingerprint[t.user_attrs[Efficiency.fingerprint]].append(t)
    for twins in by_fingerprint.values():  # a duplicate is reused, never trained again
        assert all(t.user_attrs.get(Efficiency.reused) for t in twins[1:]), [
            t.number for t in twins
        ]
    return trials


def _with_reuse(config: Path) -> Path:
    text = config.read_text()
    assert "reuse = false" in text
    config.write_text(text.replace("reuse = false", "reuse = true"))
    return config


def test_two_searches_share_one_sqlite_study(tmp_path: Path, tiny_config) -> None:
    config = _with_reuse(tiny_config(tmp_path, "twosearch"))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    _two_searches(config, storage, tmp_path)
    _check_shared_target(storage, "twosearch")


def test_postgres_password_is_never_stored_or_shown(
    postgres_url: str, tmp_path: Path, tiny_config, capsys: pytest.CaptureFixture[str]
) -> None:
    assert PG_PASSWORD in postgres_url
    config = _with_reuse(tiny_config(tmp_path, "pgsecret"))
    outputs = _two_searches(config, postgres_url, tmp_path)
    trials = _check_shared_target(postgres_url, "pgsecret")
    study = optuna.load_study(
        study_name="pgsecret", storage=open_storage(postgres_url, heartbeat=False)
    )
    stored = json.dumps(
        [study.user_attrs, study._storage.get_study_system_attrs(study._study_id)]
        + [[t.user_attrs, t.system_attrs, t.params] for t in trials],
        default=str,
    )
    assert "pgsecret" in stored
    assert PG_PASSWORD not in stored
    stored_config = json.loads(study.user_attrs["econas_config"])
    assert stored_config["study"]["storage"] == postgres_url.replace(f":{PG_PASSWORD}", "")
    done = next(
        t
        for t in trials
        if t.state == S.COMPLETE and TrialAttrs.weights_artifact_id in t.user_attrs
    )
    report, export = tmp_path / "report.html", tmp_path / "export"
    verbs = [
        ["pareto", "--storage", postgres_url, "--study", "pgsecret"],
        ["pareto", "--storage", postgres_url, "--study", "pgsecret", "--json"],
        ["report", "--storage", postgres_url, "--study", "pgsecret", "--out", str(report)],
        ["export", "--storage", postgres_url, "--study", "pgsecret", "--trial", str(done.number)]
        + [
            "--out",
            str(export),
            "--format",
            "state_dict",
            "--artifacts",
            str(tmp_path / "runs" / "pgsecret" / "artifacts"),
        ],
    ]
    for argv in verbs:
        assert main(argv) == 0
        captured = capsys.readouterr()
        outputs.append(captured.out + captured.err)
    written = [report.read_text()] + [p.read_text() for p in sorted(export.glob("*.json"))]
    written.append((export / "README.md").read_text())
    for text in outputs + written:
        assert PG_PASSWORD not in text
