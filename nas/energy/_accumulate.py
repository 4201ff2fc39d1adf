"""One accumulator for a window repeated many times (teacher passes, clients, rungs).

::

    teacher = WindowAccumulator(meter, "teacher")
    for x, y in batches:
        with teacher.window():            # nested inside the open "train" window
            logits = teacher_model(x)
    teacher.energy_j, teacher.count, teacher.measurement()

    clients = WindowAccumulator(meter, "client")
    with clients.window(key=k): train_client(k)
    clients.totals(k).energy_kwh
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from nas.energy._base import Meter, Window
from nas.energy._measurement import J_PER_KWH, Measurement, add_measurements

NAN = float("nan")


@dataclass(frozen=True)
class WindowTotals:
    """Summed windows of one key (or of all): NaN energy when there was no meter."""

    count: int
    energy_j: float
    duration_s: float

    @property
    def energy_kwh(self) -> float:
        return self.energy_j / J_PER_KWH


class WindowAccumulator:
    """Sums any number of windows called ``name`` on ``meter``, grouped by an optional key.

    Each ``with acc.window(key):`` begins ``name`` with ``restart=True`` (a window left open
    by an earlier failure can't block it) and ends it when the block exits, also on an
    exception (the work was paid for: it is counted, then the exception propagates). It may
    be nested inside another open window of a different name: meters measure concurrent
    windows independently, so the outer window's energy includes the inner's. One
    accumulator's windows run one at a time; accumulators open at once need distinct names. Without a meter (None) energies are
    NaN, never a silent 0, and durations are still counted.
    """

    def __init__(self, meter: Meter | None, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a window name must be a non-empty string, got {name!r}")
        self.meter = meter
        self.name = name
        self._lock = threading.Lock()
        self._count: dict[Hashable, int] = {}
        self._energy_j: dict[Hashable, float] = {}
        self._duration_s: dict[Hashable, float] = {}
        self._combined: Measurement | None = None

    @property
    def source(self) -> str:
        return self.meter.source if self.meter is not None else "none"

    @property
    def kind(self) -> str:
        return self.meter.kind if self.meter is not None else "none"

    @contextmanager
    def window(self, key: Hashable = None) -> Iterator[Window]:
        """One more window, counted under ``key``; ``handle.measurement`` set on exit."""
        handle = Window(self.name)
        if self.meter is None:
            start_s = time.perf_counter()
            try:
                yield handle
            finally:
                self._add(key, NAN, time.perf_counter() - start_s, None)
            return
        self.meter.begin_window(self.name, restart=True)
        try:
            yield handle
        finally:
            m = self.meter.end_window(self.name)
            handle.measurement = m
            self._add(key, m.total_energy_j, m.duration_s, m)

    def _add(
        self, key: Hashable, energy_j: float, duration_s: float, m: Measurement | None
    ) -> None:
        with self._lock:
            self._count[key] = self._count.get(key, 0) + 1
            self._energy_j[key] = self._energy_j.get(key, 0.0) + energy_j
            self._duration_s[key] = self._duration_s.get(key, 0.0) + duration_s
            if m is not None:
                prev = self._combined
                self._combined = m if prev is None else add_measurements(prev, m, self.name)

    def totals(self, key: Hashable = None) -> WindowTotals:
        """The windows counted under ``key`` (count 0 for an unknown key)."""
        with self._lock:
            if key not in self._count:
                return WindowTotals(0, 0.0 if self.meter is not None else NAN, 0.0)
            return WindowTotals(self._count[key], self._energy_j[key], self._duration_s[key])

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._count)

    @property
    def count(self) -> int:
        with self._lock:
            return sum(self._count.values())

    @property
    def energy_j(self) -> float:
        with self._lock:
            if self.meter is None:
                return NAN
            return math.fsum(self._energy_j.values())

    @property
    def energy_kwh(self) -> float:
        return self.energy_j / J_PER_KWH

    @property
    def duration_s(self) -> float:
        with self._lock:
            return math.fsum(self._duration_s.values())

    def measurement(self) -> Measurement | None:
        """Every window combined (as :func:`nas.energy.combine` sums them), None when no
        window was measured (none yet, or no meter)."""
        with self._lock:
            m = self._combined
            if m is None:
                return None
            count = sum(self._count.values())
            details = {**m.details, "combined_from": [self.name], "window_count": count}
            return Measurement(
                name=self.name,
                duration_s=m.duration_s,
                energy_j=dict(m.energy_j),
                total_energy_j=m.total_energy_j,
                source=m.source,
                kind=m.kind,
                hardware=m.hardware,
                details=details,
            )

    def __repr__(self) -> str:
        return f"<WindowAccumulator {self.name!r} count={self.count} source={self.source!r}>"
