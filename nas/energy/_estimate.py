"""The estimate meter: CPU time x watts per core, plus mean RSS x watts per GB x duration.

Nothing is measured here: every figure is labelled ``estimated`` and its constants (with
their sources) are stored in ``Measurement.details``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from nas.energy._base import Meter
from nas.energy._cpu_power import (
    BYTES_PER_GB,
    DEFAULT_DRAM_W_PER_GB,
    DEFAULT_DRAM_W_PER_GB_SOURCE,
    CpuInfo,
    CpuPower,
    lookup_cpu_power,
    read_cpu_info,
)
from nas.energy._poll import Poller, TrapezoidIntegrator
from nas.errors import BadInputError

log = logging.getLogger(__name__)

SCOPES = ("process", "children")


class EstimateMeter(Meter):
    """Estimated energy of this process (``scope="process"``) or of its waited-for children.

    ``scope="children"`` counts the CPU time of child processes that have been waited for
    (``RUSAGE_CHILDREN``), and samples the RSS of live descendants; a child too short to be
    sampled is charged its peak RSS (``ru_maxrss``) over the window, an upper bound.
    ``watts_per_core`` / ``dram_w_per_gb`` override the looked-up constants (the override
    is recorded as the source).
    """

    def __init__(
        self,
        *,
        scope: str = "process",
        watts_per_core: float | None = None,
        dram_w_per_gb: float | None = None,
        rss_interval_s: float = 0.25,
        cpu_info: CpuInfo | None = None,
    ) -> None:
        super().__init__()
        if scope not in SCOPES:
            raise BadInputError(f"meter scope must be one of {SCOPES}, got {scope!r}")
        self.scope = scope
        self.cpu_info = cpu_info or read_cpu_info()
        if watts_per_core is None:
            self.cpu_power = lookup_cpu_power(self.cpu_info)
        else:
            self.cpu_power = CpuPower(
                watts_per_core=_positive(watts_per_core, "watts_per_core"),
                source="given by the caller",
                cpu_model=self.cpu_info.model,
            )
        if dram_w_per_gb is None:
            self.dram_w_per_gb, self.dram_source = (
                DEFAULT_DRAM_W_PER_GB,
                DEFAULT_DRAM_W_PER_GB_SOURCE,
            )
        else:
            self.dram_w_per_gb = _positive(dram_w_per_gb, "dram_w_per_gb")
            self.dram_source = "given by the caller"
        self._rss = Poller(read=self._read_rss, interval_s=rss_interval_s, name="econas-rss")

    @property
    def source(self) -> str:
        return "estimate"

    @property
    def kind(self) -> str:
        return "estimated"

    @property
    def hardware(self) -> str:
        return f"{self.cpu_info.model} ({self.cpu_info.logical_cores} logical cores)"

    def _begin(self, name: str) -> Any:
        acc = TrapezoidIntegrator()
        self._rss.open(name, acc)
        return _cpu_time_s(self.scope), acc

    def _end(self, name: str, token: Any) -> tuple[dict[str, float], dict[str, Any]]:
        cpu_start_s, _ = token
        cpu_time_s = max(0.0, _cpu_time_s(self.scope) - cpu_start_s)
        acc = self._rss.close(name)
        span_s = max(acc.total.get("__t__", 0.0), 0.0)
        rss_byte_s = acc.total.get("rss", 0.0)
        rss_method = "sampled"
        if self.scope == "children" and rss_byte_s <= 0.0 and span_s > 0:
            rss_byte_s = _children_peak_rss_bytes() * span_s
            rss_method = "children's peak RSS (ru_maxrss): none sampled while alive"
        mean_rss_gb = rss_byte_s / span_s / BYTES_PER_GB if span_s > 0 else 0.0
        energy_j = {
            "cpu": cpu_time_s * self.cpu_power.watts_per_core,
            "dram": self.dram_w_per_gb * rss_byte_s / BYTES_PER_GB,
        }
        details: dict[str, Any] = {
            "method": "cpu_time_s x watts_per_core + mean_rss_gb x dram_w_per_gb x duration_s",
            "scope": self.scope,
            "share": 1.0,  # the process's (or its children's) own CPU time: nothing to split
            "cpu_time_s": cpu_time_s,
            "watts_per_core": self.cpu_power.watts_per_core,
            "watts_per_core_source": self.cpu_power.source,
            "cpu_model": self.cpu_info.model,
            "logical_cores": self.cpu_info.logical_cores,
            "dram_w_per_gb": self.dram_w_per_gb,
            "dram_w_per_gb_source": self.dram_source,
            "mean_rss_gb": mean_rss_gb,
            "rss_method": rss_method,
            "rss_samples": acc.samples,
            "rss_interval_s": self._rss.interval_s,
            "domain_kinds": {"cpu": "estimated", "dram": "estimated"},
        }
        if self.cpu_power.tdp_w is not None:
            details["cpu_tdp_w"] = self.cpu_power.tdp_w
        return energy_j, details

    def _cancel(self, name: str, token: Any) -> None:
        self._rss.discard(name)

    def _close(self) -> None:
        self._rss.stop()

    def _read_rss(self) -> dict[str, float]:
        # "__t__" integrates 1 over time: the span the RSS integral covers.
        return {"rss": float(_rss_bytes(self.scope)), "__t__": 1.0}


def _positive(value: float, name: str) -> float:
    value = float(value)
    if not value > 0:
        raise BadInputError(f"{name} must be > 0, got {value!r}")
    return value


def _cpu_time_s(scope: str) -> float:
    """User + system CPU seconds of this process, or of its waited-for children."""
    try:
        import resource
    except ImportError:  # not POSIX
        t = os.times()
        if scope == "children":
            return t.children_user + t.children_system
        return t.user + t.system
    who = resource.RUSAGE_CHILDREN if scope == "children" else resource.RUSAGE_SELF
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _rss_bytes(scope: str) -> int:
    import psutil

    me = psutil.Process()
    if scope == "process":
        return int(me.memory_info().rss)
    total = 0
    for child in me.children(recursive=True):
        try:
            total += int(child.memory_info().rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return total


def _children_peak_rss_bytes() -> int:
    try:
        import resource
    except ImportError:
        return 0
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return int(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) * scale
