"""The Meter contract, run against every implementation (fake NVML and powercap)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from nas.energy import (
    CompositeMeter,
    EstimateMeter,
    Measurement,
    Meter,
    NvmlMeter,
    RaplMeter,
    create_meter,
)


@pytest.fixture(params=["estimate", "rapl", "nvml-counter", "nvml-polling", "nvml+estimate"])
def meter(
    request: pytest.FixtureRequest, make_fake_nvml: Callable[..., Any], powercap: dict[str, Path]
) -> Iterator[Meter]:
    fake = make_fake_nvml()
    kind = request.param
    m: Meter
    if kind == "estimate":
        m = EstimateMeter()
    elif kind == "rapl":
        m = RaplMeter()
    elif kind.startswith("nvml-"):
        fake.counter_supported = kind == "nvml-counter"
        m = NvmlMeter(device="cuda:0")
    else:
        m = CompositeMeter(parts=[NvmlMeter(device="cuda"), EstimateMeter()])
    yield m
    m.close()


def test_window_returns_a_consistent_measurement(meter: Meter) -> None:
    meter.begin_window("a")
    m = meter.end_window("a")
    assert isinstance(m, Measurement)
    assert m.name == "a" and m.duration_s >= 0
    assert m.source == meter.source and m.kind == meter.kind and m.hardware == meter.hardware
    assert m.total_energy_j == pytest.approx(sum(m.energy_j.values()))
    assert all(v >= 0 for v in m.energy_j.values())
    assert set(m.details["domain_kinds"]) == set(m.energy_j)
    estimated = any(k == "estimated" for k in m.details["domain_kinds"].values())
    assert (m.kind == "estimated") == estimated  # nothing estimated is shown as measured


def test_nested_and_overlapping_windows(meter: Meter) -> None:
    meter.begin_window("outer")
    meter.begin_window("inner")
    meter.begin_window("overlap")
    inner = meter.end_window("inner")
    outer = meter.end_window("outer")
    overlap = meter.end_window("overlap")
    assert {inner.name, outer.name, overlap.name} == {"inner", "outer", "overlap"}
    assert meter.open_windows == ()


def test_duplicate_and_unknown_window_names_raise(meter: Meter) -> None:
    meter.begin_window("a")
    with pytest.raises(ValueError, match="already open"):
        meter.begin_window("a")
    meter.end_window("a")
    with pytest.raises(ValueError, match="not open"):
        meter.end_window("a")
    with pytest.raises(ValueError):
        meter.begin_window("")


def test_window_context_manager_sets_measurement_even_on_error(meter: Meter) -> None:
    with meter.window("ok") as w:
        assert w.measurement is None
    assert w.measurement is not None and w.measurement.name == "ok"
    with pytest.raises(RuntimeError, match="boom"):
        with meter.window("fails") as w2:
            raise RuntimeError("boom")
    assert w2.measurement is not None
    meter.begin_window("fails")  # the name is free again
    meter.end_window("fails")


def test_closed_meter_refuses_windows(meter: Meter) -> None:
    meter.close()
    meter.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        meter.begin_window("a")


def test_create_meter_auto_on_cuda_is_composite(
    make_fake_nvml: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ECONAS_POWERCAP_ROOT", str(tmp_path / "none"))
    fake = make_fake_nvml()
    meter = create_meter("auto", device="cuda")
    assert meter.source == "nvml+estimate" and meter.kind == "estimated"
    meter.begin_window("w")
    fake.energy_mj[0] += 50_000
    m = meter.end_window("w")
    assert m.energy_j["gpu:0"] == pytest.approx(50.0)
    assert m.details["domain_kinds"] == {
        "gpu:0": "measured",
        "cpu": "estimated",
        "dram": "estimated",
    }
    assert m.details["parts"]["nvml"]["nvml_method"] == "counter"
    assert m.kind == "estimated"
    meter.close()
    assert fake.shutdowns == 1


def test_cuda_is_synchronised_at_edges_only_when_initialised(
    monkeypatch: pytest.MonkeyPatch, make_fake_nvml: Callable[..., Any]
) -> None:
    make_fake_nvml()
    synced: list[int] = []
    initialised = [True]
    cuda = SimpleNamespace(
        is_initialized=lambda: initialised[0], device_count=lambda: 2, synchronize=synced.append
    )
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=cuda))
    meter = CompositeMeter(parts=[NvmlMeter(device="cuda"), EstimateMeter()])
    meter.begin_window("w")
    meter.end_window("w")
    assert synced == [0, 1, 0, 1]  # once per device per edge, not once per part
    meter.begin_window("nosync", sync=False)
    meter.end_window("nosync", sync=False)
    initialised[0] = False
    meter.begin_window("uninitialised")
    meter.end_window("uninitialised")
    assert synced == [0, 1, 0, 1]
    meter.close()
