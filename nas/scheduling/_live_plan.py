"""Planning with a live source: the provider's forecast when it has one, else a causal one.

:class:`LivePlanner` answers "work of this length, ready now, must end by this deadline: when
should it start?" for ``econas schedule plan`` (the user's own jobs) and for studies that wait
for green windows on a live source (``[schedule] trace = "live"``).

The forecast it plans on, in order of preference:

1. the provider's own forecast (UK National Grid ESO's 48 h, Electricity Maps', WattTime's),
   on the provider's slot grid from the slot containing ``now``;
2. a causal forecast (``seasonal`` by default, see ``_forecast.py``) from the provider's recent
   history (up to 14 days; Electricity Maps' free history is 24 h), when the provider
   publishes no forecast or its forecast can't be had;
3. nothing: when neither answers, the work starts now (no information, no shift), and the
   plan says why.

Beyond the forecast's horizon its last value is held, so a deadline past the horizon can't
pull work into the unknown: ties go to the earliest start. ``expected_g_per_kwh`` is the
forecast mean over the chosen interval; ``now_g_per_kwh`` the forecast mean had the work
started now; both are forecasts, not measurements.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from nas.carbon import (
    CarbonSourceUnavailableError,
    LiveIntensitySource,
    Trace,
    to_datetime,
    to_epoch_s,
)
from nas.errors import BadInputError
from nas.scheduling._forecast import Forecaster, create_forecaster, forecast_at
from nas.scheduling._policies import create_policy

__all__ = [
    "LivePlan",
    "LivePlanner",
    "PlanForecast",
    "causal_forecast",
    "iso_utc",
    "plan_on",
    "span",
]

log = logging.getLogger(__name__)
_HISTORY = timedelta(days=14)


@dataclass(frozen=True)
class PlanForecast:
    """A forecast on a regular slot grid starting at the slot that contains the decision."""

    trace: Trace
    label: str  # e.g. "provider carbonintensity.org.uk:GB" or "seasonal (causal, ...)"
    issued_at: datetime | None
    from_provider: bool
    data: str = ""  # which data it rests on: rows, span, where from


@dataclass(frozen=True)
class LivePlan:
    """A plan: when to start, what the forecast expects, and what it rests on.

    With no forecast at all (``fallback`` set, see :meth:`LivePlanner.plan`) the work starts
    at once and the expected figures are NaN: nothing is known. ``actual_*`` are the real
    mean intensities of the chosen interval and of starting at once, known only when planning
    on a historical trace (:class:`~nas.scheduling.TracePlanner`)."""

    start: datetime
    end: datetime
    expected_g_per_kwh: float
    now_g_per_kwh: float
    saving_pct: float
    source: str
    forecast: str
    forecast_issued_at: datetime | None
    as_of: datetime | None = None  # the decision time ("now", or --at on a trace)
    data: str = ""  # the data the forecast rests on
    actual_g_per_kwh: float | None = None
    actual_now_g_per_kwh: float | None = None
    fallback: str | None = None  # why it starts now without any forecast

    @property
    def has_forecast(self) -> bool:
        return math.isfinite(self.expected_g_per_kwh)

    def to_dict(self) -> dict[str, Any]:
        """The ``schedule plan --json`` keys (times ISO 8601 UTC; unknown figures null)."""
        known = self.has_forecast
        actual, actual_now = self.actual_g_per_kwh, self.actual_now_g_per_kwh
        return {
            "start": _iso(self.start),
            "end": _iso(self.end),
            "expected_g_per_kwh": self.expected_g_per_kwh if known else None,
            "now_g_per_kwh": self.now_g_per_kwh if known else None,
            "saving_pct": self.saving_pct if known else None,
            "source": self.source,
            "forecast": self.forecast,
            "forecast_issued_at": None
            if self.forecast_issued_at is None
            else _iso(self.forecast_issued_at),
            "as_of": None if self.as_of is None else _iso(self.as_of),
            "data": self.data,
            "actual_g_per_kwh": actual,
            "actual_now_g_per_kwh": actual_now,
            "actual_saving_pct": _saving(actual, actual_now),
            "fallback": self.fallback,
        }


def _saving(expected: float | None, now: float | None) -> float | None:
    if expected is None or now is None or not now > 0:
        return None
    return 100.0 * (1.0 - expected / now)


def iso_utc(when: datetime) -> str:
    """``2020-06-10T00:00:00Z``: a plan's times, ISO 8601 UTC."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_iso = iso_utc


class LivePlanner:
    """Plans work on a live source's forecast; see the module docstring."""

    def __init__(
        self,
        *,
        source: LiveIntensitySource,
        policy: str = "flexible-start",
        causal: str = "seasonal",
    ) -> None:
        self.source = source
        self.policy = create_policy(policy)
        if self.policy.multi_region:
            raise BadInputError("LivePlanner plans one region; spatial picks among planners")
        self.causal = create_forecaster(causal)
        if self.causal.perfect_foresight:
            raise BadInputError("a live plan cannot use the oracle forecast (it needs the future)")

    # -- the forecast -------------------------------------------------------------------------
    def forecast(self, now: datetime) -> PlanForecast:
        """The provider's forecast from ``now``, else the causal one (raises if neither)."""
        why = "the provider publishes no forecast"
        if self.source.has_forecast:
            try:
                pts = self.source.forecast(now)
                trace = _from_slot(pts.trace(self.source.name), now, pts.step_s)
                data = (
                    f"{len(trace)} forecast slots of {pts.step_s // 60} min from "
                    f"{self.source.name}, {span(trace.start_s, trace.end_s)}"
                )
                return PlanForecast(
                    trace, f"provider {self.source.name}", pts.issued_at, True, data
                )
            except (CarbonSourceUnavailableError, BadInputError) as exc:
                why = str(exc)
        try:
            history = self.source.fetch_trace(now - _HISTORY, now)
        except (CarbonSourceUnavailableError, BadInputError) as exc:  # one line: both reasons
            if not self.source.has_forecast:
                raise
            raise CarbonSourceUnavailableError(f"forecast: {why}; history: {exc}") from None
        if self.source.has_forecast:  # said once the causal forecast is at hand
            log.warning("%s; planning on a causal forecast instead", why)
        return causal_forecast(history, now, self.causal, source=self.source.name, why=f"; {why}")

    # -- the plan -----------------------------------------------------------------------------
    def plan(
        self,
        now: datetime,
        *,
        duration_s: float,
        deadline: datetime,
        forecast: PlanForecast | None = None,
        fallback: str | None = "now",
    ) -> LivePlan:
        """Best start for work of ``duration_s`` ready at ``now`` that must end by ``deadline``.

        With no forecast and no history, ``fallback="now"`` (what a study does: no trial is
        lost to an outage) starts the work at once and says why; ``fallback=None`` raises
        :class:`~nas.errors.BadInputError` in one line instead (``econas schedule plan``)."""
        t = to_epoch_s(now)
        check_window(t, to_epoch_s(deadline), duration_s)
        try:
            fc = forecast if forecast is not None else self.forecast(now)
        except (CarbonSourceUnavailableError, BadInputError) as exc:
            if fallback != "now":
                raise BadInputError(
                    f"no carbon data from {self.source.name}: {exc}; nothing to plan on "
                    "(--fallback now starts the job at once)"
                ) from None
            end = to_datetime(t + duration_s)
            return LivePlan(now, end, float("nan"), float("nan"), 0.0, self.source.name,
                            f"none: {exc}; starting now", None, as_of=now,
                            data="none", fallback=f"now: {exc}")  # fmt: skip
        return plan_on(
            fc, now, duration_s=duration_s, deadline=deadline, policy=self.policy,
            source=self.source.name, region=self.source.region,
        )  # fmt: skip


def check_window(t: float, d: float, duration_s: float) -> None:
    """The job has a length and fits its window (epoch seconds ``t`` .. deadline ``d``)."""
    if not duration_s > 0:
        raise BadInputError(f"the job must have a positive length, got {duration_s:g} s")
    if d - t < duration_s - 1e-6:
        raise BadInputError(
            f"window ({(d - t) / 3600:g} h) is shorter than the job ({duration_s / 3600:g} h)"
        )


def span(start_s: float, end_s: float) -> str:
    """``2020-06-09T00:00Z .. 2020-06-10T00:00Z``."""
    return f"{_iso(to_datetime(start_s))} .. {_iso(to_datetime(end_s))}"


def causal_forecast(
    history: Trace, now: datetime, causal: Forecaster, *, source: str, why: str = ""
) -> PlanForecast:
    """A causal forecast from ``history`` (values of slots that ended before ``now``'s), on
    the history's slot grid from the slot containing ``now``, three days ahead."""
    step = history.step_s
    slot0 = int(to_epoch_s(now) // step * step)
    grid = history.resample(step / 60.0)
    values = grid.values_g_per_kwh[grid.times_s < slot0]
    hist_end = int(grid.times_s[0]) + values.size * step
    lead = max(0, (slot0 - hist_end) // step)
    horizon = lead + 3 * 86_400 // step
    predicted = forecast_at(causal, values, values.size, slot_s=step, horizon_slots=horizon)[lead:]
    times = slot0 + step * np.arange(predicted.size, dtype=np.int64)
    trace = Trace(times_s=times, values_g_per_kwh=predicted, name=source)
    label = f"{causal.name} (causal, from {source} history{why})"
    used = (
        f"{values.size} history slots of {step // 60} min from {source}, "
        f"{span(grid.times_s[0], hist_end)}"
        if values.size
        else f"no history from {source} before {_iso(now)}"
    )
    return PlanForecast(trace, label, None, False, used)


def plan_on(
    fc: PlanForecast,
    now: datetime,
    *,
    duration_s: float,
    deadline: datetime,
    policy: Any,
    source: str,
    region: str | None,
) -> LivePlan:
    """The plan on forecast ``fc``: the policy's start within the window, and the forecast's
    mean over it and over starting at once."""
    t, d = to_epoch_s(now), to_epoch_s(deadline)
    check_window(t, d, duration_s)
    step = fc.trace.step_s
    slot0 = fc.trace.start_s
    held = Trace(
        times_s=fc.trace.times_s,
        values_g_per_kwh=fc.trace.values_g_per_kwh,
        end_s=max(fc.trace.end_s, int(np.ceil(d)) + step),
        name=fc.trace.name,
    )
    window = int((d - slot0) // step)
    job_slots = int(np.ceil(duration_s / step - 1e-9))
    values = held.resample(step / 60.0).values_g_per_kwh[:window]
    start_s = t
    if window >= job_slots and values.size >= job_slots:
        schedule = policy.plan(
            arrival=to_datetime(slot0),
            job_duration_s=duration_s,
            window_s=window * step,
            forecast=values[None, :],
            slot_s=step,
            regions=(region,),
        )
        start_s = max(t, to_epoch_s(schedule[0].start))
        start_s = min(start_s, d - duration_s)
    end_s = start_s + duration_s
    expected = float(held.mean_over(np.asarray(start_s), np.asarray(end_s)))
    now_g = float(held.mean_over(np.asarray(t), np.asarray(t + duration_s)))
    saving = 100.0 * (1.0 - expected / now_g) if now_g > 0 else 0.0
    return LivePlan(
        start=to_datetime(start_s),
        end=to_datetime(end_s),
        expected_g_per_kwh=expected,
        now_g_per_kwh=now_g,
        saving_pct=saving,
        source=source,
        forecast=fc.label,
        forecast_issued_at=fc.issued_at,
        as_of=now,
        data=fc.data,
    )


def _from_slot(trace: Trace, now: datetime, step: int) -> Trace:
    """The forecast on its grid from the slot containing ``now`` (its first value held back
    to that slot when the forecast starts later)."""
    slot0 = int(to_epoch_s(now) // step * step)
    times = np.asarray(trace.times_s, dtype=np.int64)
    values = np.asarray(trace.values_g_per_kwh, dtype=np.float64)
    keep = times + step > slot0
    times, values = times[keep], values[keep]
    if times.size == 0:
        raise CarbonSourceUnavailableError(f"{trace.name}: empty forecast")
    times = np.maximum(times, slot0)
    if times[0] > slot0:
        times = np.insert(times, 0, slot0)
        values = np.insert(values, 0, values[0])
    t, idx = np.unique(times, return_index=True)
    return Trace(times_s=t, values_g_per_kwh=values[idx], end_s=trace.end_s, name=trace.name)
