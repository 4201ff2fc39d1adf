"""`econas ablate`: the rows with the issue's columns on a tiny slice; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nas.ablation import COLUMNS, PROVENANCE, list_techniques, register_technique
from nas.cli import main

TINY = """
[study]
name = "abl"
seed = 1

[search]
spaces = ["cnn"]

[data]
train_size = 192
val_size = 64
test_size = 128
batch_size = 64

[train]
epochs = 1

[hardware]
device = "cpu"
meter = "estimate"

[carbon]
region = "FRA"

[ablate]
inference_min_duration_s = 0.02
inference_rounds = 1
inference_predictions = 1000
arch = {{ stem_width = 8, stem_stride = 2, activation = "relu", stages = [
  {{ block = "conv", depth = 1, width = 16, kernel = 3, stride = 2, se = false }},
] }}
{extra}
"""
ROWS = [
    "baseline",
    "pruning",
    "quantization",
    "distillation",
    "mixed_precision",
    "scheduling",
    "paper_combined",
    "combined",
    "federated",
]


def write(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "abl.toml"
    path.write_text(TINY.format(extra=extra))
    return path


def test_ablate_json_has_the_rows_with_the_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["ablate", str(write(tmp_path)), "--json", "--repeats", "2", "--seed", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["technique"] for r in out["rows"]] == ROWS
    assert out["seeds"] == [5, 6] and len(out["runs"]) == 2
    base = out["rows"][0]
    for row in out["rows"]:
        assert set(COLUMNS) | set(PROVENANCE) <= set(row)
        # Same meter for every row; federated adds an estimated network term, named as such.
        assert row["energy_kind"] == "estimated"
        assert row["energy_source"].split("+")[0] == "estimate"
        if row["technique"] == "federated":
            assert row["energy_source"] == "estimate+network-estimate"
        assert row["train_energy_kwh"] > 0 and row["inference_energy_kwh_per_1k"] > 0
        life = row["train_energy_kwh"] + row["inference_energy_kwh_per_1k"]  # 1,000 predictions
        assert row["energy_kwh"] == pytest.approx(life, rel=1e-6)
        assert row["kgco2e"] == pytest.approx(row["energy_kwh"] * row["intensity_g_per_kwh"] / 1000)
        # each scope with the intensity it was charged, on the trace
        train_kg = row["train_energy_kwh"] * row["train_intensity_g_per_kwh"] / 1000
        assert row["train_kgco2e"] == pytest.approx(train_kg)
        assert row["kgco2e"] == pytest.approx(row["train_kgco2e"] + row["inference_kgco2e"])
        assert "gb_2020" in row["train_intensity_source"]
        assert "gb_2020" in row["inference_intensity_source"]
        spread = out["spread"][row["technique"]]["accuracy"]
        assert spread["min"] <= row["accuracy"] <= spread["max"] and spread["std"] >= 0
    assert base["energy_change_pct"] == 0 and base["accuracy_delta"] == 0
    by = {r["technique"]: r for r in out["rows"]}
    assert by["pruning"]["params"] < base["params"] and by["pruning"]["flops"] < base["flops"]
    assert by["distillation"]["params"] < base["params"]
    assert by["quantization"]["params"] == base["params"]  # same multiply-adds, INT8 kernels
    assert by["quantization"]["inference_device"] == "cpu"
    # pruning's training includes the baseline's plus the fine-tune
    for run in out["runs"]:
        assert run[1]["train_energy_kwh"] > run[0]["train_energy_kwh"]
    assert out["details"]["distillation"][0]["teacher_energy_kwh"] > 0
    assert any(line.startswith("combined target") for line in out["comparison"])
    assert out["lifecycle"]["inference_predictions"] == 1000
    # teachers: trained for the purpose (the baseline) and counted in full in the row
    for name, dets in out["details"].items():
        for d in dets:
            assert d.get("teacher_training_counted", True) is True, name
    for run in out["runs"]:
        by_run = {r["technique"]: r for r in run}
        dist = out["details"]["distillation"][out["runs"].index(run)]
        assert dist["teacher_training_kwh"] == pytest.approx(by_run["baseline"]["train_energy_kwh"])
        assert dist["teacher_amortised_over"] == 1
        assert by_run["distillation"]["train_energy_kwh"] > by_run["baseline"]["train_energy_kwh"]
    # combined: chosen by a metered search whose cost (and the calibration's) is in the row
    for i, comb in enumerate(out["details"]["combined"]):
        assert set(comb["combination"]) == {
            "precision",
            "distillation",
            "prune_ratio",
            "finetune_epochs",
            "quantization",
        }
        assert comb["selection_cost_kwh"] > 0 and comb["selection_split"] == "val"
        assert len(comb["selection_candidates"]) >= 4
        row = out["runs"][i][ROWS.index("combined")]
        assert row["technique"] == "combined"
        assert row["train_energy_kwh"] >= comb["selection_cost_kwh"]
        assert isinstance(comb["note"], str) and comb["note"]
    for row in out["rows"]:
        assert "break_even_predictions" in row
        assert row["accuracy_delta_ci95"] is not None and row["energy_change_pct_ci95"] is not None
        lo, hi = row["energy_change_pct_ci95"]
        assert lo <= row["energy_change_pct"] <= hi
    for scope in ("training", "lifecycle"):
        assert by["combined"]["target_verdicts"][scope] in (
            "target met",
            "target missed",
            "not resolved at 2 repeats",
        )
    # scheduling: the baseline's job shifted: energy and accuracy unchanged, carbon changed
    sched = by["scheduling"]
    assert sched["train_energy_kwh"] == base["train_energy_kwh"]
    assert sched["accuracy"] == base["accuracy"]
    assert sched["inference_energy_kwh_per_1k"] == base["inference_energy_kwh_per_1k"]
    assert sched["train_carbon_change_pct"] < 0 and sched["energy_change_pct"] == 0
    assert sched["scheduling"]["oracle_saving_pct"] >= sched["scheduling"]["saving_pct"]
    assert by["combined"]["scheduled"] and not base["scheduled"]
    # the paper's combination: the pruning row's model, quantized like the quantization row's,
    # scheduled; its training is the pruning row's path plus the quantization, no search
    paper = by["paper_combined"]
    assert paper["scheduled"] and paper["params"] == by["pruning"]["params"]
    assert paper["inference_device"] == by["quantization"]["inference_device"]
    assert out["details"]["paper_combined"][0]["combination"] == {
        "precision": "fp32",
        "distillation": False,
        "prune_ratio": 0.5,
        "quantization": out["details"]["quantization"][0]["quantization"],
    }
    for run in out["runs"]:
        by_run = {r["technique"]: r for r in run}
        assert by_run["paper_combined"]["train_energy_kwh"] > by_run["pruning"]["train_energy_kwh"]
        assert by_run["paper_combined"]["train_energy_kwh"] < by_run["combined"]["train_energy_kwh"]
    assert any(line.startswith("paper_combined target") for line in out["comparison"])
    assert out["calibration"]["candidates"] and out["hardware_provenance"]["cpu_isa"]
    assert out["deployment_target"] == "cpu"


def test_ablate_table_and_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nas import ablation
    from nas.compression.techniques import Deployed

    def extra_row(ctx):  # noqa: ANN001, ANN202 - a registered technique reusing the baseline
        return Deployed(
            model=ctx.baseline.model,
            device=ctx.device,
            float_model=ctx.baseline.float_model,
            train=list(ctx.baseline.train),
        )

    saved = dict(ablation._TECHNIQUES)
    try:
        register_technique("again", extra_row)
        with pytest.raises(ValueError):
            register_technique("again", extra_row)
        assert list_techniques()[-1] == "again"
        monkeypatch.chdir(tmp_path)
        assert main(["ablate", str(write(tmp_path))]) == 0
    finally:
        ablation._TECHNIQUES.clear()
        ablation._TECHNIQUES.update(saved)
    text = capsys.readouterr().out
    for name in [*ROWS, "again"]:
        assert name in text
    assert "paper -28%" in text and "meter: estimate (estimated)" in text
    # the paper is named; deltas read as signed numbers; no raw dict in the human output
    assert "versus Carbon-Conscious AI (Viswanath), CodeCarbon on a V100" in text
    assert "reference paper" not in text and "pts lost" not in text
    assert "{" not in text and "}" not in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("prune_ratio = 1.2", "ablate.prune_ratio"),
        ('quantization = "int4"', "ablate.quantization"),
        ('family = "rnn"', "ablate.family"),
    ],
)
def test_bad_ablate_settings_exit_2(
    extra: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["ablate", str(write(tmp_path, extra))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]


def test_bad_arch_and_data_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "bad.toml"
    cfg.write_text(write(tmp_path).read_text().replace("stem_stride = 2", "stem_stride = 3"))
    assert main(["ablate", str(cfg)]) == 2
    assert "ablate.arch" in capsys.readouterr().err
    assert main(["ablate", str(write(tmp_path)), "--dataset", "npz:/does/not/exist.npz"]) == 2
    assert main(["ablate", str(write(tmp_path)), "--repeats", "0"]) == 2


def test_an_excluded_precision_is_flagged_and_left_out_of_combined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nas.compression import calibrate as cal_mod

    def per_step(meter, key, fn, **_):  # noqa: ANN001, ANN003, ANN202 - bf16 training 4.1x
        fn()
        return 4.1 if key.startswith("train:bf16") else 1.0

    monkeypatch.setattr(cal_mod, "_per_step", per_step)
    monkeypatch.setattr(cal_mod, "cpu_features", lambda: {"avx2": True})
    cal_mod.clear_cache()
    monkeypatch.chdir(tmp_path)
    extra = "select_prune_ratios = [0.0]\nselect_distillation = [false]\ncalibration_rounds = 2"
    assert main(["ablate", str(write(tmp_path, extra)), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    cal_mod.clear_cache()
    by = {r["technique"]: r for r in out["rows"]}
    mp = by["mixed_precision"]
    assert mp["emulated"] is True and mp["excluded"] is True
    assert mp["excluded_reason"] == (
        "bf16: 4.1x fp32 train energy on this CPU (no AVX512_BF16): not sampled"
    )
    cands = out["details"]["combined"][0]["selection_candidates"]
    assert {c["precision"] for c in cands} == {"fp32"}
    assert by["combined"]["target_verdicts"] == {
        "training": "not resolved at 1 repeat",
        "lifecycle": "not resolved at 1 repeat",
    }


def test_break_even_and_verdict() -> None:
    from nas.ablation import break_even_predictions, combined_verdict

    base = {"train_energy_kwh": 1.0, "inference_energy_kwh_per_1k": 0.002}
    row = {"train_energy_kwh": 2.0, "inference_energy_kwh_per_1k": 0.001}
    assert break_even_predictions(row, base) == pytest.approx(1_000_000)
    assert break_even_predictions({**row, "inference_energy_kwh_per_1k": 0.003}, base) is None
    assert break_even_predictions({**row, "train_energy_kwh": 0.5}, base) == 0.0
    met = {"train_carbon_change_pct_ci95": [-70.0, -60.0], "accuracy_delta_ci95": [-1.0, 0.5]}
    assert combined_verdict(met, 3) == "target met"
    wide = {**met, "accuracy_delta_ci95": [-2.5, 0.5]}
    assert combined_verdict(wide, 3) == "not resolved at 3 repeats"
    short = {**met, "train_carbon_change_pct_ci95": [-40.0, -30.0]}
    assert combined_verdict(short, 3) == "target missed"
    # each scope is judged on its own interval
    both = {**met, "carbon_change_pct_ci95": [-40.0, -30.0]}
    assert combined_verdict(both, 3, scope="training") == "target met"
    assert combined_verdict(both, 3, scope="lifecycle") == "target missed"


def test_a_gpu_deployment_target_needs_a_gpu_and_no_int8(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from nas.ablation import deployment_target
    from nas.config import config_from_dict

    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "gpu.toml"
    cfg.write_text(write(tmp_path).read_text() + '\n[lifecycle]\ntarget_device = "cuda"\n')
    assert main(["ablate", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lifecycle.target_device" in err[0]
    # on a GPU: INT8 (a CPU kernel) is refused; fp16/bf16 on that GPU are what it compares
    doc = {"lifecycle": {"target_device": "cuda"}, "ablate": {"quantization": "int8_static"}}
    with pytest.raises(Exception, match="runs on the CPU"):
        deployment_target(config_from_dict(doc), torch.device("cuda"))
    from nas.compression.techniques import target_quantizations

    assert target_quantizations(torch.device("cuda"), "cnn") == ["fp16", "bf16"]
    assert target_quantizations(torch.device("cpu"), "vit") == ["int8_dynamic"]
