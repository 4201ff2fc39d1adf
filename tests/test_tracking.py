"""MLflow tracking against a real MLflow file store in a temp dir: each finished trial is a run
with its phases' energies and carbon figures, the report and carbon labels are attached, a
resumed study logs only its new trials, and bad tracking set-ups are one line, exit 2."""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from pathlib import Path

import optuna
import pytest

from nas.cli import main
from nas.config import config_from_dict
from nas.record import PHASE_NAMES, Provenance, TrialAttrs, TrialRecord, phase_key
from tests.commands.test_search_cli import write_config

mlflow = pytest.importorskip("mlflow")


def _client(uri: str):  # noqa: ANN202 - mlflow.MlflowClient
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return mlflow.MlflowClient(tracking_uri=uri)


def _trial_runs(client, experiment: str) -> dict[int, object]:  # noqa: ANN001
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r}"
    runs = client.search_runs([exp.experiment_id], filter_string="tags.`econas.kind` = 'trial'")
    numbers = [int(r.data.tags["econas.trial"]) for r in runs]
    assert len(numbers) == len(set(numbers)), f"a trial logged twice: {sorted(numbers)}"
    return {int(r.data.tags["econas.trial"]): r for r in runs}


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, optuna.Study]:
    """`econas search --mlflow file:...` on a tiny study (3 trials), cwd = a temp dir."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = (root / "mlruns").as_uri()
    cfg = write_config(root, name="tracked", trials=3)
    old = os.getcwd()
    os.chdir(root)
    try:
        assert main(["search", str(cfg), "--mlflow", uri]) == 0
    finally:
        os.chdir(old)
    storage = f"sqlite:///{root / 'runs' / 'tracked' / 'study.db'}"
    return root, uri, optuna.load_study(study_name="tracked", storage=storage)


def test_each_finished_trial_is_a_run_with_phase_energy_and_carbon(
    tracked: tuple[Path, str, optuna.Study],
) -> None:
    _, uri, study = tracked
    client = _client(uri)
    runs = _trial_runs(client, "tracked")  # the experiment is named after the study
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED", "FAIL")]
    assert sorted(runs) == [t.number for t in finished] and len(runs) >= 3
    for trial in finished:
        run = runs[trial.number]
        rec = TrialRecord.of(trial)
        m, tags, params = run.data.metrics, run.data.tags, run.data.params
        assert run.info.run_name == f"trial-{trial.number}"
        assert run.info.status == {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}.get(
            trial.state.name, "FAILED"
        )
        assert params == {k: str(v) for k, v in trial.params.items()}
        if trial.state.name != "COMPLETE":
            continue
        # the objectives, by their names
        assert m["accuracy"] == pytest.approx(trial.values[0])
        assert m["kgco2e"] == pytest.approx(trial.values[1])
        # every phase's energy (kWh) and kgCO2e, as stored, at the trial's intensity
        g = rec.num(TrialAttrs.intensity_g_per_kwh)
        assert g is not None and m[str(TrialAttrs.intensity_g_per_kwh)] == pytest.approx(g)
        names = [p.name for p in rec.phases]
        assert {"train", "eval", "store"} <= set(names) and set(names) <= set(PHASE_NAMES)
        for phase in rec.phases:
            kwh = m[phase_key(phase.name, "energy_kwh")]
            assert kwh == pytest.approx(phase.energy_kwh) and kwh > 0
            assert m[phase_key(phase.name, "kgco2e")] == pytest.approx(kwh * g / 1000)
            assert tags[phase_key(phase.name, "energy_kind")] == "estimated"
        assert math.fsum(m[phase_key(n, "energy_kwh")] for n in names) == pytest.approx(
            m[str(TrialAttrs.search_energy_kwh)]
        )
        assert m[str(TrialAttrs.search_kgco2e)] == pytest.approx(rec.search_kgco2e)
        assert m[str(TrialAttrs.kgco2e)] > 0 and m[str(TrialAttrs.energy_kwh)] > 0
        # intensity source and provenance as tags; estimated is never shown as measured
        assert tags[str(TrialAttrs.intensity_source)] == rec.get(TrialAttrs.intensity_source)
        assert tags[str(TrialAttrs.energy_kind)] == "estimated"
        assert tags[str(TrialAttrs.energy_source)] == rec.get(TrialAttrs.energy_source)
        assert tags[str(Provenance.cpu_isa)] == rec.get(Provenance.cpu_isa)
        assert tags[str(Provenance.torch_version)] == rec.get(Provenance.torch_version)
        assert json.loads(tags[str(Provenance.provenance)]) == rec.json(Provenance.provenance)
        assert tags["econas.study"] == "tracked"


def test_report_and_carbon_labels_are_attached(
    tracked: tuple[Path, str, optuna.Study], tmp_path: Path
) -> None:
    from nas.pareto import pareto_trials

    _, uri, study = tracked
    client = _client(uri)
    exp = client.get_experiment_by_name("tracked")
    (summary,) = client.search_runs(
        [exp.experiment_id], filter_string="tags.`econas.kind` = 'study'"
    )
    assert [a.path for a in client.list_artifacts(summary.info.run_id)] == ["report.html"]
    html = Path(
        client.download_artifacts(summary.info.run_id, "report.html", str(tmp_path))
    ).read_text()
    assert "tracked" in html and "kgCO2e" in html
    assert summary.data.metrics["search_kgco2e"] == pytest.approx(
        sum(TrialRecord.of(t).search_kgco2e for t in study.trials)
    )
    runs = _trial_runs(client, "tracked")
    front = pareto_trials(study)
    assert front
    for rec in front:
        run_id = runs[rec.number].info.run_id
        files = {a.path for a in client.list_artifacts(run_id, "carbon_label")}
        assert "carbon_label/carbon_label.json" in files
        path = client.download_artifacts(run_id, "carbon_label/carbon_label.json", str(tmp_path))
        label = json.loads(Path(path).read_text())
        assert json.dumps(label).count("estimated") >= 1
    off_front = set(runs) - {r.number for r in front}
    for number in off_front:
        assert client.list_artifacts(runs[number].info.run_id, "carbon_label") == []


def test_resumed_study_logs_only_new_trials_via_config_section(
    tracked: tuple[Path, str, optuna.Study],
) -> None:
    root, uri, _ = tracked
    cfg = write_config(root, name="tracked", trials=4, extra=f'\n[tracking]\nmlflow = "{uri}"\n')
    old = os.getcwd()
    os.chdir(root)
    try:
        assert main(["search", str(cfg)]) == 0  # same fingerprint: [tracking] is not in it
    finally:
        os.chdir(old)
    study = optuna.load_study(
        study_name="tracked", storage=f"sqlite:///{root / 'runs' / 'tracked' / 'study.db'}"
    )
    runs = _trial_runs(_client(uri), "tracked")
    assert sorted(runs) == [t.number for t in study.trials]  # no trial twice, none missing
    exp = _client(uri).get_experiment_by_name("tracked")
    studies = _client(uri).search_runs(
        [exp.experiment_id], filter_string="tags.`econas.kind` = 'study'"
    )
    assert len(studies) == 1  # the study run is updated, not duplicated


def test_a_finished_study_is_sent_to_a_new_tracker_without_new_trials(
    tracked: tuple[Path, str, optuna.Study], tmp_path: Path
) -> None:
    root, _, _ = tracked
    other = (tmp_path / "later").as_uri()
    old = os.getcwd()
    os.chdir(root)
    try:  # the study already has its trials: nothing runs, everything is logged
        assert main(["search", str(root / "tracked.toml"), "--trials", "1", "--mlflow", other]) == 0
    finally:
        os.chdir(old)
    study = optuna.load_study(
        study_name="tracked", storage=f"sqlite:///{root / 'runs' / 'tracked' / 'study.db'}"
    )
    runs = _trial_runs(_client(other), "tracked")
    assert sorted(runs) == [t.number for t in study.trials]


def test_tracking_failure_never_fails_a_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from nas.tracking._mlflow import MlflowTracker

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("tracking server fell over")

    monkeypatch.setattr(MlflowTracker, "log_trial", broken)
    monkeypatch.setattr(MlflowTracker, "log_study", broken)
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path, name="flaky", trials=2)
    with caplog.at_level(logging.WARNING, logger="nas.tracking"):
        assert main(["search", str(cfg), "--mlflow", (tmp_path / "mlruns").as_uri()]) == 0
    study = optuna.load_study(
        study_name="flaky", storage=f"sqlite:///{tmp_path / 'runs' / 'flaky' / 'study.db'}"
    )
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 2
    warnings = [r.getMessage() for r in caplog.records if "not tracked" in r.getMessage()]
    assert len(warnings) == 2 and "tracking server fell over" in warnings[0]
    assert any("not attached" in r.getMessage() for r in caplog.records)


def _one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    err = [line for line in err if not line.startswith("econas: ") or "error" in line]
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_unreachable_tracking_uri_is_one_line_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path, name="nowhere", trials=1)
    line = _one_line_exit_2(["search", str(cfg), "--mlflow", "http://127.0.0.1:9"], capsys)
    assert "cannot reach MLflow tracking URI http://127.0.0.1:9" in line
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = _one_line_exit_2(["search", str(cfg), "--mlflow", (blocker / "mlruns").as_uri()], capsys)
    assert "cannot reach MLflow tracking URI" in line
    assert not (tmp_path / "runs").exists()  # no study was made


def test_without_mlflow_the_flag_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError
    cfg = write_config(tmp_path, name="noml", trials=1)
    line = _one_line_exit_2(["search", str(cfg), "--mlflow", "sqlite:///m.db"], capsys)
    assert "pip install 'econas[mlflow]'" in line
    assert not (tmp_path / "runs").exists()


def test_tracking_is_not_part_of_the_fingerprint_nor_the_stored_config(tmp_path: Path) -> None:
    base = config_from_dict({"study": {"name": "fp"}})
    tracked = base.replace("tracking", mlflow="sqlite:///x.db", experiment="e")
    assert base.fingerprint() == tracked.fingerprint()
    with pytest.raises(Exception, match="tracking.experiment needs tracking.mlflow"):
        config_from_dict({"tracking": {"experiment": "e"}})
    from nas.study import CONFIG_ATTR, open_study

    tracked = tracked.replace("study", storage=f"sqlite:///{tmp_path / 'fp.db'}")
    study = open_study(tracked)
    assert "tracking" not in json.loads(study.user_attrs[CONFIG_ATTR])
