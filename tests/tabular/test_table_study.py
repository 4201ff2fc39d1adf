"""A tabular benchmark as a study (``[search] benchmark``): lookups, infeasible encodings,
reuse across isomorphic encodings, the table's energy labels, the CLI and its errors.

The tiny table (``conftest.py``): ``x`` in {0, 1, 2}, ``op`` in {a, b, c}; (0, a) and (1, a)
are one architecture (A); (2, b) and (2, c) are not listed; epochs 1 and 3 recorded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest

from nas.cli import main
from nas.config import Config
from nas.errors import ConfigError
from nas.record import Efficiency, TrialAttrs, TrialRecord
from nas.search import run_search
from nas.study import open_study
from nas.tabular import bundled_table, bundled_tables, load_table
from tests.configs import tiny_config

INVALID = {(2, "b"), (2, "c")}


def table_config(tmp_path: Path, table: Path, **sections: dict[str, Any]) -> Config:
    study = {
        "storage": f"journal:{tmp_path / 'study.log'}",
        "trials": 30,
        **sections.pop("study", {}),
    }
    return tiny_config(
        "tab",
        study=study,
        search={"benchmark": f"table:{table}", **sections.pop("search", {})},
        **sections,
    )


def trials_of(study: optuna.Study) -> list[TrialRecord]:
    return [TrialRecord.of(t) for t in study.get_trials(deepcopy=False)]


@pytest.mark.parametrize(("train_epochs", "recorded"), [(2, 3), (1, 1), (50, 3)])
def test_a_trial_is_the_tables_row_at_the_next_recorded_epoch(
    tmp_path: Path, make_table, train_epochs: int, recorded: int
) -> None:
    d = make_table()
    table = load_table(d)
    cfg = table_config(tmp_path, d, train={"epochs": train_epochs}, study={"trials": 12})
    study = run_search(cfg, progress=False).study
    done = [r for r in trials_of(study) if r.state == optuna.trial.TrialState.COMPLETE]
    trained = [r for r in done if not r.reused]
    assert trained
    for rec in trained:
        arch = rec.get(TrialAttrs.benchmark_arch)
        repeat = rec.get(TrialAttrs.benchmark_repeat)
        assert repeat == table.repeat_for(arch, cfg.study.seed + rec.number)  # the trial's seed
        hit = table.lookup(arch, epochs=min(train_epochs, 3), repeat=repeat)
        assert rec.get(TrialAttrs.benchmark_epochs) == hit.epochs == recorded
        assert rec.accuracy == pytest.approx(hit.val_accuracy)
        assert rec.get(TrialAttrs.test_accuracy) == pytest.approx(hit.test_accuracy)
        assert rec.energy_kwh == pytest.approx(hit.energy_kwh)  # all of it in phase train
        assert rec.get("train_energy_kwh") == pytest.approx(hit.energy_kwh)
        assert rec.search_energy_kwh == pytest.approx(hit.energy_kwh)  # nothing else costs
        assert rec.kgco2e == pytest.approx(hit.energy_kwh * 50.0 / 1000)  # at 50 g/kWh
        assert rec.get(TrialAttrs.params) == table.params(arch)
        assert rec.get(TrialAttrs.flops) is None  # a table counts no FLOPs
        assert rec.energy_kind == "measured"  # the table's energy_kind, not this machine's
        assert rec.get(TrialAttrs.energy_source) == "table:tiny"
        assert rec.get(TrialAttrs.hardware) == "none"  # the table's hardware
        assert rec.get("train_energy_source") == "table:tiny"
        assert rec.get(TrialAttrs.family) == "table"
        assert rec.get(TrialAttrs.arch) == f"tiny:{arch}"


def test_an_encoding_the_table_does_not_list_is_infeasible_and_free(
    tmp_path: Path, make_table
) -> None:
    cfg = table_config(tmp_path, make_table(), study={"trials": 25})
    study = run_search(cfg, progress=False).study
    bad = [
        t
        for t in study.get_trials(deepcopy=False)
        if (t.params["table.x"], t.params["table.op"]) in INVALID
    ]
    assert bad  # 2 of the 9 encodings: a 25-trial random search draws some
    for t in bad:
        rec = TrialRecord.of(t)
        assert t.state == optuna.trial.TrialState.FAIL
        assert rec.get(TrialAttrs.fail_reason) == "invalid_arch"
        assert "not listed in table tiny" in rec.get(TrialAttrs.fail_message)
        assert rec.search_energy_kwh == 0.0 and rec.energy_kind == "measured"
        assert TrialAttrs.benchmark_arch not in t.user_attrs
    good = [t for t in study.get_trials(deepcopy=False) if t not in bad]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in good)
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in good) == 25  # FAIL don't count


def test_two_isomorphic_encodings_are_one_fingerprint_and_the_second_is_free(
    tmp_path: Path, make_table
) -> None:
    cfg = table_config(tmp_path, make_table(), study={"trials": 3})
    study = open_study(cfg)
    study.enqueue_trial({"table.x": 0, "table.op": "a"})  # arch A
    study.enqueue_trial({"table.x": 1, "table.op": "a"})  # arch A again, another encoding
    study.enqueue_trial({"table.x": 0, "table.op": "b"})  # arch B
    study = run_search(cfg, progress=False).study
    first, second, other = trials_of(study)[:3]
    assert first.get(Efficiency.fingerprint) == second.get(Efficiency.fingerprint)
    assert other.get(Efficiency.fingerprint) != first.get(Efficiency.fingerprint)
    assert not first.reused and second.reused and not other.reused
    assert second.get(Efficiency.reused_from_trial) == first.number
    assert second.accuracy == first.accuracy and second.energy_kwh == first.energy_kwh
    assert second.get(TrialAttrs.benchmark_arch) == "A"
    assert first.search_energy_kwh > 0 and second.search_energy_kwh == 0.0


def test_early_stopping_stops_at_the_tables_epochs(tmp_path: Path, make_table) -> None:
    d = make_table()
    cfg = table_config(
        tmp_path,
        d,
        train={"epochs": 3},
        study={"trials": 20, "sampler": "random"},
        efficiency={"early_stop": True, "early_stop_min_trials": 2, "reuse": False},
    )
    table = load_table(d)
    study = run_search(cfg, progress=False).study
    recs = trials_of(study)
    pruned = [r for r in recs if r.state == optuna.trial.TrialState.PRUNED]
    assert pruned  # 20 trials, half kept at a rung once two reached it
    for rec in recs:
        if rec.get("rung_0_accuracy") is None:
            continue
        arch, repeat = rec.get(TrialAttrs.benchmark_arch), rec.get(TrialAttrs.benchmark_repeat)
        first = table.lookup(arch, epochs=1, repeat=repeat)
        assert rec.get("rung_0_accuracy") == pytest.approx(first.val_accuracy)
        assert rec.get("rung_0_energy_kwh") == pytest.approx(first.energy_kwh)
    for rec in pruned:  # stopped after epoch 1: trained to it, and paid only that
        arch, repeat = rec.get(TrialAttrs.benchmark_arch), rec.get(TrialAttrs.benchmark_repeat)
        assert rec.get(TrialAttrs.benchmark_epochs) == 1
        assert rec.search_energy_kwh == pytest.approx(
            table.lookup(arch, epochs=1, repeat=repeat).energy_kwh
        )


def test_features_that_need_a_model_are_refused(tmp_path: Path, make_table) -> None:
    with pytest.raises(ConfigError, match="efficiency.screen need"):
        table_config(tmp_path, make_table(), efficiency={"screen": "params"})
    with pytest.raises(ConfigError, match="table:DIR"):
        tiny_config("x", search={"benchmark": "tiny"})


def test_cli_searches_a_table_it_has_never_seen(
    tmp_path: Path, make_table, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    d = make_table()
    monkeypatch.chdir(tmp_path)
    code = main(["search", "tabular", "--benchmark", f"table:{d}", "--trials", "30", "--json"])
    assert code == 0
    front = json.loads(capsys.readouterr().out)
    assert front and {r["energy_source"] for r in front} == {"table:tiny"}
    assert {r["family"] for r in front} == {"table"}
    assert (tmp_path / "runs" / "tabular" / "study.log").is_file()
    assert main(["pareto", "tabular", "--storage", "journal:runs/tabular/study.log"]) == 0
    assert "tiny:" in capsys.readouterr().out


def test_cli_a_malformed_table_is_one_line_and_exit_2(
    tmp_path: Path, make_table, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    d = make_table(results=[["A", 1, 3, 0.5, 0.5, "lots", 1.0, 10]])
    monkeypatch.chdir(tmp_path)
    assert main(["search", "tabular", "--benchmark", f"table:{d}", "--trials", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("econas: error: ") and "energy_kwh 'lots' is not a number" in err[-1]
    assert not any("Traceback" in line for line in err)
    assert not (tmp_path / "runs").exists()  # nothing made
    assert main(["search", "tabular", "--benchmark", "table:no-such-table"]) == 2
    assert "no bundled table of that name" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(bundled_tables()))
def test_the_bundled_study_runs_every_bundled_table_by_name(tmp_path: Path, name: str) -> None:
    from nas.config import load_config

    assert load_config("tabular").search.benchmark == "table:ecnas-4v"
    cfg = load_config("tabular").replace(
        "study", trials=10, storage=f"journal:{tmp_path / 's.log'}"
    )
    cfg = cfg.replace("search", benchmark=f"table:{name}")
    table = bundled_table(name)
    study = run_search(cfg, progress=False).study
    done = [r for r in trials_of(study) if r.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 10
    assert all(r.get(TrialAttrs.benchmark_epochs) == table.max_epochs for r in done)
    assert {r.get(TrialAttrs.energy_source) for r in done} == {f"table:{name}"}
    assert {r.energy_kind for r in done} == {table.energy_kind}
    assert all(r.chance_accuracy == pytest.approx(0.1) for r in done)  # meta num_classes 10
