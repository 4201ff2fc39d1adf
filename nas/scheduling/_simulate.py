"""Replay a stream of jobs over real traces and measure what a policy saves against run-now.

One job arrives every ``arrival_every_hours`` from the first slot of the trace(s); arrivals
whose deadline window would run past the end are skipped. Each job is scheduled by the policy
from the forecast available at its arrival and then charged the ACTUAL intensity of the slots
it ran in. Everything is vectorised over jobs (a year of hourly arrivals takes well under a
second per policy, forecasting included).

Several traces are several regions (``spatial``); they are resampled onto one slot grid over
the time all of them cover, and the first trace is the home region run-now is charged in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nas.carbon import Trace
from nas.errors import BadInputError
from nas.scheduling._forecast import (
    Forecaster,
    create_forecaster,
    forecast_at,
    forecast_matrix,
)
from nas.scheduling._policies import Policy, RunNow, create_policy

if TYPE_CHECKING:  # pragma: no cover
    from nas.scheduling._archive import ForecastArchive

__all__ = ["MonthSummary", "SimulationResult", "simulate"]


@dataclass(frozen=True)
class MonthSummary:
    """Jobs that arrived in one calendar month (UTC), e.g. ``month="2020-03"``."""

    month: str
    jobs: int
    baseline_g_per_kwh: float
    policy_g_per_kwh: float
    saving_pct: float


@dataclass(frozen=True)
class SimulationResult:
    """Mean intensity the jobs incurred (gCO2e per kWh drawn) for run-now and the policy.

    ``forecast`` is ``"none"`` for run-now, which uses none.
    ``*_g_per_job`` assume the job draws ``job_kw`` for ``job_hours``. ``saving_pct`` is
    ``100 x (1 - policy / baseline)``. With ``forecast == "oracle"`` the policy had perfect
    foresight: an upper bound, not an achievable result.
    """

    policy: str
    forecast: str
    traces: tuple[str, ...]
    regions: tuple[str, ...]
    job_hours: float
    window_hours: float
    arrival_every_hours: float
    slot_minutes: float
    job_kw: float
    jobs: int
    first_arrival: str
    last_arrival: str
    baseline_g_per_kwh: float
    policy_g_per_kwh: float
    saving_pct: float
    baseline_g_per_job: float
    policy_g_per_job: float
    by_month: tuple[MonthSummary, ...]
    baseline_per_job_g_per_kwh: np.ndarray = field(repr=False, compare=False)
    policy_per_job_g_per_kwh: np.ndarray = field(repr=False, compare=False)
    replan: bool = False

    @property
    def forecast_is_upper_bound(self) -> bool:
        return self.forecast == "oracle"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary (per-job arrays left out)."""
        out = asdict(self)
        out.pop("baseline_per_job_g_per_kwh")
        out.pop("policy_per_job_g_per_kwh")
        out["traces"] = list(self.traces)
        out["regions"] = list(self.regions)
        out["by_month"] = [asdict(m) for m in self.by_month]
        out["forecast_is_upper_bound"] = self.forecast_is_upper_bound
        return out


def _saving_pct(baseline: float, policy: float) -> float:
    return 100.0 * (1.0 - policy / baseline) if baseline > 0 else 0.0


def _slots(hours: float, slot_s: int, what: str) -> int:
    n = hours * 3600.0 / slot_s
    if hours <= 0 or not math.isfinite(hours):
        raise BadInputError(f"{what} must be a positive number of hours, got {hours:g}")
    if abs(n - round(n)) > 1e-6:
        raise BadInputError(
            f"{what} of {hours:g} h is not a whole number of {slot_s / 60:g}-min slots "
            "(choose another slot length)"
        )
    return int(round(n))


def common_grid(traces: Sequence[Trace], slot_s: int) -> tuple[np.ndarray, np.ndarray]:
    """Resample all traces to ``slot_s`` slots over the time they all cover.

    Returns ``times_s`` (N,) slot starts and ``values`` (regions, N) in gCO2e/kWh.
    """
    grids = [t.resample(slot_s / 60.0) for t in traces]
    start = max(g.start_s for g in grids)
    end = min(g.end_s for g in grids)
    if end - start < slot_s:
        names = ", ".join(t.name for t in traces)
        raise BadInputError(f"traces {names} do not overlap in time")
    times = np.arange(start, end, slot_s, dtype=np.int64)
    values = np.stack([g.values_g_per_kwh[np.searchsorted(g.times_s, times)] for g in grids])
    return times, values


def _by_month(
    arrivals_s: np.ndarray, baseline: np.ndarray, policy: np.ndarray
) -> tuple[MonthSummary, ...]:
    months = arrivals_s.astype("datetime64[s]").astype("datetime64[M]")
    labels, inverse = np.unique(months, return_inverse=True)
    count = np.bincount(inverse)
    base = np.bincount(inverse, weights=baseline) / count
    pol = np.bincount(inverse, weights=policy) / count
    return tuple(
        MonthSummary(
            month=str(label),
            jobs=int(n),
            baseline_g_per_kwh=float(b),
            policy_g_per_kwh=float(p),
            saving_pct=_saving_pct(float(b), float(p)),
        )
        for label, n, b, p in zip(labels, count, base, pol, strict=True)
    )


def simulate(
    *,
    traces: Sequence[Trace],
    policy: str | Policy,
    forecast: str | Forecaster | ForecastArchive = "seasonal",
    job_hours: float,
    window_hours: float,
    arrival_every_hours: float = 1.0,
    slot_minutes: float | None = None,
    job_kw: float = 1.0,
    replan: bool = False,
) -> SimulationResult:
    """Replay one job every ``arrival_every_hours`` over the trace(s); see the module docstring.

    ``slot_minutes`` defaults to the coarsest usual step of the traces; job, window and
    arrival spacing must be whole numbers of slots. With ``replan`` (``flexible-start`` and
    ``pause-resume``) each job decides again at every slot with the forecast made then, as a
    live scheduler would (:func:`replan_masks`), instead of once at its arrival.
    ``forecast`` may be a :class:`~nas.scheduling._archive.ForecastArchive` (issued forecasts,
    home region only): each decision sees the latest issue at or before it, nothing later.
    """
    from nas.scheduling._archive import ForecastArchive

    if not traces:
        raise BadInputError("give at least one trace")
    pol = create_policy(policy)
    archive = forecast if isinstance(forecast, ForecastArchive) else None
    if archive is not None and len(traces) > 1:
        raise BadInputError("a forecast archive covers one region: not with spatial")
    fc = create_forecaster("seasonal" if archive is not None else forecast)
    if pol.multi_region and len(traces) < 2:
        raise BadInputError(f"policy {pol.name} needs at least two traces (one per region)")
    if not pol.multi_region and len(traces) > 1:
        raise BadInputError(f"policy {pol.name} uses one trace; several only with spatial")
    if not job_kw > 0:
        raise BadInputError(f"job power must be positive, got {job_kw:g} kW")
    if window_hours < job_hours:
        raise BadInputError(
            f"window ({window_hours:g} h) is shorter than the job ({job_hours:g} h)"
        )
    slot_s = max(t.step_s for t in traces)
    if slot_minutes is not None:
        slot_s = int(round(slot_minutes * 60)) if math.isfinite(slot_minutes) else 0
    if slot_s <= 0:
        raise BadInputError(f"slot must be positive, got {slot_minutes} min")
    job = _slots(job_hours, slot_s, "job")
    window = _slots(window_hours, slot_s, "window")
    every = _slots(arrival_every_hours, slot_s, "arrival spacing")
    for trace in traces:
        trace.check_gaps(job_s=job_hours * 3600.0)

    times, values = common_grid(traces, slot_s)
    idx = np.arange(0, values.shape[1] - window + 1, every)
    if idx.size == 0:
        raise BadInputError(f"the trace is shorter than one {window_hours:g}-h window")
    actual = sliding_window_view(values, window, axis=-1)[:, idx, :].transpose(1, 0, 2)

    baseline = actual[:, 0, :job].mean(axis=1)  # run-now in the home region
    if replan and pol.name not in REPLAN_POLICIES:
        raise BadInputError(f"replan applies to {', '.join(REPLAN_POLICIES)}, not {pol.name}")
    if isinstance(pol, RunNow):
        realised = baseline.copy()
    elif replan:
        mask = replan_masks(
            pol.name,
            fc,
            values[0],
            idx,
            slot_s=slot_s,
            window=window,
            job=job,
            archive=archive,
            times_s=times,
        )
        realised = np.where(mask, actual[:, 0, :], 0.0).sum(axis=1) / job
    else:
        if archive is not None:
            cube = archive.matrix(times, idx, window, slot_s)[:, None, :]
        else:
            cube = np.stack(
                [
                    forecast_matrix(fc, row, idx, slot_s=slot_s, horizon_slots=window)
                    for row in values
                ],
                axis=1,
            )  # (jobs, regions, window)
        mask = pol.choose(cube, job_slots=job)
        realised = np.where(mask, actual, 0.0).sum(axis=(1, 2)) / job

    arrivals = times[idx]
    base_mean, pol_mean = float(baseline.mean()), float(realised.mean())
    energy_kwh = job_kw * job_hours
    return SimulationResult(
        policy=pol.name,
        forecast="none"
        if isinstance(pol, RunNow)
        else (archive.name if archive is not None else fc.name),
        traces=tuple(t.name for t in traces),
        regions=tuple(t.region for t in traces),
        job_hours=float(job_hours),
        window_hours=float(window_hours),
        arrival_every_hours=float(arrival_every_hours),
        slot_minutes=slot_s / 60.0,
        job_kw=float(job_kw),
        jobs=int(idx.size),
        first_arrival=str(arrivals[0].astype("datetime64[s]")) + "Z",
        last_arrival=str(arrivals[-1].astype("datetime64[s]")) + "Z",
        baseline_g_per_kwh=base_mean,
        policy_g_per_kwh=pol_mean,
        saving_pct=_saving_pct(base_mean, pol_mean),
        baseline_g_per_job=base_mean * energy_kwh,
        policy_g_per_job=pol_mean * energy_kwh,
        by_month=_by_month(arrivals, baseline, realised),
        baseline_per_job_g_per_kwh=baseline,
        policy_per_job_g_per_kwh=realised,
        replan=bool(replan) and not isinstance(pol, RunNow),
    )


REPLAN_POLICIES = ("flexible-start", "pause-resume")


def replan_masks(
    policy: str,
    forecaster: Forecaster,
    values: np.ndarray,
    idx: np.ndarray,
    *,
    slot_s: int,
    window: int,
    job: int,
    archive: ForecastArchive | None = None,
    times_s: np.ndarray | None = None,
) -> np.ndarray:
    """Slots each job runs in (n_jobs, window) when it decides again at every slot.

    At slot ``s`` after its arrival a job sees the forecast made at that slot for the rest of
    its window. ``pause-resume`` runs the slot when fewer slots ahead are forecast strictly
    greener than it than work is left (or when the work left fills the slots left);
    ``flexible-start`` starts when no later start in the window is forecast greener (or at
    the latest start). With perfect foresight both give the one-shot optimum.
    """
    rows = int(idx[-1]) + window  # decisions happen at idx + s, s < window
    forecasts = np.full((rows, window), np.inf)
    for i in range(rows):
        if archive is not None and times_s is not None:  # the latest issue at or before slot i
            forecasts[i] = archive.row(times_s, i, window, slot_s)
            continue
        h = min(window, values.size - i) if forecaster.perfect_foresight else window
        forecasts[i, :h] = forecast_at(forecaster, values, i, slot_s=slot_s, horizon_slots=h)
    n = idx.size
    ran = np.zeros((n, window), dtype=bool)
    if policy == "pause-resume":
        left = np.full(n, job)
        for s in range(window):
            f = forecasts[idx + s, : window - s]
            greener = (f[:, 1:] < f[:, :1]).sum(axis=1)
            run = (left > 0) & ((greener < left) | (left >= window - s))
            ran[:, s] = run
            left -= run
        return ran
    start = np.full(n, -1)
    for s in range(window - job + 1):
        sums = _run_sums(forecasts[idx + s, : window - s], job)
        go = (start < 0) & ((sums[:, 0] <= sums.min(axis=1)) | (s == window - job))
        start[go] = s
    ran[np.arange(n)[:, None], start[:, None] + np.arange(job)[None, :]] = True
    return ran


def _run_sums(forecast: np.ndarray, job: int) -> np.ndarray:
    return sliding_window_view(forecast, job, axis=-1).sum(axis=-1)
