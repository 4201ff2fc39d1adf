"""Calibration: candidates costing more energy than fp32 are excluded with a stated reason, a
config flag forces them back, a study stores it once and its energy is in the search cost."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from nas.compression import calibrate as cal_mod
from nas.compression.calibrate import Calibration, calibrate, clear_cache
from nas.energy import create_meter
from nas.record import StudyAttrs

CPU = torch.device("cpu")
NO_FEATURES = {name: False for name in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni")}


def fake_costs(costs: dict[str, float]) -> Any:
    """A ``_per_step`` whose energy per step is ``costs[stage:name]`` (1.0 otherwise)."""

    def per_step(meter: Any, key: str, fn: Any, **_: Any) -> float:
        fn()
        stage, name, _fam = key.split(":")
        return costs.get(f"{stage}:{name}", 1.0)

    return per_step


@pytest.fixture(autouse=True)
def _fresh() -> None:
    clear_cache()


def run(meter: Any, **kw: Any) -> Calibration:
    args: dict[str, Any] = {
        "families": ["cnn"],
        "input_shape": (1, 16, 16),
        "num_classes": 10,
        "batch_size": 8,
        "device": CPU,
        "meter": meter,
        "precisions": ["fp32", "amp_bf16", "dynamic_bf16"],
        "quantizations": ["fp32", "int8_dynamic", "int8_static"],
        "rounds": 3,
        "min_steps": 1,
        "min_duration_s": 0.001,
    }
    return calibrate(**{**args, **kw})


def test_a_candidate_dearer_than_fp32_is_excluded_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        cal_mod, "_per_step", fake_costs({"train:bf16": 4.1, "inference:int8_static": 0.5})
    )
    monkeypatch.setattr(cal_mod, "cpu_features", lambda: NO_FEATURES)
    meter = create_meter("estimate", device="cpu")
    cal = run(meter)
    bf16 = cal.candidates["train:bf16"]
    assert bf16.excluded and not bf16.native and bf16.ratio_median == pytest.approx(4.1)
    assert bf16.reason == "bf16: 4.1x fp32 train energy on this CPU (no AVX512_BF16): not sampled"
    assert not cal.candidates["inference:int8_static"].excluded
    assert cal.candidates["inference:int8_static"].ratio_median == pytest.approx(0.5)
    # every precision training in bf16 goes; fp32 and INT8 stay
    assert cal.allowed_precisions(["fp32", "amp_bf16", "dynamic_bf16"]) == ("fp32",)
    assert cal.allowed_quantizations(["fp32", "int8_static"]) == ("fp32", "int8_static")
    assert cal.energy_kwh > 0 and cal.energy_kind == "estimated"
    # stored and read back as JSON
    again = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again.reasons == cal.reasons and again.excluded("train") == {"bf16"}


def test_force_puts_an_excluded_candidate_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cal_mod, "_per_step", fake_costs({"train:bf16": 3.0}))
    monkeypatch.setattr(cal_mod, "cpu_features", lambda: NO_FEATURES)
    cal = run(create_meter("estimate", device="cpu"), force=["bf16"])
    bf16 = cal.candidates["train:bf16"]
    assert not bf16.excluded and bf16.forced
    assert bf16.reason.endswith("forced back in by the config")
    assert cal.allowed_precisions(["fp32", "amp_bf16"]) == ("fp32", "amp_bf16")


def test_measured_calibration_is_cached_per_process() -> None:
    torch.set_num_threads(1)
    meter = create_meter("estimate", device="cpu")
    first = run(meter, rounds=2, families=["cnn", "vit"])
    assert not first.reused and first.energy_kwh > 0
    for c in first.candidates.values():
        assert len(c.ratios) == 2 and all(r > 0 for r in c.ratios)
        lo, hi = c.ratio_ci
        assert lo <= c.ratio_median <= hi
    assert set(first.candidates) == {
        "train:bf16",
        "inference:int8_dynamic",
        "inference:int8_static",
    }
    assert first.hardware["cpu_isa"]
    second = run(meter, rounds=2, families=["cnn", "vit"])
    assert second.reused and second.candidates == first.candidates


def test_emulated_isa_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    feats = {**NO_FEATURES, "avx512f": True, "avx512_bf16": True}
    monkeypatch.setattr(cal_mod, "cpu_features", lambda: feats)
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert cal_mod.native_support("bf16", CPU) == (True, "AVX512_BF16")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    native, note = cal_mod.native_support("bf16", CPU)
    assert not native and "ATEN_CPU_CAPABILITY=avx2" in note


def test_a_study_calibrates_once_and_counts_it_in_the_search_cost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nas.compression import study_calibration
    from nas.report import search_cost
    from tests.report.tiny_study import tiny_study

    monkeypatch.setattr(cal_mod, "_per_step", fake_costs({"train:bf16": 4.1}))
    cfg, study = tiny_study(
        "calibrated",
        trials=2,
        compression={
            "enabled": True,
            "prune_ratios": [0.0],
            "quantization": ["fp32", "int8_dynamic"],
            "precision": ["fp32", "amp_bf16"],
            "distillation": [False],
            "calibration_rounds": 2,
            "calibration_min_duration_s": 0.001,
        },
    )
    a = study.user_attrs
    energy = a[StudyAttrs.calibration_energy_kwh]
    assert energy > 0 and a[StudyAttrs.calibration_kgco2e] > 0
    assert any(
        r.startswith("bf16: 4.1x fp32 train energy")
        for r in json.loads(a[StudyAttrs.calibration_excluded])
    )
    # bf16 was never sampled
    assert {t.user_attrs["precision"] for t in study.trials} == {"fp32"}
    trials = study.get_trials(deepcopy=False)
    without = search_cost(trials)
    with_cal = search_cost(trials, study_attrs=a)
    assert with_cal.energy_kwh == pytest.approx(without.energy_kwh + energy)
    assert with_cal.calibration_energy_kwh == energy
    # and in the carbon budget's usage
    from nas.scheduling._budget import record_usage

    usage = record_usage(study, 1.0)
    assert usage.by_phase["calibration"] == pytest.approx(a[StudyAttrs.calibration_kgco2e])

    # a second process on the same study reads it and measures nothing
    def boom(**_: Any) -> None:
        raise AssertionError("calibrated twice")

    monkeypatch.setattr(study_calibration, "calibrate", boom)
    from types import SimpleNamespace

    context = SimpleNamespace(config=cfg)  # no device, meter or data: nothing is measured
    new = study_calibration.calibrate_study(study, context)  # type: ignore[arg-type]
    assert new.compression.precision == ("fp32",)
    assert study.user_attrs[StudyAttrs.calibration_energy_kwh] == energy
