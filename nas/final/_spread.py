"""How far measured final trainings fell from their projections, per hardware class.

``benchmarks/projection.py`` trains several architectures at several data sizes, with and
without a SIGKILL and resume, and writes the spread of ``(measured - projected) / projected``
to ``projection_spread.json`` next to this module (package data; ``$ECONAS_PROJECTION_SPREAD``
names another file). A projection's range is that spread: the lowest and highest error seen
on the same hardware class (CPU model, meter, device type), for a fresh or a resumed run.
Nothing here is estimated on the fly: a class never benchmarked has no range, and says so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nas.text import plural

FORMAT = "econas.projection_spread/1"
SPREAD_FILE = Path(__file__).with_name("projection_spread.json")
ENV = "ECONAS_PROJECTION_SPREAD"


def spread_path() -> Path:
    return Path(os.environ[ENV]) if os.environ.get(ENV) else SPREAD_FILE


def load_spread(path: Path | None = None) -> list[dict[str, Any]]:
    """The benchmarked hardware classes (empty when the file is missing or not ours)."""
    path = path or spread_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return []
    return [e for e in data.get("entries") or [] if isinstance(e, dict)]


def hardware_class(
    *, cpu_model: str, meter: str, device: str, threads: int | None
) -> dict[str, Any]:
    return {
        "cpu_model": cpu_model,
        "meter": meter,
        "device": device.split(":")[0],
        "threads": threads,
    }


def describe(hw: dict[str, Any]) -> str:
    threads = hw.get("threads")
    t = "" if threads is None else f", {threads} thread{'s' if threads != 1 else ''}"
    return f"{hw.get('cpu_model')}, {hw.get('meter')} meter on {hw.get('device')}{t}"


def spread_for(
    hw: dict[str, Any], *, resumed: bool, entries: list[dict[str, Any]] | None = None
) -> tuple[tuple[float, float] | None, str]:
    """``((lowest, highest) error in %, basis)`` for ``hw``; ``(None, why)`` when no
    benchmark ran on that class. A class benchmarked at another thread count is used, and
    the basis says so."""
    entries = load_spread() if entries is None else entries
    same = [
        e
        for e in entries
        if all(
            (e.get("hardware_class") or {}).get(k) == hw.get(k)
            for k in ("cpu_model", "meter", "device")
        )
    ]
    if not same:
        where = "; ".join(describe(e.get("hardware_class") or {}) for e in entries)
        return None, f"benchmarks/projection.py has not been run on {describe(hw)}" + (
            f" (only on {where})" if where else ""
        )
    exact = [e for e in same if (e.get("hardware_class") or {}).get("threads") == hw["threads"]]
    entry = (exact or same)[0]
    case = entry.get("resumed" if resumed else "fresh") or {}
    lo, hi, n = case.get("error_pct_min"), case.get("error_pct_max"), case.get("runs")
    if lo is None or hi is None or not n:
        return None, f"the spread file holds no {'resumed' if resumed else 'fresh'} runs"
    cls = entry.get("hardware_class") or {}
    basis = (
        f"from {plural(n, 'resumed run' if resumed else 'fresh run')} of benchmarks/projection.py on "
        f"{describe(cls)}, commit {str(entry.get('commit') or '?')[:10]}, {entry.get('at')}"
    )
    if not exact:
        basis += f"; this proxy ran with {plural(hw['threads'], 'thread')}"
    return (float(lo), float(hi)), basis
