"""Measurement: units, flat attrs, combining windows."""

from __future__ import annotations

import json

import pytest

from nas.energy import J_PER_KWH, Measurement, combine


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
