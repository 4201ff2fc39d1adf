"""Estimate meter: CPU time x W/core + RSS x W/GB, for this process and for children."""

from __future__ import annotations

import resource
import subprocess
import sys
import time

import psutil
import pytest

from nas.energy import EstimateMeter, create_meter
from nas.errors import BadInputError


def _burn_cpu(seconds: float) -> None:
    end = time.process_time() + seconds
    x = 0
    while time.process_time() < end:
        x += sum(range(1000))


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def test_energy_is_cpu_time_times_watts_plus_dram() -> None:
    meter = create_meter("estimate")
    assert meter.source == "estimate" and meter.kind == "estimated"
    before = _self_cpu_s()
    meter.begin_window("burn")
    _burn_cpu(0.3)
    m = meter.end_window("burn")
    outer_cpu_s = _self_cpu_s() - before
    d = m.details
    assert 0.29 <= d["cpu_time_s"] <= outer_cpu_s
    assert m.energy_j["cpu"] == pytest.approx(d["cpu_time_s"] * d["watts_per_core"])
    rss_gb = psutil.Process().memory_info().rss / 1e9
    assert rss_gb / 2 < d["mean_rss_gb"] < rss_gb * 2
    expected_dram_j = d["mean_rss_gb"] * d["dram_w_per_gb"] * m.duration_s
    assert m.energy_j["dram"] == pytest.approx(expected_dram_j, rel=0.05)
    assert m.total_energy_j == pytest.approx(m.energy_j["cpu"] + m.energy_j["dram"])
    assert m.kind == "estimated" and m.source == "estimate"
    assert d["domain_kinds"] == {"cpu": "estimated", "dram": "estimated"}
    assert d["watts_per_core_source"] and d["dram_w_per_gb_source"]
    attrs = m.to_attrs()
    assert attrs["energy_kind"] == "estimated" and attrs["energy_source"] == "estimate"
    meter.close()


def test_children_scope_counts_the_child_not_this_process() -> None:
    meter = create_meter("estimate", scope="children")
    meter.begin_window("child")
    _burn_cpu(0.3)  # ours: must not be counted
    code = (
        "import time\nend = time.process_time() + 0.2\n"
        "while time.process_time() < end: pass\nprint(time.process_time())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    m = meter.end_window("child")
    child_cpu_s = float(out.stdout)
    assert child_cpu_s - 0.01 <= m.details["cpu_time_s"] < child_cpu_s + 0.25
    assert m.details["scope"] == "children"
    assert m.energy_j["dram"] > 0  # sampled while alive, or the peak-RSS fallback
    meter.close()


def test_given_constants_are_used_and_labelled() -> None:
    meter = EstimateMeter(watts_per_core=10.0, dram_w_per_gb=1.0)
    meter.begin_window("w")
    _burn_cpu(0.05)
    m = meter.end_window("w")
    assert m.details["watts_per_core"] == 10.0
    assert m.details["watts_per_core_source"] == "given by the caller"
    assert m.energy_j["cpu"] == pytest.approx(10.0 * m.details["cpu_time_s"])
    meter.close()


@pytest.mark.parametrize("kwargs", [{"watts_per_core": 0}, {"dram_w_per_gb": -1}, {"scope": "x"}])
def test_bad_constants_are_bad_input(kwargs: dict) -> None:
    with pytest.raises(BadInputError):
        EstimateMeter(**kwargs)


def test_hardware_names_the_cpu_and_core_count() -> None:
    meter = EstimateMeter()
    assert meter.hardware.endswith(f"({psutil.cpu_count()} logical cores)")
    meter.close()
