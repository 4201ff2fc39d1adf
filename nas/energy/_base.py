"""The meter contract: named energy windows that return a :class:`Measurement`."""

from __future__ import annotations

import abc
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, overload

from nas.energy._measurement import (
    J_PER_KWH,
    KINDS,
    Measurement,
    combine,
    sanitize_domain,
)

__all__ = ["J_PER_KWH", "KINDS", "Measurement", "Meter", "Window", "combine", "sanitize_domain"]


class Window:
    """Handle yielded by :meth:`Meter.window`; ``measurement`` is set when the block exits."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.measurement: Measurement | None = None


@dataclass
class _Open:
    start_s: float
    token: Any = None
    pending: bool = False  # _begin still running


class Meter(abc.ABC):
    """An energy meter measuring named windows.

    Contract:

    * ``begin_window(name)`` starts a window and ``end_window(name)`` returns its
      :class:`Measurement`. Several windows may be open at once, nested or overlapping; each
      is measured independently. Beginning a window whose name is open, or ending one that
      is not open, raises ``ValueError``; ``begin_window(name, restart=True)`` instead
      discards the open window silently and begins it again, and
      ``end_window(name, cancel=True)`` discards the window and returns None.
    * With ``sync=True`` (default) pending CUDA work is synchronised at both edges when
      torch has initialised CUDA, so asynchronous kernels are charged to the right window.
    * ``source`` (``"nvml"``, ``"rapl"``, ``"estimate"``, ``"nvml+estimate"``...), ``kind``
      (``"measured"``/``"estimated"``) and ``hardware`` describe every measurement; its
      ``details["scope"]`` says what was metered (``process``, ``system``, ``device``).
    * ``close()`` releases threads and vendor libraries; a closed meter can't open windows.

    Subclasses implement :meth:`_begin` (read the starting state, return a token),
    :meth:`_end` (return ``(energy_j per domain, details)`` for the token) and, when a
    window holds state (a poller's accumulator), :meth:`_cancel` to release it unread.
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

    def _cancel(self, name: str, token: Any) -> None:
        """Discard window ``name`` without measuring it: release what _begin holds."""
        return None

    def _close(self) -> None:
        """Release resources (threads, vendor libraries). Called once by :meth:`close`."""
        return None

    def begin_window(self, name: str, *, sync: bool = True, restart: bool = False) -> None:
        """Start window ``name``; ``restart=True`` first discards an open one of that name."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a window name must be a non-empty string, got {name!r}")
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the {self.source} meter is closed")
            stale = self._open.pop(name, None) if restart else self._open.get(name)
            if stale is not None and not restart:
                raise ValueError(f"energy window {name!r} is already open")
            self._open[name] = _Open(start_s=time.perf_counter(), pending=True)
        try:
            if stale is not None and not stale.pending:
                self._cancel(name, stale.token)
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

    @overload
    def end_window(
        self, name: str, *, sync: bool = True, cancel: Literal[False] = False
    ) -> Measurement: ...

    @overload
    def end_window(self, name: str, *, sync: bool = True, cancel: bool) -> Measurement | None: ...

    def end_window(
        self, name: str, *, sync: bool = True, cancel: bool = False
    ) -> Measurement | None:
        """The window's :class:`Measurement`; with ``cancel=True`` discard it: None."""
        with self._lock:
            opened = self._open.get(name)
            if opened is None or opened.pending:
                raise ValueError(f"energy window {name!r} is not open")
            del self._open[name]
        if cancel:
            self._cancel(name, opened.token)
            return None
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
    def window(self, name: str, *, sync: bool = True, restart: bool = False) -> Iterator[Window]:
        """``with meter.window("train") as w: ...`` then ``w.measurement`` (set on error too)."""
        handle = Window(name)
        self.begin_window(name, sync=sync, restart=restart)
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
