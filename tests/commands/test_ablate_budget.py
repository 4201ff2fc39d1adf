"""`econas ablate --budget final` and the scheduling row: each row trained once per repeat as
`econas train` trains; the scheduling row's saving is `schedule simulate`'s; a flat grid saves
nothing; the budget is set by flags."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from nas.cli import main
from tests.commands.test_ablate import write

FINAL = """
[final]
epochs = 2
train_size = 256
test_size = 160
"""
TRAINING_ROWS = ("baseline", "pruning", "distillation", "mixed_precision", "paper_combined")


def _json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out)


def test_final_budget_trains_each_row_once_per_repeat_as_econas_train(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nas.compression import combined_final, paper_combined, techniques

    calls: list[tuple[int, str, int, int]] = []  # (repeat, row, images, epochs)
    where = {"repeat": 0, "row": ""}
    real_train = techniques.train_model

    def spy(model, data, plan):  # noqa: ANN001, ANN202 - every training of a row
        calls.append((where["repeat"], where["row"], len(data), plan.epochs))
        return real_train(model, data, plan)

    finals: list[tuple[int, str]] = []
    real_final = techniques.train_final

    def final_spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - the final-training path
        finals.append((where["repeat"], where["row"]))
        return real_final(*args, **kwargs)

    monkeypatch.setattr(techniques, "train_model", spy)
    monkeypatch.setattr(techniques, "train_final", final_spy)
    monkeypatch.setattr(combined_final, "train_final", final_spy)
    monkeypatch.setattr(paper_combined, "train_final", final_spy)

    def progress(msg: str) -> None:  # "repeat 1/2: pruning (final budget)"
        head, _, rest = msg.partition(": ")
        where["repeat"] = int(head.split()[1].split("/")[0])
        where["row"] = rest.split(" ")[0].rstrip(",")

    monkeypatch.chdir(tmp_path)
    cfg = write(tmp_path, "select_val_size = 96\n" + FINAL)
    from nas.ablation import ablation_config, run_ablation
    from nas.config import load_config

    config = ablation_config(load_config(cfg), budget="final")
    out = run_ablation(config, repeats=2, progress=progress)
    for repeat in (1, 2):
        mine = [c for c in calls if c[0] == repeat]
        for row in TRAINING_ROWS:  # once each, on the whole training split, [final] epochs
            assert [c[2:] for c in mine if c[1] == row] == [(256, 2)], row
            assert finals.count((repeat, row)) == 1, row
        for row in ("quantization", "scheduling", "federated"):
            assert not [c for c in mine if c[1] == row], row  # no final training of their own
        combined = out["details"]["combined"][repeat - 1]
        expected = 0 if combined["starts_from_baseline_weights"] else 1
        assert finals.count((repeat, "combined")) == expected
        assert [c for c in mine if c[1] == "combined"] == [(repeat, "combined", 256, 2)] * expected
        # the selection ranks at the proxy recipe on [data] train_size images, stated
        assert combined["selection_budget"] == {
            "train_images": 192,
            "epochs": 1,
            "val_images": 96,
            "recipe": "[train] recipe; pruned candidates' structures from scratch",
            "final_over_selection_sample_epochs": pytest.approx(256 * 2 / 192),
        }
        assert combined["selection_cost_kwh"] > 0
        run = {r["technique"]: r for r in out["runs"][repeat - 1]}
        assert run["combined"]["train_energy_kwh"] >= combined["selection_cost_kwh"]
    budget = out["budget"]
    assert budget["name"] == "final" and budget["epochs"] == 2
    assert (budget["train_images"], budget["val_images"], budget["test_images"]) == (256, 96, 160)
    assert out["data"] == {"dataset": "fashion-mnist", "train": 256, "val": 96, "test": 160}
    assert out["details"]["pruning"][0]["trained"] == "pruned structure, from scratch"
    # the paper's combination: the pruning row's structure, quantized, scheduled; no search
    for d, run in zip(out["details"]["paper_combined"], out["runs"], strict=True):
        assert d["trained"] == "pruned structure, from scratch" and d["scheduled"]
        assert d["combination"]["quantization"] == "int8_static"
        by_run = {r["technique"]: r for r in run}
        paper, pruning = by_run["paper_combined"], by_run["pruning"]
        assert paper["params"] == pruning["params"] and paper["scheduled"]
        assert "selection_cost_kwh" not in d
    sel = out["combined_selection"]
    assert sel["val_images"] == 96 and sum(sel["chosen"].values()) == 2


def test_scheduling_saves_what_schedule_simulate_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nas import ablation

    saved = dict(ablation._TECHNIQUES)
    keep = ("baseline", "scheduling")
    monkeypatch.chdir(tmp_path)
    try:
        for name in list(ablation._TECHNIQUES):
            if name not in keep:
                del ablation._TECHNIQUES[name]
        extra = 'window_hours = 12\nschedule_policy = "flexible-start"\ncalibrate = false'
        assert main(["ablate", str(write(tmp_path, extra)), "--json", "--repeats", "2"]) == 0
    finally:
        ablation._TECHNIQUES.clear()
        ablation._TECHNIQUES.update(saved)
    out = _json(capsys)
    for rows in out["runs"]:
        base, sched = rows
        info = sched["scheduling"]
        assert info["window_hours"] == 12 and info["policy"] == "flexible-start"
        assert (
            main(
                [
                    "schedule",
                    "simulate",
                    "--trace",
                    "gb_2020",
                    "--job-hours",
                    str(info["job_hours"]),
                    "--window-hours",
                    "12",
                    "--policy",
                    "flexible-start",
                    "--json",
                ]
            )
            == 0
        )
        sim = _json(capsys)
        assert info["saving_pct"] == sim["saving_pct"] and info["jobs"] == sim["jobs"]
        assert sched["train_carbon_change_pct"] == pytest.approx(-sim["saving_pct"], abs=1e-9)
        assert base["train_intensity_g_per_kwh"] == sim["baseline_g_per_kwh"]
        assert sched["train_intensity_g_per_kwh"] == sim["policy_g_per_kwh"]
        oracle = ["--forecast", "oracle"]
        assert (
            main(
                [
                    "schedule",
                    "simulate",
                    "--trace",
                    "gb_2020",
                    "--job-hours",
                    str(info["job_hours"]),
                ]
                + ["--window-hours", "12", "--policy", "flexible-start", "--json", *oracle]
            )
            == 0
        )
        assert info["oracle_saving_pct"] == _json(capsys)["saving_pct"]
        assert sched["energy_kwh"] == base["energy_kwh"]  # energy unchanged
        assert sched["accuracy"] == base["accuracy"]  # accuracy unchanged


def _flat_trace(path: Path, days: int = 5) -> Path:
    t0 = datetime(2020, 1, 1)
    lines = ["Time,Carbon Intensity"]
    lines += [f"{t0 + timedelta(minutes=30 * i):%Y-%m-%d %H:%M:%S},100" for i in range(48 * days)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_flat_trace_saves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nas import ablation

    flat = _flat_trace(tmp_path / "flat.csv")
    saved = dict(ablation._TECHNIQUES)
    monkeypatch.chdir(tmp_path)
    try:
        for name in list(ablation._TECHNIQUES):
            if name not in ("baseline", "scheduling"):
                del ablation._TECHNIQUES[name]
        cfg = write(tmp_path, "calibrate = false\n[lifecycle]\nschedulable_inference_share = 0.5")
        assert main(["ablate", str(cfg), "--json", "--trace", str(flat)]) == 0
    finally:
        ablation._TECHNIQUES.clear()
        ablation._TECHNIQUES.update(saved)
    out = _json(capsys)
    base, sched = out["rows"]
    assert sched["scheduling"]["saving_pct"] == 0.0
    assert sched["scheduling"]["oracle_saving_pct"] == 0.0
    assert sched["train_carbon_change_pct"] == 0.0 and sched["carbon_change_pct"] == 0.0
    assert sched["train_intensity_g_per_kwh"] == base["train_intensity_g_per_kwh"] == 100.0
    assert sched["inference_intensity_g_per_kwh"] == 100.0  # half of it shifted: still 100
    assert "50% as batch jobs" in sched["inference_intensity_source"]
    assert out["grid"]["trace"] == "flat.csv"


def test_grid_shifts_the_schedulable_inference_share_only_for_scheduled_rows() -> None:
    from nas.ablation import Grid
    from nas.config import config_from_dict

    cfg = config_from_dict({"lifecycle": {"schedulable_inference_share": 1.0}})
    grid = Grid.of(cfg)
    now, shifted = grid.inference(scheduled=False), grid.inference(scheduled=True)
    assert shifted.intensity_g_per_kwh < now.intensity_g_per_kwh  # gb_2020 has green hours
    sim = grid.simulate(grid.slot_hours, grid.policy, grid.forecast)
    assert shifted.intensity_g_per_kwh == pytest.approx(sim.policy_g_per_kwh)
    assert grid.job_hours(1.0) == 0.5 and grid.job_hours(1801.0) == 1.0  # whole 30-min slots
    long = grid.training(30 * 3600.0, scheduled=True)  # longer than the 24-h window
    assert long.scheduling is None and "not shifted" in long.source


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--train-size", "all"], "--train-size all is for --budget final"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--window-hours", "0.7"], "window"),
        (["--trace", "no_such_trace"], "ablate.trace"),
        (["--budget", "final", "--val-size", "0"], "--val-size must be >= 1"),
    ],
)
def test_bad_budget_flags_exit_2_before_any_work(
    args: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["ablate", str(write(tmp_path)), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]


def test_the_budget_flags_set_the_budget(tmp_path: Path) -> None:
    from nas.ablation import ablation_config
    from nas.config import load_config

    cfg = load_config(write(tmp_path, FINAL))
    proxy = ablation_config(cfg, epochs=3, train_size=100, val_size=50)
    assert (proxy.train.epochs, proxy.data.train_size, proxy.data.val_size) == (3, 100, 50)
    final = ablation_config(cfg, budget="final", epochs=4, train_size="all", val_size=70)
    assert final.ablate.budget == "final" and final.final.epochs == 4
    assert final.final.train_size is None and final.ablate.select_val_size == 70
    assert final.train.epochs == 1  # the selection's recipe is unchanged
    other = ablation_config(cfg, trace="fr_2020", window_hours=12, inference_predictions=7)
    s = other.ablate
    assert (s.trace, s.window_hours, s.inference_predictions) == ("fr_2020", 12, 7)


def test_the_verbs_budget_choices_are_the_sections() -> None:
    from nas.commands import ablate
    from nas.sections.compression import ABLATE_BUDGETS

    assert ablate._BUDGETS == ABLATE_BUDGETS
