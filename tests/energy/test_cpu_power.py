"""Watts per core: codecarbon's TDP table on bare metal, the stated default otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.energy import _cpu_power
from nas.energy._cpu_power import (
    DEFAULT_WATTS_PER_CORE,
    CpuInfo,
    lookup_cpu_power,
    normalize_cpu_name,
    read_cpu_info,
)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", "intel xeon gold 6248"),
        ("AMD EPYC 7763 64-Core Processor", "amd epyc 7763"),
        ("Intel(R) Core(TM) i7-8550U CPU @ 1.80GHz", "intel core i7-8550u"),
        ("AMD Ryzen 7 PRO 4750U with Radeon Graphics", "amd ryzen 7 pro 4750u"),
        ("AMD EPYC", "amd epyc"),
    ],
)
def test_normalize_cpu_name(raw: str, normalized: str) -> None:
    assert normalize_cpu_name(raw) == normalized


def _info(model: str, *, siblings: int | None = 40, virtualised: bool = False) -> CpuInfo:
    return CpuInfo(
        model=model, logical_cores=80, cores_per_package=siblings, virtualised=virtualised
    )


def test_known_cpu_on_bare_metal_uses_tdp_per_logical_core() -> None:
    power = lookup_cpu_power(_info("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz"))
    assert power.tdp_w == 150.0  # codecarbon's cpu_power.csv
    assert power.watts_per_core == pytest.approx(150.0 / 40)
    assert "codecarbon" in power.source and "6248" in power.source


def test_known_cpu_in_a_vm_uses_the_default_and_says_why() -> None:
    power = lookup_cpu_power(_info("AMD EPYC 7763 64-Core Processor", virtualised=True))
    assert power.watts_per_core == DEFAULT_WATTS_PER_CORE
    assert "virtualised" in power.source and "Cloud Carbon Footprint" in power.source


def test_unknown_cpu_uses_the_stated_default() -> None:
    power = lookup_cpu_power(_info("AMD EPYC"))
    assert power.watts_per_core == DEFAULT_WATTS_PER_CORE == 3.5
    assert "Cloud Carbon Footprint" in power.source


def test_missing_codecarbon_table_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cpu_power, "_tdp_table", lambda: {})
    power = lookup_cpu_power(_info("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz"))
    assert power.watts_per_core == DEFAULT_WATTS_PER_CORE


def test_read_cpu_info_parses_model_siblings_and_hypervisor(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    block = (
        "processor\t: {i}\nmodel name\t: AMD EPYC 7763 64-Core Processor\n"
        "siblings\t: 128\ncpu cores\t: 64\nflags\t\t: fpu sse2 hypervisor lm\n\n"
    )
    cpuinfo.write_text(block.format(i=0) + block.format(i=1))
    info = read_cpu_info(cpuinfo)
    assert info.model == "AMD EPYC 7763 64-Core Processor"
    assert info.cores_per_package == 128 and info.virtualised
    bare = read_cpu_info(tmp_path / "missing")
    assert bare.model and bare.cores_per_package is None and not bare.virtualised
