"""WindowAccumulator: repeated windows summed per key; NaN without a meter, never 0."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from nas.energy import RaplMeter, WindowAccumulator


def _bump(zone: Path, uj: int) -> None:
    path = zone / "energy_uj"
    path.write_text(f"{int(path.read_text()) + uj}\n")


def test_without_a_meter_energy_is_nan_and_time_is_counted() -> None:
    acc = WindowAccumulator(None, "client")
    assert acc.source == "none" and acc.kind == "none"
    assert math.isnan(acc.energy_j) and acc.count == 0 and acc.measurement() is None
    with acc.window(3):
        time.sleep(0.01)
    with pytest.raises(ValueError, match="bad"), acc.window(3):
        raise ValueError("bad")
    assert acc.count == 2 and acc.keys() == [3]
    assert math.isnan(acc.energy_j) and math.isnan(acc.energy_kwh)
    assert math.isnan(acc.totals(3).energy_j) and acc.totals(3).count == 2
    assert acc.duration_s >= 0.01 and acc.totals(3).duration_s == pytest.approx(acc.duration_s)
    assert math.isnan(acc.totals("unknown").energy_j) and acc.totals("unknown").count == 0
    assert acc.measurement() is None  # nothing was measured


def test_keys_group_totals_and_the_whole_is_their_sum(powercap: dict[str, Path]) -> None:
    meter = RaplMeter(poll_interval_s=3600.0)
    acc = WindowAccumulator(meter, "client")
    assert acc.source == "rapl" and acc.kind == "measured"
    assert acc.energy_j == 0.0 and acc.totals(0).energy_j == 0.0  # nothing ran: truly 0
    for key, joules in ((0, 1), (1, 2), (0, 4), (-1, 8)):
        with acc.window(key) as w:
            _bump(powercap["package-0"], joules * 1_000_000)
        assert w.measurement is not None and w.measurement.total_energy_j == pytest.approx(joules)
    assert acc.keys() == [0, 1, -1]
    assert acc.totals(0).energy_j == pytest.approx(5.0) and acc.totals(0).count == 2
    assert acc.totals(-1).energy_kwh == pytest.approx(8.0 / 3.6e6)
    assert acc.energy_j == pytest.approx(15.0) and acc.count == 4
    m = acc.measurement()
    assert m is not None and m.name == "client" and m.source == "rapl"
    assert m.total_energy_j == pytest.approx(15.0) and m.energy_j["package-0"] == 15.0
    assert m.details["window_count"] == 4 and m.details["scope"] == "system"
    assert m.share == 1.0
    meter.close()


def test_a_window_left_open_by_a_failure_does_not_block_the_next(
    powercap: dict[str, Path],
) -> None:
    meter = RaplMeter(poll_interval_s=3600.0)
    meter.begin_window("teacher")  # e.g. a crash between begin and end elsewhere
    _bump(powercap["package-0"], 5_000_000)
    acc = WindowAccumulator(meter, "teacher")
    with acc.window():
        _bump(powercap["package-0"], 1_000_000)
    assert acc.energy_j == pytest.approx(1.0)  # the leftover's 5 J are not charged here
    assert meter.open_windows == ()
    meter.close()


def test_nested_inside_another_open_window(powercap: dict[str, Path]) -> None:
    meter = RaplMeter(poll_interval_s=3600.0)
    teacher = WindowAccumulator(meter, "teacher")
    with meter.window("train") as train:
        for _ in range(3):
            _bump(powercap["package-0"], 2_000_000)  # the student's step
            with teacher.window():
                _bump(powercap["package-0"], 1_000_000)  # the teacher's pass
    assert train.measurement is not None
    assert train.measurement.total_energy_j == pytest.approx(9.0)
    assert teacher.energy_j == pytest.approx(3.0) and teacher.count == 3
    meter.close()


def test_name_must_be_given() -> None:
    with pytest.raises(ValueError):
        WindowAccumulator(None, "")
