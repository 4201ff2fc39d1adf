"""Measurement: units, flat attrs, combining windows."""

from __future__ import annotations

import json

import pytest

from nas.energy import J_PER_KWH, Measurement, combine

ESTIMATE = {
    "scope": "process",
    "share": 1.0,
    "cpu_time_s": 1.5,
    "watts_per_core": 3.5,
    "watts_per_core_source": "Cloud Carbon Footprint: AWS average max 3.5 W per vCPU",
    "dram_w_per_gb": 0.392,
    "dram_w_per_gb_source": "Cloud Carbon Footprint: 0.392 W per GB of memory",
    "mean_rss_gb": 0.5,
    "domain_kinds": {"cpu": "estimated", "dram": "estimated"},
}
CONSTANTS = {k: ESTIMATE[k] for k in list(ESTIMATE)[2:7]}


def _m(name: str = "w", **kw: object) -> Measurement:
    fields: dict = {
        "name": name,
        "duration_s": 2.0,
        "energy_j": {"gpu:0": 3.0e6, "cpu": 0.6e6},
        "total_energy_j": 3.6e6,
        "source": "nvml+estimate",
        "kind": "estimated",
        "hardware": "NVIDIA H200 + AMD EPYC (2 logical cores)",
        "details": {"domain_kinds": {"gpu:0": "measured", "cpu": "estimated"}},
    }
    fields.update(kw)
    return Measurement(**fields)


def test_energy_kwh_and_flat_attrs_with_units() -> None:
    m = _m()
    assert J_PER_KWH == 3.6e6 and m.energy_kwh == pytest.approx(1.0)
    attrs = m.to_attrs(prefix="train_")
    assert attrs == {
        "train_energy_j": 3.6e6,
        "train_energy_kwh": pytest.approx(1.0),
        "train_duration_s": 2.0,
        "train_energy_source": "nvml+estimate",
        "train_energy_kind": "estimated",
        "train_hardware": "NVIDIA H200 + AMD EPYC (2 logical cores)",
        "train_energy_scope": "unknown",  # these details state no scope
        "train_energy_share": 1.0,
        "train_energy_j_gpu_0": 3.0e6,
        "train_energy_j_cpu": 0.6e6,
    }
    json.dumps(attrs)  # JSON-able


def test_measurement_is_frozen_and_kind_is_checked() -> None:
    m = _m()
    with pytest.raises(AttributeError):
        m.total_energy_j = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="kind"):
        _m(kind="guessed")


def test_combine_sums_sequential_windows() -> None:
    a = _m("epoch1", kind="measured", energy_j={"gpu:0": 10.0}, total_energy_j=10.0)
    b = _m("epoch2", kind="estimated", energy_j={"gpu:0": 5.0, "cpu": 1.0}, total_energy_j=6.0)
    total = combine([a, b], "train")
    assert total.name == "train"
    assert total.energy_j == {"gpu:0": 15.0, "cpu": 1.0}
    assert total.total_energy_j == 16.0 and total.duration_s == 4.0
    assert total.kind == "estimated"  # one estimated part makes the whole estimated
    assert total.details["combined_from"] == ["epoch1", "epoch2"]
    assert Measurement.combine([a], "x").kind == "measured"


def test_combine_refuses_mixed_meters_and_nothing() -> None:
    with pytest.raises(ValueError, match="one meter"):
        combine([_m(source="nvml"), _m(source="rapl")], "x")
    with pytest.raises(ValueError):
        combine([], "x")


def _estimate(name: str = "w", cpu_time_s: float = 1.5, cpu_j: float = 5.25) -> Measurement:
    return _m(
        name,
        source="estimate",
        energy_j={"cpu": cpu_j, "dram": 0.25},
        total_energy_j=cpu_j + 0.25,
        details={**ESTIMATE, "cpu_time_s": cpu_time_s},
    )


def _composite(name: str = "w", gpu_j: float = 100.0, share: float = 0.5) -> Measurement:
    nvml = {
        "scope": "device",
        "share": share,
        "energy_j_unshared": gpu_j / share,
        "total_energy_j": gpu_j,
        "share_method": "equal split among 2 econas processes on this GPU",
        "peers": 1,
    }
    estimate = {**ESTIMATE, "total_energy_j": 5.5}
    return _m(
        name,
        energy_j={"gpu:0": gpu_j, "cpu": 5.25, "dram": 0.25},
        total_energy_j=gpu_j + 5.5,
        details={"domain_kinds": {}, "parts": {"nvml": nvml, "estimate": estimate}},
    )


def test_estimate_constants_reach_attrs_for_plain_and_composite_meters() -> None:
    for m in (_estimate(), _composite()):
        assert m.estimate_constants() == CONSTANTS
        attrs = m.to_attrs(prefix="train_")
        for key, value in CONSTANTS.items():
            assert attrs[f"train_{key}"] == value
        json.dumps(attrs)
    assert _estimate().to_attrs()["energy_scope"] == "process"
    assert _composite().to_attrs()["energy_scope"] == "device+process"


def test_measured_only_meters_have_no_estimate_constants() -> None:
    m = _m(source="rapl", kind="measured", details={"scope": "system", "share": 0.25})
    assert m.estimate_constants() == {}
    assert m.scope == "system" and m.share == 0.25
    assert not any(k.endswith("watts_per_core") for k in m.to_attrs())


def test_composite_share_is_charged_over_unshared_joules() -> None:
    m = _composite(gpu_j=100.0, share=0.5)  # 100 of 200 GPU J charged, estimate whole
    assert m.share == pytest.approx(105.5 / 205.5)
    assert m.to_attrs()["energy_share"] == pytest.approx(105.5 / 205.5)
    assert _estimate().share == 1.0


def test_combine_sums_cpu_time_and_keeps_the_constants() -> None:
    total = combine([_estimate("a", 1.0, 3.5), _estimate("b", 2.0, 7.0)], "train")
    assert total.details["cpu_time_s"] == pytest.approx(3.0)
    assert total.estimate_constants() == {**CONSTANTS, "cpu_time_s": pytest.approx(3.0)}
    assert total.scope == "process" and total.share == 1.0
    assert "mean_rss_gb" in total.details  # equal in both windows: kept
    assert total.details["window_count"] == 2
    composite = combine([_composite("a", 100.0, 0.5), _composite("b", 30.0, 1.0)], "train")
    assert composite.estimate_constants()["cpu_time_s"] == pytest.approx(3.0)
    nvml = composite.details["parts"]["nvml"]
    assert nvml["energy_j_unshared"] == pytest.approx(230.0)
    assert nvml["share"] == pytest.approx(130.0 / 230.0)
    assert composite.scope == "device+process"


def test_combine_of_shared_windows_weights_the_share_by_joules() -> None:
    def rapl(name: str, unshared: float, share: float) -> Measurement:
        details = {"scope": "system", "share": share, "energy_j_unshared": unshared}
        charged = unshared * share
        return _m(
            name,
            source="rapl",
            kind="measured",
            energy_j={"package-0": charged},
            total_energy_j=charged,
            details=details,
        )

    total = combine([rapl("a", 100.0, 0.5), rapl("b", 300.0, 0.25)], "x")
    assert total.total_energy_j == pytest.approx(125.0)
    assert total.details["energy_j_unshared"] == pytest.approx(400.0)
    assert total.share == pytest.approx(125.0 / 400.0)
