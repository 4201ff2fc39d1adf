"""The Meter contract, run against every implementation (fake NVML and powercap).

Each implementation is driven: the fakes' counters are advanced by known amounts (exact
joules expected) and the estimate sees real CPU work, so a meter stuck at 0 J fails.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
    WindowAccumulator,
    create_meter,
)

UNIT_CPU_S = 0.02  # CPU seconds of real work per unit for the estimate meter


@dataclass
class Subject:
    """A meter, a way to make it see ``units`` of work, and what one unit should measure.

    ``per_unit_j`` maps each driven domain to its exact joules per unit (counter fakes), or
    is None where real CPU work is measured (the estimate): then only ``cpu`` is compared,
    and only for order and rough proportion.
    """

    meter: Meter
    advance: Callable[[int], None]
    per_unit_j: dict[str, float] | None
    driven: tuple[str, ...]


def _burn_cpu(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        sum(range(1000))


def _bump(zone: Path, uj: int) -> None:
    path = zone / "energy_uj"
    path.write_text(f"{int(path.read_text()) + uj}\n")


@pytest.fixture(params=["estimate", "rapl", "nvml-counter", "nvml-polling", "nvml+estimate"])
def subject(
    request: pytest.FixtureRequest, make_fake_nvml: Callable[..., Any], powercap: dict[str, Path]
) -> Iterator[Subject]:
    fake = make_fake_nvml()
    kind = request.param
    burn = (lambda units: _burn_cpu(units * UNIT_CPU_S)) if "estimate" in kind else None

    def nvml_counter(units: int) -> None:
        fake.energy_mj[0] += 5_000 * units  # 5 J per unit

    s: Subject
    if kind == "estimate":
        s = Subject(EstimateMeter(), burn, None, ("cpu",))  # type: ignore[arg-type]
    elif kind == "rapl":

        def rapl(units: int) -> None:
            _bump(powercap["package-0"], 10_000_000 * units)  # 10 J per unit
            _bump(powercap["dram"], 2_000_000 * units)  # 2 J per unit

        s = Subject(RaplMeter(), rapl, {"package-0": 10.0, "dram": 2.0}, ("package-0", "dram"))
    elif kind == "nvml-counter":
        s = Subject(NvmlMeter(device="cuda:0"), nvml_counter, {"gpu:0": 5.0}, ("gpu:0",))
    elif kind == "nvml-polling":
        fake.counter_supported = False  # constant 100 W, a clock the test moves
        meter = NvmlMeter(device="cuda:0", poll_interval_s=3600.0)
        assert meter._poller is not None
        now = [0.0]
        meter._poller.clock = lambda: now[0]

        def polled(units: int) -> None:
            now[0] += 0.5 * units  # 50 J per unit
            assert meter._poller is not None
            meter._poller.poll_once()

        s = Subject(meter, polled, {"gpu:0": 50.0}, ("gpu:0",))
    else:

        def both(units: int) -> None:
            nvml_counter(units)
            _burn_cpu(units * UNIT_CPU_S)

        meter = CompositeMeter(parts=[NvmlMeter(device="cuda:0"), EstimateMeter()])
        s = Subject(meter, both, {"gpu:0": 5.0}, ("gpu:0", "cpu"))
    yield s
    s.meter.close()


@pytest.fixture
def meter(subject: Subject) -> Meter:
    return subject.meter


def _driven(s: Subject, m: Measurement) -> dict[str, float]:
    return {d: m.energy_j[d] for d in s.driven}


def _check(s: Subject, m: Measurement, units: int) -> None:
    """Exact joules for counter fakes; for real CPU work, cpu > 0 with cpu_time_s > 0."""
    for domain in s.driven:
        if s.per_unit_j is not None and domain in s.per_unit_j:
            assert m.energy_j[domain] == pytest.approx(units * s.per_unit_j[domain]), domain
        else:
            assert m.energy_j[domain] > 0, domain
            assert m.estimate_constants()["cpu_time_s"] > 0


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
    assert m.scope != "unknown" and m.share == 1.0  # alone on this host


def test_work_is_measured_and_twice_the_work_twice_the_joules(subject: Subject) -> None:
    meter = subject.meter
    meter.begin_window("once")
    subject.advance(3)
    once = meter.end_window("once")
    meter.begin_window("twice")
    subject.advance(6)
    twice = meter.end_window("twice")
    _check(subject, once, 3)
    _check(subject, twice, 6)
    assert once.total_energy_j > 0
    for domain in subject.driven:  # a meter stuck at 0 J, or at a constant, fails here
        ratio = _driven(subject, twice)[domain] / _driven(subject, once)[domain]
        exact = subject.per_unit_j is not None and domain in subject.per_unit_j
        assert ratio == pytest.approx(2.0, rel=1e-9 if exact else 0.3), domain


def test_nested_and_overlapping_windows_see_what_happened_while_open(subject: Subject) -> None:
    meter, advance = subject.meter, subject.advance
    meter.begin_window("outer")
    advance(1)
    meter.begin_window("inner")
    advance(2)
    meter.begin_window("overlap")
    advance(4)
    inner = meter.end_window("inner")
    advance(8)
    outer = meter.end_window("outer")
    advance(16)
    overlap = meter.end_window("overlap")
    assert (inner.name, outer.name, overlap.name) == ("inner", "outer", "overlap")
    assert meter.open_windows == ()
    _check(subject, inner, 2 + 4)
    _check(subject, outer, 1 + 2 + 4 + 8)
    _check(subject, overlap, 4 + 8 + 16)
    for domain in subject.driven:
        assert _driven(subject, inner)[domain] <= _driven(subject, outer)[domain]
        assert _driven(subject, inner)[domain] < _driven(subject, overlap)[domain]


def test_restart_discards_the_open_window_and_begins_again(subject: Subject) -> None:
    meter = subject.meter
    meter.begin_window("a")
    subject.advance(5)
    with pytest.raises(ValueError, match="already open"):
        meter.begin_window("a")
    meter.begin_window("a", restart=True)
    subject.advance(1)
    m = meter.end_window("a")
    _check(subject, m, 1)  # the 5 units before the restart are not in it
    assert meter.open_windows == ()
    assert _pollers_idle(meter)


def test_cancel_discards_the_window_and_releases_its_state(subject: Subject) -> None:
    meter = subject.meter
    meter.begin_window("kept")
    meter.begin_window("a")
    subject.advance(2)
    assert meter.end_window("a", cancel=True) is None
    assert meter.open_windows == ("kept",)
    with pytest.raises(ValueError, match="not open"):
        meter.end_window("a", cancel=True)
    _check(subject, meter.end_window("kept"), 2)  # the other window is untouched
    assert _pollers_idle(meter)  # no accumulator left behind, no thread kept alive
    meter.begin_window("a")  # the name is free again
    subject.advance(1)
    _check(subject, meter.end_window("a"), 1)


def test_accumulated_windows_sum_to_the_enclosing_window(subject: Subject) -> None:
    meter = subject.meter
    acc = WindowAccumulator(meter, "teacher")
    meter.begin_window("train")
    for key, units in ((0, 1), (1, 2), (0, 3)):
        with acc.window(key):
            subject.advance(units)
    with pytest.raises(RuntimeError, match="boom"), acc.window(1):
        subject.advance(4)
        raise RuntimeError("boom")  # the work was paid for: still counted
    train = meter.end_window("train")
    assert acc.count == 4 and acc.keys() == [0, 1]
    assert acc.totals(0).count == 2 and acc.totals(1).count == 2
    combined = acc.measurement()
    assert combined is not None and combined.details["window_count"] == 4
    assert acc.energy_j == pytest.approx(combined.total_energy_j)
    _check(subject, combined, 10)
    if subject.per_unit_j is not None and subject.driven == tuple(subject.per_unit_j):
        assert acc.energy_j == pytest.approx(train.total_energy_j)  # nothing ran outside
        assert acc.totals(0).energy_j == pytest.approx(4 * sum(subject.per_unit_j.values()))
    for domain in subject.driven:
        assert combined.energy_j[domain] <= train.energy_j[domain] * (1 + 1e-9)
    assert acc.duration_s <= train.duration_s
    assert meter.open_windows == ()


def _pollers_idle(meter: Meter) -> bool:
    meters = [meter, *getattr(meter, "parts", [])]
    pollers = [p for m in meters for a in ("_poller", "_rss") if (p := getattr(m, a, None))]
    return all(not p.open_keys and p._stop is None for p in pollers)


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
