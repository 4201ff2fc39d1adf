"""``econas tabulate``: a table of a study's own space, resumable, searchable as a study."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from nas.cli import main
from nas.errors import BadInputError
from nas.record import TrialAttrs, TrialRecord
from nas.runs import build_context
from nas.search import run_search
from nas.tabular import TableError, load_table
from nas.tabulate import PARAM, parse_epochs, tabulate
from nas.workload import TorchWorkload
from tests.configs import tiny_config


class CountingWorkload(TorchWorkload):
    """Trains as the default does, and counts the trainings (or fails the ``fail_at``-th)."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.trained = 0
        self.fail_at = fail_at

    def train(self, model: Any, data: Any, plan: Any) -> Any:
        self.trained += 1
        if self.fail_at is not None and self.trained == self.fail_at:
            raise KeyboardInterrupt  # the run is stopped here
        return super().train(model, data, plan)


def _run(config: Any, out: Path, archs: int, workload: CountingWorkload, **kw: Any) -> Any:
    ctx = build_context(config).replace(workload=workload)
    return tabulate(config, archs=archs, epochs=[1, 2], out=out, context=ctx, **kw)


def test_tabulate_writes_a_table_and_a_rerun_trains_only_what_is_missing(tmp_path: Path) -> None:
    cfg = tiny_config("tabu")
    out = tmp_path / "mine"
    first = CountingWorkload()
    result = _run(cfg, out, 2, first)
    t = result.table
    assert first.trained == 2 and len(t.archs) == 2 and len(result.trained) == 2
    assert t.param_names == (PARAM,) and t.max_epochs == 2 and t.name == "mine"
    assert t.energy_kind == "estimated" and t.meta["meter"] == "estimate"  # this machine's meter
    assert t.meta["config_fingerprint"] == cfg.fingerprint()
    for arch in t.archs:
        one, two = (t.lookup(arch, epochs=e, repeat=1) for e in (1, 2))
        assert (one.epochs, two.epochs) == (1, 2)
        assert 0 < one.energy_kwh < two.energy_kwh  # metered, cumulative
        assert 0 < one.duration_s < two.duration_s
        assert t.params(arch) > 0
        spec = t.meta["architectures"][arch]
        assert spec["family"] == "cnn"
    before = {f: (out / f).read_bytes() for f in ("results.csv.gz",)}

    again = CountingWorkload()
    result = _run(cfg, out, 2, again)
    assert again.trained == 0 and result.trained == []  # all there: nothing trained
    assert (out / "results.csv.gz").read_bytes() == before["results.csv.gz"]

    more = CountingWorkload()
    result = _run(cfg, out, 3, more)
    assert more.trained == 1 and len(result.table.archs) == 3  # the same two, and one more
    assert set(t.archs) < set(result.table.archs)
    for arch in t.archs:  # what was there is kept as it was
        assert result.table.lookup(arch, epochs=2, repeat=1) == t.lookup(arch, epochs=2, repeat=1)


def test_an_interrupted_tabulate_resumes_without_retraining(tmp_path: Path) -> None:
    cfg = tiny_config("tabi")
    out = tmp_path / "t"
    stopped = CountingWorkload(fail_at=2)
    with pytest.raises(KeyboardInterrupt):
        _run(cfg, out, 3, stopped)
    partial = load_table(out)  # a valid table of what was done
    assert len(partial.archs) == 1
    resumed = CountingWorkload()
    result = _run(cfg, out, 3, resumed)
    assert resumed.trained == 2 and len(result.table.archs) == 3
    assert partial.archs[0] in result.table.archs


def test_a_table_of_another_config_is_not_resumed(tmp_path: Path) -> None:
    out = tmp_path / "t"
    _run(tiny_config("a"), out, 1, CountingWorkload())
    other = tiny_config("a", train={"lr": 0.01})
    with pytest.raises(TableError, match="another config"):
        _run(other, out, 1, CountingWorkload())


def test_bad_arguments_are_one_line_and_make_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    assert parse_epochs("4,1,2,2") == [1, 2, 4]
    for bad in ("", "a,b", "-1,2", "0"):
        with pytest.raises(BadInputError):
            parse_epochs(bad)
    monkeypatch.chdir(tmp_path)
    code = main(["tabulate", "quickstart", "--archs", "2", "--epochs", "x", "--out", "o"])
    assert code == 2 and "--epochs" in capsys.readouterr().err
    code = main(["tabulate", "tabular", "--archs", "2", "--epochs", "1", "--out", "o"])
    assert code == 2 and "a table already" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_tabulated_table_is_searched_as_a_study(tmp_path: Path) -> None:
    cfg = tiny_config("tabs")
    table = _run(cfg, tmp_path / "t", 3, CountingWorkload()).table
    search = tiny_config(
        "s",
        study={"trials": 6, "storage": f"journal:{tmp_path / 's.log'}"},
        search={"benchmark": f"table:{tmp_path / 't'}"},
        train={"epochs": 2},
    )
    study = run_search(search, progress=False).study
    done = [TrialRecord.of(t) for t in study.get_trials(deepcopy=False)]
    assert all(r.state == optuna.trial.TrialState.COMPLETE for r in done)  # one parameter:
    for rec in done:  # every value is a listed architecture
        hit = table.lookup(rec.get(TrialAttrs.benchmark_arch), epochs=2, repeat=1)
        assert rec.accuracy == pytest.approx(hit.val_accuracy)
        assert rec.energy_kind == "estimated"
