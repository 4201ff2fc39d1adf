"""The Python front door (`import nas`) on a real tiny study: search, front, records, load,
train (projection), export."""

from __future__ import annotations

import json
import os
from pathlib import Path

import optuna
import pytest

import nas
from nas.pareto import pareto_rows
from tests.commands.test_search_cli import write_config


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, nas.SearchResult]:
    root = tmp_path_factory.mktemp("api")
    cfg_path = write_config(root, name="front", trials=6)
    old = os.getcwd()
    os.chdir(root)
    try:
        config = nas.load_config(cfg_path)
        result = nas.run_search(config, trials=2, progress=False)
    finally:
        os.chdir(old)
    return root, cfg_path, result


def test_run_search_reaches_the_trials_asked(searched: tuple[Path, Path, nas.SearchResult]) -> None:
    root, _, result = searched
    assert isinstance(result.study, optuna.Study) and result.new_trials >= 2
    finished = [t for t in result.study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 2  # trials=2 overrides study.trials = 6
    assert (root / "runs" / "front" / "study.db").is_file()  # runs/ under the cwd


def test_front_and_records_read_the_stored_study(
    searched: tuple[Path, Path, nas.SearchResult],
) -> None:
    root, cfg_path, result = searched
    old = os.getcwd()
    os.chdir(root)
    try:
        study = nas.load_study(cfg_path)  # the storage, read back from the config
    finally:
        os.chdir(old)
    same = nas.load_study(
        storage=f"sqlite:///{root / 'runs' / 'front' / 'study.db'}", study_name="front"
    )
    assert [t.number for t in study.trials] == [t.number for t in same.trials]
    front = nas.pareto_front(study)
    assert front and all(isinstance(r, nas.TrialRecord) for r in front)
    assert [r.number for r in front] == [row["trial"] for row in pareto_rows(study)]
    records = nas.trial_records(study)
    assert [r.number for r in records] == [t.number for t in study.trials]
    complete = nas.trial_records(study, states=["complete"])
    assert complete and all(r.complete for r in complete)
    rec = complete[0]
    assert rec.kgco2e is not None and rec.kgco2e > 0 and rec.phases
    assert sum(p.energy_kwh for p in rec.phases) == pytest.approx(rec.search_energy_kwh)
    with pytest.raises(nas.BadInputError, match="unknown trial state 'DONE'"):
        nas.trial_records(study, states=["done"])


def test_train_projection_and_export(
    searched: tuple[Path, Path, nas.SearchResult], tmp_path: Path
) -> None:
    root, cfg_path, result = searched
    number = nas.pareto_front(result.study)[0].number
    old = os.getcwd()
    os.chdir(root)
    try:
        projected = nas.train_trial(cfg_path, trial=number, epochs=2, dry_run=True)
        written = nas.export_trial(
            nas.load_config(cfg_path), trial=number, out=tmp_path / "m", fmt="state_dict"
        )
        with pytest.raises(nas.BadInputError, match="invalid choice: 'tflite'"):
            nas.export_trial(cfg_path, trial=number, out=tmp_path / "x", fmt="tflite")
    finally:
        os.chdir(old)
    assert isinstance(projected, nas.TrainedTrial)  # typed, not a dict
    assert projected.trial == number and projected.dry_run and not projected.trained
    assert projected.projected_kgco2e > 0 and projected.epochs == 2
    assert projected.test_accuracy is None and projected.kgco2e is None  # nothing trained
    assert projected.to_dict()["projected_kgco2e"] == projected.projected_kgco2e
    label = json.loads(Path(written["carbon_label"]).read_text())
    assert written["weights"] == "proxy" and Path(written["model"]).is_file()
    assert json.loads(Path(written["figures"]).read_text())["trial"] == number
    assert "estimated" in json.dumps(label)  # no measured figure on this machine


def test_the_front_door_calls_the_library_not_the_cli() -> None:
    """nas.api builds no argv: it imports neither argparse nor the CLI and its verbs."""
    import ast

    import nas.api

    tree = ast.parse(Path(nas.api.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "argparse" not in imported
    assert not any(m == "nas.cli" or m.startswith("nas.commands") for m in imported)
