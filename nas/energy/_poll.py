"""One sampling thread per meter, feeding every open window's accumulator.

Used for NVML power polling (trapezoid integral of mW), RAPL counters (read often enough to
see every wrap-around) and RSS sampling (integral of bytes over time) in the estimate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

Reading = Mapping[str, float]


class Accumulator:
    """Folds timestamped readings ``(t_s, {key: value})`` of one window into ``total``."""

    def __init__(self) -> None:
        self.total: dict[str, float] = {}
        self.samples = 0
        self._last_t_s: float | None = None
        self._last: dict[str, float] = {}

    def start(self, t_s: float, reading: Reading) -> None:
        self._last_t_s, self._last = t_s, dict(reading)
        self.total = {key: 0.0 for key in reading}
        self.samples = 1

    def add(self, t_s: float, reading: Reading) -> None:
        if self._last_t_s is None:
            raise RuntimeError("Accumulator.add() before start()")
        for key, value in reading.items():
            if key in self._last:
                self.total[key] = self.total.get(key, 0.0) + self._step(
                    key, self._last[key], value, t_s - self._last_t_s
                )
        self._last_t_s, self._last = t_s, dict(reading)
        self.samples += 1

    def _step(self, key: str, previous: float, value: float, dt_s: float) -> float:
        raise NotImplementedError


class TrapezoidIntegrator(Accumulator):
    """``total[key]`` = integral of the value over time (value x seconds), trapezoid rule."""

    def _step(self, key: str, previous: float, value: float, dt_s: float) -> float:
        return 0.5 * (previous + value) * dt_s


class CounterAccumulator(Accumulator):
    """``total[key]`` = increase of a monotonic counter that wraps at ``max_range[key]``."""

    def __init__(self, max_range: Mapping[str, float]) -> None:
        super().__init__()
        self.max_range = dict(max_range)
        self.wraps = 0

    def _step(self, key: str, previous: float, value: float, dt_s: float) -> float:
        delta = value - previous
        if delta < 0:
            self.wraps += 1
            delta += self.max_range[key]
        return delta


class Poller:
    """Samples ``read()`` every ``interval_s`` while at least one window is open.

    ``open`` and ``close`` take a reading at the window's edges, so a window shorter than
    the interval is still covered end to end. The thread is a daemon, started when the first
    window opens and stopped when the last one closes. A failed reading in the thread is
    logged once and skipped (the next sample bridges the gap); readings at edges raise.
    """

    def __init__(
        self,
        *,
        read: Callable[[], Reading],
        interval_s: float,
        name: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"poll interval must be > 0 s, got {interval_s!r}")
        self.read = read
        self.interval_s = float(interval_s)
        self.name = name
        self.clock = clock
        self.failed_reads = 0
        self._windows: dict[str, Accumulator] = {}
        self._lock = threading.Lock()
        self._stop: threading.Event | None = None

    def open(self, key: str, acc: Accumulator) -> None:
        with self._lock:
            acc.start(self.clock(), self.read())
            self._windows[key] = acc
            if self._stop is None:
                self._stop = threading.Event()
                thread = threading.Thread(
                    target=self._run, args=(self._stop,), name=self.name, daemon=True
                )
                thread.start()

    def close(self, key: str) -> Accumulator:
        with self._lock:
            acc = self._windows.pop(key)
            try:
                acc.add(self.clock(), self.read())
            finally:
                if not self._windows and self._stop is not None:
                    self._stop.set()
                    self._stop = None
        return acc

    def discard(self, key: str) -> None:
        """Drop window ``key`` without a closing reading (a cancelled window)."""
        with self._lock:
            self._windows.pop(key, None)
            if not self._windows and self._stop is not None:
                self._stop.set()
                self._stop = None

    @property
    def open_keys(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._windows)

    def poll_once(self) -> None:
        """Take one reading and feed it to every open window (the thread's loop body)."""
        with self._lock:
            if not self._windows:
                return
            try:
                reading = self.read()
            except Exception as exc:  # keep the thread alive; edges still raise
                self.failed_reads += 1
                if self.failed_reads == 1:
                    log.warning("%s: a reading failed and was skipped: %r", self.name, exc)
                return
            t_s = self.clock()
            for acc in self._windows.values():
                acc.add(t_s, reading)

    def stop(self) -> None:
        with self._lock:
            self._windows.clear()
            if self._stop is not None:
                self._stop.set()
                self._stop = None

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval_s):
            self.poll_once()
