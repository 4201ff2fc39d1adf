"""Reading carbon-intensity traces from CSV: our format, Electricity Maps exports, shipped files.

Accepted headers (names compared case-insensitively, surrounding spaces and a BOM ignored):

- ``Time,Carbon Intensity`` with ``Time`` as UTC ``YYYY-MM-DD HH:MM:SS`` (the shipped traces);
- Electricity Maps exports: ``Datetime (UTC)`` and ``Carbon Intensity gCO₂eq/kWh (LCA)``,
  or the ``(direct)`` column when LCA is absent.

Times may also be ISO 8601 with ``T``, ``Z`` or an offset (converted to UTC); a time without an
offset is UTC. Rows out of order are sorted and duplicate timestamps keep their first row, each
with a warning; anything else wrong (missing column, unparsable time or number, NaN, negative
intensity) raises :class:`~nas.errors.BadInputError` naming the file and line.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import stat
import warnings
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import numpy as np

from nas.carbon._trace import Trace
from nas.errors import BadInputError

__all__ = ["SHIPPED_TRACES", "load_trace", "parse_trace_csv"]

log = logging.getLogger(__name__)

SHIPPED_TRACES = ("fr_2020", "gb_2020")
MAX_TRACE_BYTES = 256 * 1024 * 1024  # a year of 5-minute points is ~4 MB
"""Real 2020 traces shipped in ``nas/traces/`` (see ``CARBON_TRACES.md`` for attribution)."""

_TIME_COLUMNS = ("time", "datetime (utc)")
_VALUE_COLUMNS = (
    "carbon intensity",
    "carbon intensity gco2eq/kwh (lca)",
    "carbon intensity gco2eq/kwh (direct)",
)


def _norm(header: str) -> str:
    return " ".join(header.replace("\ufeff", "").replace("₂", "2").strip().lower().split())


def _shipped_path(name: str) -> Path | None:
    stem = name[:-4] if name.endswith(".csv") else name
    if stem not in SHIPPED_TRACES:
        return None
    ref = resources.files("nas").joinpath("traces", f"{stem}.csv")
    return Path(str(ref))


def load_trace(path_or_name: str | os.PathLike[str]) -> Trace:
    """Load a trace from a CSV path or a shipped name (``"gb_2020"``, ``"fr_2020"``)."""
    path = Path(path_or_name)
    if not path.exists():
        shipped = _shipped_path(str(path_or_name))
        if shipped is None:
            raise BadInputError(
                f"trace {path_or_name}: no such file (shipped traces: {', '.join(SHIPPED_TRACES)})"
            )
        path = shipped
    return parse_trace_csv(_read_regular(path), name=path.name)


def _read_regular(path: Path) -> str:
    """A regular file of bounded size: a directory, a FIFO (it would block) or a link to
    /dev/zero (it never ends) is refused, not read."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise BadInputError(f"trace {path}: cannot read ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise BadInputError(f"trace {path}: is a directory, expected a CSV file")
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
        raise BadInputError(f"trace {path} is {kind}, not a regular file")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_TRACE_BYTES + 1)
    except OSError as exc:
        raise BadInputError(f"trace {path}: cannot read ({exc.strerror})") from exc
    if len(data) > MAX_TRACE_BYTES:
        raise BadInputError(f"trace {path} is larger than {MAX_TRACE_BYTES >> 20} MiB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInputError(f"trace {path}: not a UTF-8 text file ({exc.reason})") from exc


def parse_time(text: str) -> float:
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    when = datetime.fromisoformat(s)  # ValueError when unparsable
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _find_columns(header: list[str], name: str) -> tuple[int, int]:
    normed = [_norm(h) for h in header]
    time_col = next((normed.index(c) for c in _TIME_COLUMNS if c in normed), None)
    value_col = next((normed.index(c) for c in _VALUE_COLUMNS if c in normed), None)
    missing = []
    if time_col is None:
        missing.append("'Time' (or 'Datetime (UTC)')")
    if value_col is None:
        missing.append("'Carbon Intensity' (or 'Carbon Intensity gCO₂eq/kWh (LCA)')")
    if missing:
        found = ", ".join(repr(h.strip()) for h in header) or "nothing"
        raise BadInputError(f"trace {name}: missing column {' and '.join(missing)}; found {found}")
    log.debug(
        "trace %s: time column %r, intensity column %r", name, header[time_col], header[value_col]
    )
    return time_col, value_col  # type: ignore[return-value]


def parse_trace_csv(text: str, *, name: str = "trace.csv") -> Trace:
    """Parse CSV text (see the module docstring for the accepted formats) into a Trace."""
    rows = csv.reader(text.lstrip("\ufeff").splitlines())
    header = next(rows, None)
    if not header:
        raise BadInputError(f"trace {name}: empty file")
    time_col, value_col = _find_columns(header, name)
    times: list[float] = []
    values: list[float] = []
    for line_no, row in enumerate(rows, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) <= max(time_col, value_col):
            raise BadInputError(f"trace {name} line {line_no}: expected {len(header)} columns")
        raw_time, raw_value = row[time_col], row[value_col].strip()
        try:
            times.append(parse_time(raw_time))
        except ValueError:
            raise BadInputError(
                f"trace {name} line {line_no}: cannot parse time {raw_time.strip()!r} "
                "(expected UTC 'YYYY-MM-DD HH:MM:SS')"
            ) from None
        if not raw_value:
            raise BadInputError(f"trace {name} line {line_no}: missing intensity value")
        try:
            value = float(raw_value)
        except ValueError:
            raise BadInputError(
                f"trace {name} line {line_no}: intensity {raw_value!r} is not a number"
            ) from None
        if math.isnan(value) or math.isinf(value):
            raise BadInputError(f"trace {name} line {line_no}: intensity is {raw_value}")
        if value < 0:
            raise BadInputError(
                f"trace {name} line {line_no}: negative intensity {value:g} gCO2e/kWh"
            )
        values.append(value)
    if len(times) < 2:
        raise BadInputError(f"trace {name}: needs at least two data rows, found {len(times)}")
    return _clean(np.asarray(times), np.asarray(values), name=name)


def _clean(times_f: np.ndarray, values: np.ndarray, *, name: str) -> Trace:
    """Round to whole seconds, sort and de-duplicate (warning about either)."""
    times = np.round(times_f).astype(np.int64)
    if np.any(np.diff(times) < 0):
        warnings.warn(f"trace {name}: rows are not in time order; sorted them", stacklevel=3)
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
    keep = np.ones(times.size, dtype=bool)
    keep[1:] = np.diff(times) != 0
    dropped = int(times.size - keep.sum())
    if dropped:
        warnings.warn(
            f"trace {name}: {dropped} duplicate timestamp(s); kept the first row of each",
            stacklevel=3,
        )
        times, values = times[keep], values[keep]
    if times.size < 2:
        raise BadInputError(f"trace {name}: needs at least two distinct timestamps")
    return Trace(times_s=times, values_g_per_kwh=values, name=name)
