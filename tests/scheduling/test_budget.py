"""Carbon budget: usage over all ended trials, stopping within one trial, visible everywhere."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest

from nas.cli import main
from nas.config import config_from_dict
from nas.errors import BadInputError
from nas.record import PHASE_NAMES
from nas.scheduling._budget import CarbonBudgetCallback, budget_usage
from nas.scheduling.step import BudgetGuard
from nas.search import run_search
from tests.configs import tiny_config_dict, to_toml

S = optuna.trial.TrialState


def frozen(state: optuna.trial.TrialState, **attrs: object) -> optuna.trial.FrozenTrial:
    values = [0.5, 0.0] if state == S.COMPLETE else None
    return optuna.trial.create_trial(state=state, values=values, user_attrs=attrs)


def test_usage_counts_every_ended_trial_and_splits_it() -> None:
    phases = dict(phases="train,eval", train_energy_kwh=3.0, eval_energy_kwh=1.0)
    trials = [
        frozen(
            S.COMPLETE,
            family="cnn",
            search_kgco2e=0.5,
            search_energy_kwh=5.0,
            inference_energy_kwh_window=1.0,
            **phases,
        ),
        frozen(
            S.FAIL,
            family="vit",
            search_kgco2e=0.2,
            search_energy_kwh=2.0,
            phases="train",
            train_energy_kwh=2.0,
        ),
        frozen(
            S.PRUNED,
            family="cnn",
            search_kgco2e=0.1,
            search_energy_kwh=1.0,
            phases="train",
            train_energy_kwh=0.5,
        ),
        frozen(S.COMPLETE, family="cnn", search_kgco2e=0.0, reused=True),
        frozen(S.FAIL, family="vit"),  # failed before measuring anything
    ]
    usage = budget_usage(trials)
    assert usage.used_kgco2e == pytest.approx(0.8)
    assert usage.trials == 5
    assert usage.by_state == pytest.approx({"complete": 0.5, "failed": 0.2, "pruned": 0.1})
    assert usage.by_family == pytest.approx({"cnn": 0.6, "vit": 0.2})
    # 0.1 kg/kWh: train 0.3 + 0.2 + 0.05, eval 0.1, inference 0.1; 0.05 of the pruned unaccounted
    assert usage.by_phase == pytest.approx(
        {"train": 0.55, "eval": 0.1, "inference": 0.1, "other": 0.05}
    )
    assert sum(usage.by_phase.values()) == pytest.approx(usage.used_kgco2e)
    assert usage.per_trial_kgco2e == pytest.approx(0.5)  # the reused one cost nothing
    assert budget_usage([optuna.trial.create_trial(state=S.COMPLETE, values=[1, 1])]).trials == 1


@pytest.mark.parametrize(("lookahead", "expected_trials"), [(False, 4), (True, 3)])
def test_callback_stops_within_one_trial(lookahead: bool, expected_trials: int) -> None:
    study = optuna.create_study()
    cb = CarbonBudgetCallback(max_kgco2e=3.5, lookahead=lookahead)

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("search_kgco2e", 1.0)
        return 0.0

    study.optimize(objective, n_trials=20, callbacks=[cb])
    assert len(study.trials) == expected_trials
    a = study.user_attrs
    assert a["carbon_budget_kgco2e"] == 3.5
    assert a["carbon_budget_used_kgco2e"] == pytest.approx(expected_trials)
    reason = a["carbon_budget_stop_reason"]
    assert f"after trial {expected_trials - 1}" in reason and "3.500e+00 kgCO2e" in reason
    assert json.loads(a["carbon_budget_breakdown"])["by_state"] == {"complete": expected_trials}


def test_guard_stops_before_a_trial_once_spent() -> None:
    study = optuna.create_study()
    study.add_trial(frozen(S.FAIL, search_kgco2e=2.0))
    guard = BudgetGuard(max_kgco2e=1.0)

    def objective(trial: optuna.Trial) -> float:
        guard.admit(SimpleNamespace(trial=trial))  # type: ignore[arg-type]
        raise AssertionError("the trial must not train")

    study.optimize(objective, n_trials=5)
    assert [t.state for t in study.trials] == [S.FAIL, S.PRUNED]
    assert (
        "carbon budget spent: 2.000e+00 of 1.000e+00"
        in study.user_attrs["carbon_budget_stop_reason"]
    )


def test_study_stops_at_the_budget_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    # what a trial costs here (the estimate follows CPU time; the first one pays warm-ups)
    cal = run_search(config_from_dict(_doc("cal", 3)), progress=False).study
    per_trial = sorted(t.user_attrs["search_kgco2e"] for t in cal.trials)[1]
    cap = 2.5 * per_trial
    path = tmp_path / "budget.toml"
    path.write_text(to_toml(_doc("b", 8, max_kgco2e=cap)))
    assert main(["search", str(path)]) == 0
    study = optuna.load_study(study_name="b", storage="sqlite:///runs/b/study.db")
    costs = [t.user_attrs.get("search_kgco2e", 0.0) for t in study.trials]
    used = sum(costs)
    a = study.user_attrs
    assert len(study.trials) < 8
    assert a["carbon_budget_used_kgco2e"] == pytest.approx(used)
    # within one trial: it did not start a trial after the budget was spent ...
    assert used - costs[-1] < cap
    # ... nor stop while more than a trial's worth was left
    assert used + max(costs) > cap
    assert a["carbon_budget_stop_reason"].startswith("carbon budget")
    breakdown = json.loads(a["carbon_budget_breakdown"])
    assert breakdown["used_kgco2e"] == pytest.approx(used)
    assert sum(breakdown["by_phase"].values()) == pytest.approx(used)
    # every joule is in a phase: nothing left over as "other"
    assert {"train", "eval"} <= set(breakdown["by_phase"]) <= set(PHASE_NAMES)
    assert breakdown["by_family"] == pytest.approx({"cnn": used})

    capsys.readouterr()
    assert main(["pareto", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"study stopped: {a['carbon_budget_stop_reason']}" in out
    assert "kgCO2e used by the search" in out
    # resuming a spent study is refused with one clear line (exit 2)
    assert main(["search", str(path)]) == 2
    err = capsys.readouterr().err
    assert "carbon budget spent" in err and "Traceback" not in err
    with pytest.raises(BadInputError, match="nothing to run"):
        run_search(config_from_dict(_doc("b", 8, max_kgco2e=cap)), progress=False)


def _doc(name: str, trials: int, **schedule: object) -> dict:
    """One fixed tiny CNN at batch 100, charged France's yearly average."""
    doc = tiny_config_dict(
        name,
        study={"seed": 3, "trials": trials},
        search={"cnn": {"min_stages": 1, "stem_stride_choices": [2], "width_choices": [8]}},
        data={"batch_size": 100},
        train=None,
        carbon={"intensity_g_per_kwh": None, "region": "FRA"},
    )
    if schedule:
        doc["schedule"] = schedule
    return doc
