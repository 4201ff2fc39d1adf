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
from nas.scheduling._forecast import create_forecaster, forecast_at
from nas.scheduling._policies import create_policy

__all__ = ["LivePlan", "LivePlanner", "PlanForecast"]

log = logging.getLogger(__name__)
_HISTORY = timedelta(days=14)


@dataclass(frozen=True)
class PlanForecast:
    """A forecast on a regular slot grid starting at the slot that contains the decision."""

    trace: Trace
    label: str  # e.g. "provider carbonintensity.org.uk:GB" or "seasonal (causal, ...)"
    issued_at: datetime | None
    from_provider: bool


@dataclass(frozen=True)
class LivePlan:
    start: datetime
    end: datetime
    expected_g_per_kwh: float
    now_g_per_kwh: float
    saving_pct: float
    source: str
    forecast: str
    forecast_issued_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """The ``schedule plan --json`` keys (times ISO 8601 UTC)."""
        return {
            "start": _iso(self.start),
            "end": _iso(self.end),
            "expected_g_per_kwh": self.expected_g_per_kwh,
            "now_g_per_kwh": self.now_g_per_kwh,
            "saving_pct": self.saving_pct,
            "source": self.source,
            "forecast": self.forecast,
            "forecast_issued_at": None
            if self.forecast_issued_at is None
            else _iso(self.forecast_issued_at),
        }


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
                trace = pts.trace(self.source.name)
                return PlanForecast(
                    _from_slot(trace, now, pts.step_s),
                    f"provider {self.source.name}",
                    pts.issued_at,
                    True,
                )
            except (CarbonSourceUnavailableError, BadInputError) as exc:
                why = str(exc)
                log.warning("econas: %s; planning on a causal forecast instead", why)
        history = self.source.fetch_trace(now - _HISTORY, now)
        step = history.step_s
        slot0 = int(to_epoch_s(now) // step * step)
        grid = history.resample(step / 60.0)
        values = grid.values_g_per_kwh[grid.times_s < slot0]
        hist_end = int(grid.times_s[0]) + values.size * step
        lead = max(0, (slot0 - hist_end) // step)
        horizon = lead + 3 * 86_400 // step
        predicted = forecast_at(
            self.causal, values, values.size, slot_s=step, horizon_slots=horizon
        )[lead:]
        times = slot0 + step * np.arange(predicted.size, dtype=np.int64)
        trace = Trace(times_s=times, values_g_per_kwh=predicted, name=self.source.name)
        label = f"{self.causal.name} (causal, from {self.source.name} history; {why})"
        return PlanForecast(trace, label, None, False)

    # -- the plan -----------------------------------------------------------------------------
    def plan(
        self,
        now: datetime,
        *,
        duration_s: float,
        deadline: datetime,
        forecast: PlanForecast | None = None,
    ) -> LivePlan:
        """Best start for work of ``duration_s`` ready at ``now`` that must end by ``deadline``."""
        t = to_epoch_s(now)
        d = to_epoch_s(deadline)
        if not duration_s > 0:
            raise BadInputError(f"the job must have a positive length, got {duration_s:g} s")
        if d - t < duration_s - 1e-6:
            raise BadInputError(
                f"window ({(d - t) / 3600:g} h) is shorter than the job ({duration_s / 3600:g} h)"
            )
        try:
            fc = forecast if forecast is not None else self.forecast(now)
        except (CarbonSourceUnavailableError, BadInputError) as exc:
            end = to_datetime(t + duration_s)
            return LivePlan(now, end, float("nan"), float("nan"), 0.0, self.source.name,
                            f"none: {exc}; starting now", None)  # fmt: skip
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
            schedule = self.policy.plan(
                arrival=to_datetime(slot0),
                job_duration_s=duration_s,
                window_s=window * step,
                forecast=values[None, :],
                slot_s=step,
                regions=(self.source.region,),
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
            source=self.source.name,
            forecast=fc.label,
            forecast_issued_at=fc.issued_at,
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
