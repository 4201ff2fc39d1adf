"""RAPL meter: CPU package and DRAM energy counters from Linux powercap (Intel, AMD >= 5.8).

The counters are machine-wide (every process counts): each window is charged this process's
CPU-time share among the econas processes metering them (see ``_share``). ``energy_uj``
wraps at ``max_energy_range_uj`` (a few minutes at full power on some parts), so while a
window is open the counters are read every ``poll_interval_s`` to see every wrap-around.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.energy._base import Meter
from nas.energy._cpu_power import read_cpu_info
from nas.energy._poll import CounterAccumulator, Poller
from nas.energy._share import CpuTimeShare
from nas.errors import MeterUnavailableError

log = logging.getLogger(__name__)

DEFAULT_POWERCAP_ROOT = "/sys/class/powercap"
POWERCAP_ROOT_ENV = "ECONAS_POWERCAP_ROOT"
DEFAULT_MAX_RANGE_UJ = float(2**32)  # when max_energy_range_uj is unreadable
# Sub-zones inside a package's total: reported in details, not added to the total.
_INSIDE_PACKAGE = ("core", "uncore")
# Top-level zones that overlap the packages (platform total): never added.
_OVERLAPPING = ("psys",)
_TOP = re.compile(r"^intel-rapl:(\d+)$")
_SUB = re.compile(r"^intel-rapl:(\d+):(\d+)$")


@dataclass(frozen=True)
class RaplZone:
    domain: str  # "package-0", "dram", "core"...
    path: Path
    max_range_uj: float
    additive: bool  # part of the total (packages and DRAM)


def resolve_powercap_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The powercap tree: ``root``, else ``$ECONAS_POWERCAP_ROOT``, else /sys/class/powercap."""
    return Path(root or os.environ.get(POWERCAP_ROOT_ENV) or DEFAULT_POWERCAP_ROOT)


def discover_zones(root: Path) -> list[RaplZone]:
    """RAPL zones under ``root`` (intel-rapl:N and intel-rapl:N:M; not the mmio duplicates)."""
    dirs: dict[str, Path] = {}
    for path in sorted(root.glob("intel-rapl:*")):
        dirs[path.name] = path
        for sub in sorted(path.glob("intel-rapl:*")):
            dirs.setdefault(sub.name, sub)
    tops = {int(m[1]): p for n, p in dirs.items() if (m := _TOP.match(n))}
    subs = {(int(m[1]), int(m[2])): p for n, p in dirs.items() if (m := _SUB.match(n))}
    packages = [i for i, p in tops.items() if _zone_name(p, f"zone-{i}") not in _OVERLAPPING]
    several = len(packages) > 1
    zones: list[RaplZone] = []
    for i, path in sorted(tops.items()):
        name = _zone_name(path, f"package-{i}")
        if name in _OVERLAPPING:
            continue
        zones.append(RaplZone(name, path, _max_range_uj(path), additive=True))
    for (i, j), path in sorted(subs.items()):
        if i not in packages:
            continue
        name = _zone_name(path, f"zone-{i}-{j}")
        domain = f"{name}-{i}" if several else name
        additive = name not in _INSIDE_PACKAGE
        zones.append(RaplZone(domain, path, _max_range_uj(path), additive=additive))
    seen: set[str] = set()
    unique: list[RaplZone] = []
    for zone in zones:
        domain = zone.domain if zone.domain not in seen else f"{zone.domain}:{zone.path.name}"
        seen.add(domain)
        unique.append(RaplZone(domain, zone.path, zone.max_range_uj, zone.additive))
    return unique


def rapl_problem(root: str | os.PathLike[str] | None = None) -> str | None:
    """Why RAPL can't be read under ``root`` (one line), or None when it can."""
    base = resolve_powercap_root(root)
    if not os.access(base, os.R_OK | os.X_OK) or not base.is_dir():
        return f"{base} not readable"
    try:
        zones = discover_zones(base)
    except OSError as exc:
        return f"{base} not readable ({exc.strerror or exc})"
    if not any(z.additive for z in zones):
        return f"no RAPL zones (intel-rapl:N) under {base}"
    for zone in zones:
        try:
            _read_uj(zone.path)
        except (OSError, ValueError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            return f"{zone.path / 'energy_uj'} not readable ({why})"
    return None


def rapl_is_available(root: str | os.PathLike[str] | None = None) -> bool:
    """True when the powercap RAPL counters exist and this user can read them."""
    return rapl_problem(root) is None


class RaplMeter(Meter):
    """Measured CPU package (+ DRAM where exposed) energy from powercap RAPL counters.

    The counters are machine-wide. With ``share=True`` (default) each window's joules (every
    domain) are multiplied by this process's share of the CPU time of the econas processes
    metering the same counters on this host (1.0 alone); ``details`` states the share, its
    method, the peers and ``energy_j_unshared``. ``share=False`` charges the whole reading.
    """

    def __init__(
        self,
        *,
        powercap_root: str | os.PathLike[str] | None = None,
        poll_interval_s: float = 5.0,
        share: bool = True,
    ) -> None:
        super().__init__()
        problem = rapl_problem(powercap_root)
        if problem is not None:
            raise MeterUnavailableError(f"meter 'rapl' is not available: {problem}")
        self.root = resolve_powercap_root(powercap_root)
        self.zones = discover_zones(self.root)
        self._max = {z.domain: z.max_range_uj for z in self.zones}
        self._poller = Poller(read=self._read, interval_s=poll_interval_s, name="econas-rapl")
        info = read_cpu_info()
        self._hardware = f"{info.model} ({info.logical_cores} logical cores)"
        scope = f"rapl:{os.path.realpath(self.root)}"
        self._share = CpuTimeShare(scope) if share else None

    @property
    def source(self) -> str:
        return "rapl"

    @property
    def kind(self) -> str:
        return "measured"

    @property
    def hardware(self) -> str:
        return self._hardware

    def _read(self) -> dict[str, float]:
        return {z.domain: float(_read_uj(z.path)) for z in self.zones}

    def _begin(self, name: str) -> Any:
        mark = self._share.begin() if self._share is not None else None
        self._poller.open(name, CounterAccumulator(self._max))
        return mark

    def _cancel(self, name: str, token: Any) -> None:
        self._poller.discard(name)

    def _end(self, name: str, token: Any) -> tuple[dict[str, float], dict[str, Any]]:
        acc = self._poller.close(name)
        share = self._share.end(token) if self._share is not None else None
        factor = share.share if share is not None else 1.0
        joules = {d: uj / 1e6 for d, uj in acc.total.items()}
        energy_j = {z.domain: joules[z.domain] * factor for z in self.zones if z.additive}
        unshared_j = sum(joules[z.domain] for z in self.zones if z.additive)
        details: dict[str, Any] = {
            "scope": "system",
            "powercap_root": str(self.root),
            "zones": {z.domain: z.path.name for z in self.zones},
            "subdomains_j": {
                z.domain: joules[z.domain] * factor for z in self.zones if not z.additive
            },
            "counter_wraps": acc.wraps,
            "samples": acc.samples,
            "poll_interval_s": self._poller.interval_s,
        }
        if share is not None:
            details.update(share.details(unshared_j))
        else:
            details.update(share=1.0, share_method="whole reading charged (share=False)")
        return energy_j, details

    def _close(self) -> None:
        self._poller.stop()
        if self._share is not None:
            self._share.close()


def _zone_name(path: Path, fallback: str) -> str:
    try:
        return (path / "name").read_text().strip() or fallback
    except OSError:
        return fallback


def _max_range_uj(path: Path) -> float:
    try:
        return float((path / "max_energy_range_uj").read_text().strip())
    except (OSError, ValueError):
        log.warning("%s: no max_energy_range_uj; assuming 2**32 uJ", path)
        return DEFAULT_MAX_RANGE_UJ


def _read_uj(path: Path) -> int:
    return int((path / "energy_uj").read_text().strip())
