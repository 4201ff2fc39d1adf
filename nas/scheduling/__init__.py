"""Carbon-aware scheduling: time-varying intensity, forecasts, policies, replay, live decisions.

- Traces (from :mod:`nas.carbon`, re-exported): :func:`load_trace` (CSV path, Electricity
  Maps export, or a shipped name such as ``"gb_2020"``), :class:`Trace` (exact integration,
  ``resample``, ``slice``) and :class:`TraceIntensity`, the intensity source over a trace.
- Forecasts (decide with the past only): :func:`create_forecaster` with ``persistence``,
  ``seasonal`` or ``oracle`` (perfect foresight, an upper bound for evaluation only).
- Policies: :func:`create_policy` with ``run-now``, ``flexible-start``, ``pause-resume``,
  ``spatial``; :meth:`Policy.plan` gives one job's ``(region, start, end)`` intervals.
- Replay: :func:`simulate` charges a stream of jobs the actual intensity and reports the
  saving against run-now (``econas schedule simulate``).
- Live decisions for a study: :class:`GreenWindowScheduler` with a :class:`SimulatedClock`
  (tests, replays) or :class:`WallClock`.
- Plans: :class:`LivePlanner` plans a job on a live source's forecast (the provider's,
  else a causal one) (``econas schedule plan``; ``schedule.trace = "live"``);
  :class:`TracePlanner` plans on a historical trace as of a stated time (``--at``).
- Forecast archives: :func:`load_archive` (issued forecasts replayed by :func:`simulate`),
  :func:`synthetic_archive` and :func:`write_archive` (``econas schedule archive``).
- Live sources live in :mod:`nas.carbon` (:class:`ElectricityMapsIntensity`,
  :class:`WattTimeIntensity`, :class:`UKCarbonIntensity`, :class:`CarbonSourceUnavailableError`)
  and are re-exported here.
"""

from __future__ import annotations

from nas.carbon import (  # re-exported
    SHIPPED_TRACES,
    CarbonSourceUnavailableError,
    ElectricityMapsIntensity,
    Trace,
    TraceIntensity,
    UKCarbonIntensity,
    WattTimeIntensity,
    load_trace,
)
from nas.scheduling._archive import ForecastArchive, load_archive, synthetic_archive, write_archive
from nas.scheduling._budget import (
    BudgetUsage,
    CarbonBudgetCallback,
    budget_callbacks,
    budget_usage,
    record_usage,
)
from nas.scheduling._forecast import FORECASTERS, Forecaster, create_forecaster
from nas.scheduling._live_plan import LivePlan, LivePlanner, PlanForecast, span
from nas.scheduling._policies import POLICIES, Policy, ScheduledInterval, create_policy
from nas.scheduling._scheduler import Clock, GreenWindowScheduler, SimulatedClock, WallClock
from nas.scheduling._simulate import MonthSummary, SimulationResult, simulate
from nas.scheduling._trace_plan import TracePlanner

__all__ = [
    "BudgetUsage",
    "CarbonBudgetCallback",
    "budget_callbacks",
    "budget_usage",
    "record_usage",
    "FORECASTERS",
    "POLICIES",
    "SHIPPED_TRACES",
    "CarbonSourceUnavailableError",
    "Clock",
    "ElectricityMapsIntensity",
    "ForecastArchive",
    "Forecaster",
    "GreenWindowScheduler",
    "LivePlan",
    "LivePlanner",
    "MonthSummary",
    "PlanForecast",
    "Policy",
    "ScheduledInterval",
    "SimulatedClock",
    "TracePlanner",
    "span",
    "SimulationResult",
    "Trace",
    "TraceIntensity",
    "UKCarbonIntensity",
    "WallClock",
    "WattTimeIntensity",
    "create_forecaster",
    "create_policy",
    "load_archive",
    "load_trace",
    "simulate",
    "synthetic_archive",
    "write_archive",
]
