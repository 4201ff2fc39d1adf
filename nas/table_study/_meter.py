"""The table's meter: a window's energy is what the table charged while it was open."""

from __future__ import annotations

import threading
from typing import Any

from nas.energy import J_PER_KWH, Meter
from nas.tabular import Table


class TableMeter(Meter):
    """Measures nothing on this machine: :meth:`charge` (called by
    :class:`~nas.table_study.TableWorkload` for each epoch looked up) adds the table's energy,
    and every window open at that moment sees it. A window in which nothing was looked up
    (sampling, reuse, evaluation, storing the record) is 0 J.

    ``source`` is ``table:<name>``, ``kind`` the table's ``energy_kind``, ``hardware`` the
    table's; ``details`` carry the table's ``meter`` and ``energy_covers`` and the table's
    training time for the window (``table_duration_s``; a window's ``duration_s`` is the
    time the lookup itself took here).
    """

    def __init__(self, table: Table) -> None:
        super().__init__()
        self.table = table
        self._charged_j = 0.0
        self._charged_s = 0.0
        self._counter_lock = threading.Lock()

    @property
    def source(self) -> str:
        return f"table:{self.table.name}"

    @property
    def kind(self) -> str:
        return self.table.energy_kind

    @property
    def hardware(self) -> str:
        return self.table.hardware

    def charge(self, energy_kwh: float, duration_s: float) -> None:
        """Add what the table says a piece of training cost (never negative)."""
        if energy_kwh < 0 or duration_s < 0:
            raise ValueError("a table's charge must be >= 0 (its figures are cumulative)")
        with self._counter_lock:
            self._charged_j += energy_kwh * J_PER_KWH
            self._charged_s += duration_s

    @property
    def charged_kwh(self) -> float:
        """Everything charged so far, over all windows."""
        return self._charged_j / J_PER_KWH

    def _begin(self, name: str) -> tuple[float, float]:
        with self._counter_lock:
            return self._charged_j, self._charged_s

    def _end(self, name: str, token: Any) -> tuple[dict[str, float], dict[str, Any]]:
        start_j, start_s = token
        with self._counter_lock:
            joules, seconds = self._charged_j - start_j, self._charged_s - start_s
        details = {
            "scope": "table",
            "table": self.table.name,
            "table_meter": self.table.meta.get("meter", ""),
            "energy_covers": self.table.meta.get("energy_covers", ""),
            "table_duration_s": seconds,
        }
        return {"table": joules}, details
