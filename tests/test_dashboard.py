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


def _call(app, path: str) -> tuple[str, dict]:  # noqa: ANN001 - a WSGI app
    from wsgiref.util import setup_testing_defaults

    environ: dict = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    got: list = []
    body = b"".join(app(environ, lambda status, headers, exc=None: got.extend([status, headers])))
    headers = dict(got[1])
    assert int(headers["Content-Length"]) == len(body)
    return got[0], json.loads(body)


def _app(study: optuna.Study):  # noqa: ANN202
    from optuna_dashboard import wsgi

    from nas.commands.dashboard import readable

    return readable(wsgi(study._storage))


def test_dashboard_summarises_the_stored_config() -> None:
    """The study page showed the whole stored config (kilobytes of JSON) as an attribute."""
    _, study = tiny_study("tiny")
    app = _app(study)
    status, detail = _call(app, f"/api/studies/{study._study_id}")
    assert status.startswith("200")
    attrs = {a["key"]: a["value"] for a in detail["user_attrs"]}
    stored = study.user_attrs["econas_config"]
    shown = attrs["econas_config"]
    assert len(stored) > 1000 and len(shown) < 400
    assert shown.startswith("sampler random; objectives accuracy+kgco2e; spaces cnn+vit")
    assert "fashion-mnist (train 200, val 100, test 100)" in shown and "region FRA" in shown
    assert all(len(v) < 500 for v in attrs.values())
    assert detail["objective_names"] == ["accuracy", "kgco2e"]
    assert len(detail["trials"]) == len(study.trials)  # trials untouched
    trial_attrs = {a["key"] for a in detail["trials"][0]["user_attrs"]}
    assert {"kgco2e", "energy_kind", "arch_spec"} <= trial_attrs
    _, summaries = _call(app, "/api/studies")
    (mine,) = [s for s in summaries["study_summaries"] if s["study_name"] == study.study_name]
    assert {a["key"]: a["value"] for a in mine["user_attrs"]}["econas_config"] == shown


def test_dashboard_filters_the_importance_warning_flood() -> None:
    """Each page view warned once per parameter ("Some regimes ... less than 2 trials")."""
    import warnings

    from optuna.distributions import CategoricalDistribution, FloatDistribution

    from nas.commands.dashboard import quiet_warnings

    study = optuna.create_study(directions=["maximize", "minimize"])
    space = CategoricalDistribution(["a", "b"])
    width = FloatDistribution(0.0, 1.0)
    for n in range(8):  # a conditional parameter that only one trial has: a thin regime
        kind = "b" if n == 0 else "a"
        study.add_trial(
            optuna.trial.create_trial(
                params={"space": kind, f"{kind}.width": n / 8},
                distributions={"space": space, f"{kind}.width": width},
                values=[n / 8, 1.0 - n / 16],
            )
        )
    app = _app(study)
    path = f"/api/studies/{study._study_id}/param_importances"
    with warnings.catch_warnings(record=True) as noisy:
        warnings.simplefilter("always")
        _call(app, path)
    assert any("Some regimes" in str(w.message) for w in noisy)  # what optuna does alone
    with warnings.catch_warnings(record=True) as quiet:
        warnings.simplefilter("always")
        quiet_warnings()
        status, body = _call(app, path)
    assert status.startswith("200") and body["param_importances"]
    assert not [w for w in quiet if "Some regimes" in str(w.message)]
