"""Host-local registry of the econas processes that meter a machine- or board-wide scope.

RAPL counts every process on the machine and NVML every process on the board, so two econas
workers on one host would each be charged the whole reading. Each metering process writes
one small JSON file, ``<registry>/<pid>.json``, naming the scopes it meters (``rapl:<root>``,
``nvml:<gpu uuid>``); the file is removed when its last meter closes (and at exit). A file
whose process is gone, or whose pid was reused (start time differs), is stale: ignored and
removed. The directory is ``$ECONAS_METER_REGISTRY``, else ``$XDG_RUNTIME_DIR/econas/meters``,
else ``/tmp/econas-<uid>/meters``: per user, so only one user's processes share readings.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

REGISTRY_ENV = "ECONAS_METER_REGISTRY"
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def registry_dir() -> Path:
    """Where metering processes register (see the module docstring)."""
    given = os.environ.get(REGISTRY_ENV)
    if given:
        return Path(given)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "econas" / "meters"
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path("/tmp") / f"econas-{uid}" / "meters"


@dataclass(frozen=True)
class ProcStat:
    start: str  # start time in clock ticks since boot: identifies the process with its pid
    cpu_s: float  # user + system CPU seconds, its own and its waited-for children's


def proc_stat(pid: int) -> ProcStat | None:
    """``/proc/<pid>/stat`` (None when the process is gone or /proc is unreadable)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": state is fields[0]
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return ProcStat(start=fields[19], cpu_s=(utime + stime + cutime + cstime) / _CLK_TCK)


def self_cpu_s() -> float:
    """This process's CPU seconds (its own and its waited-for children's), precisely."""
    try:
        import resource
    except ImportError:  # not POSIX
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass(frozen=True)
class Peer:
    """Another live econas process metering a scope, as read from its registry file."""

    pid: int
    start: str
    cpu_s_at_register: float  # its CPU seconds when it registered this scope


class _Registry:
    """This process's registrations (scope -> count, CPU s at first registration) per dir."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._scopes: dict[Path, dict[str, list[float]]] = {}

    def register(self, directory: Path, scope: str) -> None:
        with self._lock:
            self._forget_if_forked()
            scopes = self._scopes.setdefault(directory, {})
            entry = scopes.setdefault(scope, [0, self_cpu_s()])
            entry[0] += 1
            self._write(directory)

    def release(self, directory: Path, scope: str) -> None:
        with self._lock:
            self._forget_if_forked()
            scopes = self._scopes.get(directory, {})
            entry = scopes.get(scope)
            if entry is None:
                return
            entry[0] -= 1
            if entry[0] <= 0:
                del scopes[scope]
            self._write(directory)

    def release_all(self) -> None:
        with self._lock:
            if os.getpid() != self._pid:
                return
            for directory in self._scopes:
                with contextlib.suppress(OSError):
                    (directory / f"{self._pid}.json").unlink()
            self._scopes.clear()

    def _forget_if_forked(self) -> None:
        if os.getpid() != self._pid:  # a forked child inherits nothing it did not register
            self._pid, self._scopes = os.getpid(), {}

    def _write(self, directory: Path) -> None:
        path = directory / f"{self._pid}.json"
        scopes = self._scopes.get(directory, {})
        try:
            if not scopes:
                path.unlink(missing_ok=True)
                return
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            me = proc_stat(self._pid)
            record = {
                "pid": self._pid,
                "start": me.start if me is not None else None,
                "scopes": {s: {"cpu_s_at_register": c} for s, (_, c) in scopes.items()},
            }
            tmp = directory / f".{self._pid}.json.tmp"
            tmp.write_text(json.dumps(record))
            os.replace(tmp, path)
        except OSError as exc:  # a read-only /tmp must not stop the measurement
            log.warning(
                "econas meter registry %s not writable (%s): shares assume alone", path, exc
            )


_REGISTRY = _Registry()
atexit.register(_REGISTRY.release_all)


def register(directory: Path, scope: str) -> None:
    """Record that this process meters ``scope`` (counted: one release per register)."""
    _REGISTRY.register(directory, scope)


def release(directory: Path, scope: str) -> None:
    _REGISTRY.release(directory, scope)


def peers(directory: Path, scope: str) -> dict[int, Peer]:
    """Other live processes registered for ``scope`` in ``directory``; stale files removed."""
    found: dict[int, Peer] = {}
    try:
        paths = list(directory.glob("*.json"))
    except OSError:
        return found
    me = os.getpid()
    for path in paths:
        try:
            record = json.loads(path.read_text())
            pid = int(record["pid"])
            entry = record["scopes"].get(scope)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # being replaced, or not ours to judge
        if pid == me or entry is None:
            continue
        if not _alive(pid, record.get("start")):
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        found[pid] = Peer(pid, str(record.get("start")), float(entry["cpu_s_at_register"]))
    return found


def _alive(pid: int, start: str | None) -> bool:
    stat = proc_stat(pid)
    if stat is not None:
        return start is None or stat.start == str(start)
    if Path("/proc/self/stat").exists():
        return False  # /proc works and has no such process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
