"""Forecast archives: replay what a provider really forecast, issue by issue, with no peeking.

File format (CSV, UTF-8)::

    issued_at,time,carbon_intensity
    2020-06-01T00:00:00Z,2020-06-01T00:00:00Z,182.0
    2020-06-01T00:00:00Z,2020-06-01T00:30:00Z,176.5
    ...

Many rows per ``issued_at``: one per forecast time. Times are ISO 8601 in UTC, written with
``Z`` or ``+00:00`` (other offsets and times without one are refused, so that no hour is ever
misread); ``time`` must not be earlier than its ``issued_at``; intensities are finite and >= 0
(gCO2e/kWh). Anything else is bad input (exit 2) naming the line.

At a decision at time ``T`` a policy sees only the forecast of the latest issue with
``issued_at <= T`` (:meth:`ForecastArchive.row`), resampled onto the decision slots; slots that
issue does not cover are unknown (``inf``: a policy never picks them while it has a known slot).

:func:`synthetic_archive` writes an archive from a trace with a stated error model, for
what-if studies (``econas schedule forecast-archive``); see its docstring.
"""

from __future__ import annotations

import csv
import math
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from nas.carbon import Trace
from nas.errors import BadInputError
from nas.sections.schedule import parse_iso

__all__ = ["ForecastArchive", "load_archive", "synthetic_archive"]

HEADER = ("issued_at", "time", "carbon_intensity")


_SEEN: dict[str, int] = {}


def _utc_s(text: str, where: str) -> int:
    hit = _SEEN.get(text)
    if hit is not None:  # archives repeat each time ~100 times
        return hit
    if len(_SEEN) > 200_000:
        _SEEN.clear()
    _SEEN[text] = value = _parse_utc_s(text, where)
    return value


def _parse_utc_s(text: str, where: str) -> int:
    when = parse_iso(text, where, BadInputError)  # an archive's times must say UTC explicitly
    if when.tzinfo is None or when.utcoffset() != UTC.utcoffset(None):
        raise BadInputError(f"{where}: time {text!r} is not in UTC (end it with Z or +00:00)")
    return int(round(when.timestamp()))


class ForecastArchive:
    """Issued forecasts: ``issued_s`` (sorted) and, per issue, its points (times, values)."""

    def __init__(
        self, *, issues: list[tuple[int, np.ndarray, np.ndarray]], name: str = "archive"
    ) -> None:
        if not issues:
            raise BadInputError(f"forecast archive {name}: no rows")
        issues = sorted(issues, key=lambda x: x[0])
        self.name = name
        self.issued_s = np.asarray([i[0] for i in issues], dtype=np.int64)
        self._points = [(t, v) for _, t, v in issues]
        self._grid: tuple[int, int, list[tuple[int, np.ndarray]]] | None = None

    def __len__(self) -> int:
        return int(self.issued_s.size)

    def latest_index(self, t_s: float) -> int:
        """Index of the latest issue with ``issued_at <= t_s`` (-1: none yet)."""
        return int(np.searchsorted(self.issued_s, t_s, side="right")) - 1

    def _on_grid(self, origin_s: int, slot_s: int) -> list[tuple[int, np.ndarray]]:
        """Each issue as (first slot index from ``origin_s``, slot means)."""
        if self._grid is not None and self._grid[:2] == (origin_s, slot_s):
            return self._grid[2]
        out: list[tuple[int, np.ndarray]] = []
        for times, values in self._points:
            step = int(np.median(np.diff(times))) if times.size > 1 else slot_s
            aligned = step == slot_s and (times[0] - origin_s) % slot_s == 0
            if aligned and (times.size < 2 or np.all(np.diff(times) == slot_s)):
                out.append((int((times[0] - origin_s) // slot_s), values))
                continue
            try:
                grid = Trace(times_s=times, values_g_per_kwh=values, end_s=int(times[-1]) + step)
                grid = grid.resample(slot_s / 60.0)
            except BadInputError:  # shorter than one slot: unusable on this grid
                out.append((0, np.empty(0)))
                continue
            out.append((int((grid.start_s - origin_s) // slot_s), grid.values_g_per_kwh))
        self._grid = (origin_s, slot_s, out)
        return out

    def row(self, times_s: np.ndarray, index: int, horizon_slots: int, slot_s: int) -> np.ndarray:
        """What a policy deciding at slot ``index`` of the grid ``times_s`` may know about the
        next ``horizon_slots`` slots: the latest issue at or before ``times_s[index]``
        (``inf`` where it says nothing)."""
        out = np.full(horizon_slots, np.inf)
        origin = int(times_s[0])
        decision = origin + index * slot_s
        k = self.latest_index(decision)
        if k < 0:
            return out
        first, values = self._on_grid(origin, slot_s)[k]
        lo = index - first
        a, b = max(lo, 0), min(lo + horizon_slots, values.size)
        if b > a:
            out[a - lo : b - lo] = values[a:b]
        return out

    def matrix(
        self, times_s: np.ndarray, indices: np.ndarray, horizon_slots: int, slot_s: int
    ) -> np.ndarray:
        """:meth:`row` for many decision slots, shape (len(indices), horizon_slots)."""
        out = np.empty((len(indices), horizon_slots))
        for r, i in enumerate(np.asarray(indices).tolist()):
            out[r] = self.row(times_s, i, horizon_slots, slot_s)
        return out


def load_archive(path: str | os.PathLike[str]) -> ForecastArchive:
    """Read and check an archive CSV (see the module docstring); bad input names the line."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"forecast archive not found: {p}")
    groups: dict[int, tuple[list[int], list[float]]] = {}
    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            got = tuple(h.strip().lower() for h in header or ())
            if got != HEADER:
                raise BadInputError(
                    f"{p.name}: header must be {','.join(HEADER)}, got {','.join(header or [])!r}"
                )
            for n, row in enumerate(reader, start=2):
                where = f"{p.name} line {n}"
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != 3:
                    raise BadInputError(f"{where}: expected 3 columns, got {len(row)}")
                issued, t = _utc_s(row[0], where), _utc_s(row[1], where)
                if t < issued:
                    raise BadInputError(
                        f"{where}: time {row[1]} is earlier than issued_at {row[0]}"
                    )
                try:
                    v = float(row[2])
                except ValueError:
                    raise BadInputError(f"{where}: intensity {row[2]!r} is not a number") from None
                if not math.isfinite(v) or v < 0:
                    raise BadInputError(f"{where}: intensity must be finite and >= 0, got {v:g}")
                times, values = groups.setdefault(issued, ([], []))
                times.append(t)
                values.append(v)
    except UnicodeDecodeError:
        raise BadInputError(f"{p.name}: not a UTF-8 text file") from None
    issues = []
    for issued, (times, values) in groups.items():
        t = np.asarray(times, dtype=np.int64)
        order = np.argsort(t, kind="stable")
        t, v = t[order], np.asarray(values)[order]
        if t.size > 1 and np.any(np.diff(t) == 0):
            raise BadInputError(f"{p.name}: issue {_iso(issued)} lists a time twice")
        issues.append((issued, t, v))
    return ForecastArchive(issues=issues, name=f"archive:{p.name}")


def _iso(t_s: float) -> str:
    return datetime.fromtimestamp(t_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def synthetic_archive(
    trace: Trace,
    *,
    mape_pct: float,
    seed: int,
    horizon_hours: float = 48.0,
    issue_every_hours: float = 1.0,
    correlation_hours: float = 6.0,
    shared: float = 0.5,
) -> tuple[ForecastArchive, list[tuple[int, int, float]]]:
    """A forecast archive made from a trace's actuals with a stated error model.

    On the trace's slot grid (its usual step), an issue every ``issue_every_hours`` forecasts
    the next ``horizon_hours``. The forecast of target slot ``t`` at lead ``l`` (slots after
    the issue) is ``max(0, actual(t) x (1 + sigma x s(l) x e))`` with

    - ``e = sqrt(shared) x u(t) + sqrt(1 - shared) x w(issue, l)``: ``u`` is one AR(1)
      process over target time shared by every issue (consecutive forecasts of the same hour
      err alike, as weather errors do), ``w`` an AR(1) process over lead time drawn afresh
      for each issue; both have unit variance and correlation ``exp(-dt / correlation_hours)``
      between neighbouring slots;
    - ``s(l) = 0.5 + lead_hours / horizon_hours``: errors grow with lead time, 0.5 at lead 0
      to 1.5 at the horizon;
    - ``sigma`` chosen so that the archive's mean absolute percentage error over all of its
      rows, ``mean(|forecast - actual| / actual)``, is ``mape_pct`` (realised, clipping
      included; slots with actual 0 are left out of the mean).

    Returns the archive and its rows ``(issued_s, time_s, value)``. Same seed, same archive.
    """
    if not (0 <= mape_pct < 100 and math.isfinite(mape_pct)):
        raise BadInputError(f"--mape must be in [0, 100), got {mape_pct:g}")
    if not (horizon_hours > 0 and issue_every_hours > 0 and correlation_hours > 0):
        raise BadInputError("horizon, issue spacing and correlation time must be positive")
    slot = trace.step_s
    grid = trace.resample(slot / 60.0)
    actual = grid.values_g_per_kwh
    n = actual.size
    lead = int(round(horizon_hours * 3600 / slot))
    every = int(round(issue_every_hours * 3600 / slot))
    if lead < 1 or every < 1:
        raise BadInputError("horizon and issue spacing must be at least one slot of the trace")
    issues = np.arange(0, n - 1, every)
    rng = np.random.default_rng(seed)
    phi = math.exp(-slot / 3600 / correlation_hours)
    u = _ar1(rng.standard_normal(n), phi)
    w = _ar1(rng.standard_normal((issues.size, lead)).T, phi).T  # along lead, per issue
    target = issues[:, None] + np.arange(lead)[None, :]
    inside = target < n
    tgt = np.minimum(target, n - 1)
    scale = 0.5 + (np.arange(lead) * slot / 3600.0) / horizon_hours
    e = (math.sqrt(shared) * u[tgt] + math.sqrt(1 - shared) * w) * scale[None, :]
    a = actual[tgt]
    ok = inside & (a > 0)

    def realised(sigma: float) -> float:
        f = np.maximum(0.0, a * (1 + sigma * e))
        return float(np.mean(np.abs(f - a)[ok] / a[ok])) * 100.0

    target_pct = float(mape_pct)
    lo, hi = 0.0, 1.0
    while realised(hi) < target_pct and hi < 1e3:
        hi *= 2
    for _ in range(60):  # bisection: the realised MAPE grows with sigma
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if realised(mid) < target_pct else (lo, mid)
    sigma = (lo + hi) / 2
    forecast = np.maximum(0.0, a * (1 + sigma * e))
    times = grid.times_s
    rows: list[tuple[int, int, float]] = []
    arch: list[tuple[int, np.ndarray, np.ndarray]] = []
    for r, i in enumerate(issues.tolist()):
        keep = inside[r]
        t = times[target[r][keep]]
        v = forecast[r][keep]
        arch.append((int(times[i]), t.astype(np.int64), v))
        rows += [(int(times[i]), int(tt), float(vv)) for tt, vv in zip(t, v, strict=True)]
    name = f"synthetic:{trace.name}:mape{mape_pct:g}:seed{seed}"
    return ForecastArchive(issues=arch, name=name), rows


def _ar1(noise: np.ndarray, phi: float) -> np.ndarray:
    """Unit-variance AR(1) along the first axis from standard normal ``noise``."""
    out = np.empty_like(noise)
    out[0] = noise[0]
    k = math.sqrt(1 - phi * phi)
    for i in range(1, noise.shape[0]):
        out[i] = phi * out[i - 1] + k * noise[i]
    return out


def write_archive(rows: list[tuple[int, int, float]], path: str | os.PathLike[str]) -> None:
    """Write rows ``(issued_s, time_s, value)`` as an archive CSV (written whole, then moved)."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        cache: dict[int, str] = {}

        def iso(t: int) -> str:
            s = cache.get(t)
            if s is None:
                s = cache[t] = _iso(t)
            return s

        out.writerows((iso(i), iso(t), f"{v:.3f}") for i, t, v in rows)
    tmp.replace(p)
