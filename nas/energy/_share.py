"""This process's share of a meter that other econas processes on the host read too.

* :class:`CpuTimeShare` (RAPL, machine-wide): share = this process's CPU time during the
  window / the CPU time of every live econas process registered for the same scope during
  the window (own + waited-for children's, from ``/proc/<pid>/stat`` for the others).
* :class:`EqualShare` (NVML, one board): 1/n among the n econas processes registered for
  the same GPU whose registration overlaps the window.

Alone, the share is 1.0. Limits: processes that are not econas (or meter nothing) are not
counted; a peer that registers during the window is charged its CPU time since registering;
one that exits during the window is counted as idle, and one that registers and releases
between this window's edges is not seen at all (its share stays with this process).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.energy._registry import (
    Peer,
    peers,
    proc_stat,
    register,
    registry_dir,
    release,
    self_cpu_s,
)


@dataclass(frozen=True)
class Share:
    share: float
    method: str
    peers: int  # other econas processes counted

    def details(self, unshared_j: float) -> dict[str, Any]:
        return {
            "share": self.share,
            "share_method": self.method,
            "energy_j_unshared": unshared_j,
            "peers": self.peers,
        }


class _Registered:
    """Registers ``scope`` on the first window (lazily) and releases it on close."""

    what = "scope"

    def __init__(self, scope: str, directory: Path | None = None) -> None:
        self.scope = scope
        self.directory = directory or registry_dir()
        self._registered = False
        self._lock = threading.Lock()

    def _peers(self) -> dict[int, Peer]:
        with self._lock:
            if not self._registered:
                register(self.directory, self.scope)
                self._registered = True
        return peers(self.directory, self.scope)

    def close(self) -> None:
        with self._lock:
            if self._registered:
                release(self.directory, self.scope)
                self._registered = False

    def _alone(self) -> Share:
        return Share(1.0, f"alone: no other econas process metering this {self.what}", 0)


@dataclass(frozen=True)
class _CpuMark:
    self_cpu_s: float
    others: dict[int, tuple[str, float]]  # pid -> (start, CPU s)


class CpuTimeShare(_Registered):
    """Splits a machine-wide reading by CPU time among the econas processes metering it."""

    what = "host"

    def begin(self) -> _CpuMark:
        return _CpuMark(self_cpu_s(), _cpu_of(self._peers()))

    def end(self, mark: _CpuMark) -> Share:
        mine = max(0.0, self_cpu_s() - mark.self_cpu_s)
        now = self._peers()
        others = 0.0
        for pid, peer in now.items():
            stat = proc_stat(pid)
            if stat is None:
                continue
            before = mark.others.get(pid)
            if before is not None and before[0] == stat.start:
                others += max(0.0, stat.cpu_s - before[1])
            else:  # registered during the window: all its CPU since then is inside it
                others += max(0.0, stat.cpu_s - peer.cpu_s_at_register)
        for pid, (start, cpu_s) in mark.others.items():
            if pid not in now and (stat := proc_stat(pid)) is not None and stat.start == start:
                others += max(0.0, stat.cpu_s - cpu_s)  # released its meter, still running
        overlapping = len(set(mark.others) | set(now))
        if overlapping == 0:
            return self._alone()
        n = overlapping + 1
        if mine + others <= 0.0:
            return Share(1.0 / n, f"equal split among {n} econas processes (no CPU time)", n - 1)
        method = f"cpu-time among {n} econas processes on this host"
        return Share(mine / (mine + others), method, n - 1)


class EqualShare(_Registered):
    """Splits a board-wide reading equally among the econas processes metering the board."""

    what = "GPU"

    def begin(self) -> set[int]:
        return set(self._peers())

    def end(self, before: set[int]) -> Share:
        n = len(before | set(self._peers())) + 1
        if n == 1:
            return self._alone()
        return Share(1.0 / n, f"equal split among {n} econas processes on this GPU", n - 1)


def _cpu_of(found: dict[int, Peer]) -> dict[int, tuple[str, float]]:
    out: dict[int, tuple[str, float]] = {}
    for pid in found:
        stat = proc_stat(pid)
        if stat is not None:
            out[pid] = (stat.start, stat.cpu_s)
    return out
