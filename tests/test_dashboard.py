"""optuna-dashboard (started by `econas dashboard`) serves the trials' flat, unit-named attrs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import optuna
import pytest

from tests.report.tiny_study import tiny_study

ATTRS = (
    "accuracy",
    "kgco2e",
    "energy_kwh",
    "energy_kind",
    "energy_source",
    "intensity_g_per_kwh",
    "train_energy_kwh",
    "search_kgco2e",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - a local test server
        return json.loads(r.read())


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, optuna.Study]]:
    config, study = tiny_study("tiny")
    port = _free_port()
    cmd = [sys.executable, "-m", "nas.cli", "dashboard", "--storage", config.storage_url]
    proc = subprocess.Popen(
        [*cmd, "--host", "127.0.0.1", "--port", str(port)], stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(f"{base}/api/meta")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"dashboard did not start: {proc.stderr.read() if proc.stderr else ''}"
                    )
                time.sleep(0.3)
        yield base, study
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def test_dashboard_serves_named_objectives_and_unit_named_attrs(served) -> None:  # noqa: ANN001
    base, study = served
    studies = _get(f"{base}/api/studies")["study_summaries"]
    (summary,) = [s for s in studies if s["study_name"] == study.study_name]
    detail = _get(f"{base}/api/studies/{summary['study_id']}")
    assert detail["objective_names"] == ["accuracy", "kgco2e"]  # study.set_metric_names
    served_trials = {t["number"]: t for t in detail["trials"]}
    assert set(served_trials) == {t.number for t in study.trials}
    for t in study.trials:
        if t.state != optuna.trial.TrialState.COMPLETE:
            continue
        attrs = {a["key"]: a["value"] for a in served_trials[t.number]["user_attrs"]}
        for key in ATTRS:
            assert key in attrs, key
        assert float(attrs["kgco2e"]) == pytest.approx(t.user_attrs["kgco2e"])
        assert float(attrs["accuracy"]) == pytest.approx(t.user_attrs["accuracy"])
        assert attrs["energy_kind"] == "estimated"
    union = {u["key"] for u in detail["union_user_attrs"]}
    assert {"accuracy", "kgco2e", "energy_kwh"} <= union


def test_dashboard_stops(served) -> None:  # noqa: ANN001
    base, _ = served
    assert _get(f"{base}/api/meta")  # still up inside the fixture; stopped at module end
