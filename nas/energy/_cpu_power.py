"""Stated constants for the CPU/DRAM estimate: watts per logical core and watts per GB.

Watts per logical core come from codecarbon's bundled CPU power table (its TDP divided by
the package's logical core count) when the CPU model is in the table and the machine is not
virtualised; otherwise from the default below. Every figure carries its source.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# Cloud Carbon Footprint methodology (https://www.cloudcarbonfootprint.org/docs/methodology),
# AWS coefficients: average maximum power of 3.5 W per vCPU (the "Max Watts" of the AWS
# fleet's average CPU) and 0.392 W per GB of memory (0.000392 kWh/GBh, from Crucial's memory
# power figures). Used whenever the CPU is not found in codecarbon's table.
DEFAULT_WATTS_PER_CORE = 3.5
DEFAULT_WATTS_PER_CORE_SOURCE = "Cloud Carbon Footprint: AWS average max 3.5 W per vCPU"
DEFAULT_DRAM_W_PER_GB = 0.392
DEFAULT_DRAM_W_PER_GB_SOURCE = "Cloud Carbon Footprint: 0.392 W per GB of memory"
BYTES_PER_GB = 1e9

CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class CpuPower:
    """Watts charged per second of CPU time on one logical core, and where it came from."""

    watts_per_core: float
    source: str
    cpu_model: str
    tdp_w: float | None = None
    cores_per_package: int | None = None


@dataclass(frozen=True)
class CpuInfo:
    model: str
    logical_cores: int
    cores_per_package: int | None  # logical cores ("siblings") of one package
    virtualised: bool


def read_cpu_info(path: Path = CPUINFO) -> CpuInfo:
    """CPU model, logical core counts and whether we run under a hypervisor."""
    model, siblings, virtualised = "", None, False
    try:
        text = path.read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key in ("model name", "hardware", "cpu model") and not model:
            model = value
        elif key == "siblings" and siblings is None and value.isdigit():
            siblings = int(value)
        elif key == "flags" and " hypervisor" in f" {value}":
            virtualised = True
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    return CpuInfo(
        model=model,
        logical_cores=os.cpu_count() or 1,
        cores_per_package=siblings,
        virtualised=virtualised,
    )


def normalize_cpu_name(name: str) -> str:
    """``"Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz"`` -> ``"intel xeon gold 6248"``."""
    s = name.lower()
    s = re.sub(r"\((r|tm|c)\)|[®™]", " ", s)
    s = re.sub(r"@.*$", " ", s)
    s = re.sub(r"\b\d+-core\b|\bprocessor\b|\bcpu\b|\bwith radeon.*$", " ", s)
    return " ".join(s.split())


@functools.cache
def _tdp_table() -> dict[str, tuple[str, float]]:
    """codecarbon's ``cpu_power.csv`` as ``{normalized name: (name, TDP W)}``; {} if absent."""
    try:
        from importlib.resources import files

        text = (files("codecarbon") / "data" / "hardware" / "cpu_power.csv").read_text()
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        log.debug("codecarbon's CPU power table is not available: %r", exc)
        return {}
    table: dict[str, tuple[str, float]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        try:
            tdp_w = float(row["TDP"])
        except (KeyError, TypeError, ValueError):
            continue
        if tdp_w > 0:
            table.setdefault(normalize_cpu_name(row["Name"]), (row["Name"], tdp_w))
    return table


def lookup_cpu_power(info: CpuInfo) -> CpuPower:
    """Watts per logical core for ``info``: codecarbon's TDP / logical cores, else default.

    The table's TDP is for a whole package, so it is divided by the package's logical core
    count (CPU time is counted per logical core). Under a hypervisor the visible topology is
    not the chip's, so TDP / visible cores would be meaningless: the default is used there.
    """
    default = CpuPower(
        watts_per_core=DEFAULT_WATTS_PER_CORE,
        source=DEFAULT_WATTS_PER_CORE_SOURCE,
        cpu_model=info.model,
    )
    match = _tdp_table().get(normalize_cpu_name(info.model))
    if match is None:
        log.debug("CPU %r is not in codecarbon's table; using %s", info.model, default.source)
        return default
    name, tdp_w = match
    if info.virtualised or not info.cores_per_package:
        reason = "virtualised" if info.virtualised else "package core count unknown"
        return CpuPower(
            watts_per_core=DEFAULT_WATTS_PER_CORE,
            source=f"{DEFAULT_WATTS_PER_CORE_SOURCE} ({name} found in codecarbon's table, "
            f"but {reason}: TDP per core unknown)",
            cpu_model=info.model,
            tdp_w=tdp_w,
        )
    return CpuPower(
        watts_per_core=tdp_w / info.cores_per_package,
        source=f"codecarbon cpu_power.csv: {name} TDP {tdp_w:g} W / "
        f"{info.cores_per_package} logical cores",
        cpu_model=info.model,
        tdp_w=tdp_w,
        cores_per_package=info.cores_per_package,
    )
