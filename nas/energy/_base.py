"""The meter contract: named energy windows that return a :class:`Measurement`."""

from __future__ import annotations

import abc
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

J_PER_KWH = 3.6e6
KINDS = ("measured", "estimated")


@dataclass(frozen=True)
class Measurement:
    """Energy drawn during one named window, with its provenance.

    ``energy_j`` maps each domain (``"gpu:0"``, ``"package-0"``, ``"dram"``, ``"cpu"``) to
    joules; the domains are disjoint, so ``total_energy_j`` is their sum. ``kind`` is
    ``"estimated"`` as soon as any domain is estimated (per-domain kinds are in
    ``details["domain_kinds"]``); ``details`` holds the constants and methods used.
    """

    name: str
    duration_s: float
    energy_j: dict[str, float]
    total_energy_j: float
    source: str
    kind: str
    hardware: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Measurement.kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def energy_kwh(self) -> float:
        return self.total_energy_j / J_PER_KWH

    def to_attrs(self, prefix: str = "") -> dict[str, float | str]:
        """Flat JSON-able attributes with units in the names (e.g. for Optuna user attrs)."""
        attrs: dict[str, float | str] = {
            f"{prefix}energy_j": float(self.total_energy_j),
            f"{prefix}energy_kwh": float(self.energy_kwh),
            f"{prefix}duration_s": float(self.duration_s),
            f"{prefix}energy_source": self.source,
            f"{prefix}energy_kind": self.kind,
            f"{prefix}hardware": self.hardware,
        }
        for domain, joules in self.energy_j.items():
            attrs[f"{prefix}energy_j_{sanitize_domain(domain)}"] = float(joules)
        return attrs

    @classmethod
    def combine(cls, measurements: Iterable[Measurement], name: str) -> Measurement:
        """Sum sequential windows of the same meter into one measurement called ``name``."""
        parts = list(measurements)
        if not parts:
            raise ValueError("combine() needs at least one measurement")
        sources = {m.source for m in parts}
        if len(sources) > 1:
            raise ValueError(f"combine() needs windows of one meter, got sources {sorted(sources)}")
        energy_j: dict[str, float] = {}
        domain_kinds: dict[str, str] = {}
        for m in parts:
            for domain, joules in m.energy_j.items():
                energy_j[domain] = energy_j.get(domain, 0.0) + joules
            domain_kinds.update(m.details.get("domain_kinds", {}))
        hardware = list(dict.fromkeys(m.hardware for m in parts))
        return cls(
            name=name,
            duration_s=sum(m.duration_s for m in parts),
            energy_j=energy_j,
            total_energy_j=sum(m.total_energy_j for m in parts),
            source=parts[0].source,
            kind="estimated" if any(m.kind == "estimated" for m in parts) else "measured",
            hardware=" / ".join(hardware),
            details={
                "domain_kinds": domain_kinds,
                "combined_from": [m.name for m in parts],
                "windows": [m.details for m in parts],
            },
        )


def combine(measurements: Iterable[Measurement], name: str) -> Measurement:
    """Sum sequential windows of the same meter; see :meth:`Measurement.combine`."""
    return Measurement.combine(measurements, name)


def sanitize_domain(domain: str) -> str:
    """``"gpu:0"`` -> ``"gpu_0"``: a domain name usable inside an attribute key."""
    return re.sub(r"[^0-9A-Za-z_\-]", "_", domain)


class Window:
    """Handle yielded by :meth:`Meter.window`; ``measurement`` is set when the block exits."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.measurement: Measurement | None = None


@dataclass
class _Open:
    start_s: float
    token: Any = None


class Meter(abc.ABC):
    """An energy meter measuring named windows.

    Contract:

    * ``begin_window(name)`` starts a window and ``end_window(name)`` returns its
      :class:`Measurement`. Several windows may be open at once, nested or overlapping; each
      is measured independently. Beginning a window whose name is open, or ending one that
      is not open, raises ``ValueError``.
    * With ``sync=True`` (default) pending CUDA work is synchronised at both edges when
      torch has initialised CUDA, so asynchronous kernels are charged to the right window.
    * ``source`` (``"nvml"``, ``"rapl"``, ``"estimate"``, ``"nvml+estimate"``...), ``kind``
      (``"measured"``/``"estimated"``) and ``hardware`` describe every measurement.
    * ``close()`` releases threads and vendor libraries; a closed meter can't open windows.

    Subclasses implement :meth:`_begin` (read the starting state, return a token) and
    :meth:`_end` (return ``(energy_j per domain, details)`` for the token).
    """

    def __init__(self) -> None:
        self._open: dict[str, _Open] = {}
        self._lock = threading.Lock()
        self._closed = False

    @property
    @abc.abstractmethod
    def source(self) -> str:
        """Short meter label: ``nvml``, ``rapl``, ``estimate`` or ``gpu+host`` composites."""

    @property
    @abc.abstractmethod
    def kind(self) -> str:
        """``"measured"`` or ``"estimated"`` (estimated if any part is estimated)."""

    @property
    @abc.abstractmethod
    def hardware(self) -> str:
        """What is measured, e.g. ``"NVIDIA H200"`` or ``"AMD EPYC (2 logical cores)"``."""

    @abc.abstractmethod
    def _begin(self, name: str) -> Any:
        """Read the starting state of window ``name``; the return value is passed to _end."""

    @abc.abstractmethod
    def _end(self, name: str, token: Any) -> tuple[dict[str, float], dict[str, Any]]:
        """Finish window ``name``: joules per domain and the details of how they were got."""

    def _close(self) -> None:
        """Release resources (threads, vendor libraries). Called once by :meth:`close`."""
        return None

    def begin_window(self, name: str, *, sync: bool = True) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a window name must be a non-empty string, got {name!r}")
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the {self.source} meter is closed")
            if name in self._open:
                raise ValueError(f"energy window {name!r} is already open")
            self._open[name] = _Open(start_s=time.perf_counter())
        try:
            if sync:
                sync_cuda()
            start_s = time.perf_counter()
            token = self._begin(name)
        except BaseException:
            with self._lock:
                self._open.pop(name, None)
            raise
        with self._lock:
            self._open[name] = _Open(start_s=start_s, token=token)

    def end_window(self, name: str, *, sync: bool = True) -> Measurement:
        with self._lock:
            opened = self._open.pop(name, None)
        if opened is None:
            raise ValueError(f"energy window {name!r} is not open")
        if sync:
            sync_cuda()
        end_s = time.perf_counter()
        energy_j, details = self._end(name, opened.token)
        details.setdefault("domain_kinds", {d: self.kind for d in energy_j})
        return Measurement(
            name=name,
            duration_s=end_s - opened.start_s,
            energy_j=dict(energy_j),
            total_energy_j=float(sum(energy_j.values())),
            source=self.source,
            kind=self.kind,
            hardware=self.hardware,
            details=details,
        )

    @contextmanager
    def window(self, name: str, *, sync: bool = True) -> Iterator[Window]:
        """``with meter.window("train") as w: ...`` then ``w.measurement``."""
        handle = Window(name)
        self.begin_window(name, sync=sync)
        try:
            yield handle
        finally:
            handle.measurement = self.end_window(name, sync=sync)

    @property
    def open_windows(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._open)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._open.clear()
        self._close()

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} source={self.source!r} hardware={self.hardware!r}>"


def sync_cuda() -> None:
    """Wait for queued CUDA work on every device, if (and only if) torch initialised CUDA."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    cuda = getattr(torch, "cuda", None)
    if cuda is None or not cuda.is_initialized():
        return
    for index in range(cuda.device_count()):
        cuda.synchronize(index)


def merge_domain_kinds(parts: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Union of the ``domain_kinds`` found in several parts' details."""
    kinds: dict[str, str] = {}
    for details in parts.values():
        kinds.update(details.get("domain_kinds", {}))
    return kinds
