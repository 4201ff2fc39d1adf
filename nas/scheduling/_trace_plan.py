"""Planning on a historical trace "as of" a stated time (``econas schedule plan --at``).

A trace (a shipped one such as ``gb_2020`` or a CSV) has no "now": the plan is made as of
``at``, a time inside it, exactly as ``schedule simulate`` decides for a job arriving then:
the forecast is causal (``seasonal`` or ``persistence``, from the trace's values of the
slots that ended before ``at``'s slot), or ``oracle`` (the trace's actual values: perfect
foresight, an upper bound). Because the trace also holds what really happened, the plan
states the actual mean intensity of the chosen interval and of starting at ``at``, where the
trace covers them.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from nas.carbon import Trace, to_datetime, to_epoch_s
from nas.errors import BadInputError
from nas.scheduling._forecast import create_forecaster, forecast_at
from nas.scheduling._live_plan import (
    LivePlan,
    PlanForecast,
    check_window,
    plan_on,
    span,
)
from nas.scheduling._live_plan import (
    iso_utc as _iso,
)
from nas.scheduling._policies import create_policy

__all__ = ["TracePlanner"]


class TracePlanner:
    """Plans work on ``trace`` as of a time inside it; see the module docstring."""

    def __init__(
        self, *, trace: Trace, policy: str = "flexible-start", forecast: str = "seasonal"
    ) -> None:
        self.trace = trace
        self.grid = trace.resample(trace.step_s / 60.0)  # regular slots, exact means
        self.policy = create_policy(policy)
        if self.policy.multi_region:
            raise BadInputError("a trace plan is for one region; spatial needs several traces")
        self.forecaster = create_forecaster(forecast)

    def _slot(self, at: datetime) -> int:
        """Index of the grid slot containing ``at`` (which must be inside the trace)."""
        t = to_epoch_s(at)
        g = self.grid
        if not g.start_s <= t < g.end_s:
            raise BadInputError(
                f"--at {_iso(at)} is outside the trace {self.trace.name} "
                f"({span(g.start_s, g.end_s)}); plan as of a time inside it"
            )
        return int((t - g.start_s) // g.step_s)

    def forecast(self, at: datetime, *, deadline: datetime) -> PlanForecast:
        """The forecast made at ``at`` for the slots up to ``deadline``."""
        g, step = self.grid, self.grid.step_s
        index = self._slot(at)
        slot0 = g.start_s + index * step
        horizon = int(np.ceil((to_epoch_s(deadline) - slot0) / step)) + 1
        fc = self.forecaster
        if fc.perfect_foresight and index + horizon > len(g):
            raise BadInputError(
                f"the oracle forecast needs the trace to cover the window: {self.trace.name} "
                f"ends {_iso(to_datetime(g.end_s))}, before the window ends"
            )
        predicted = forecast_at(fc, g.values_g_per_kwh, index, slot_s=step, horizon_slots=horizon)
        times = slot0 + step * np.arange(horizon, dtype=np.int64)
        trace = Trace(times_s=times, values_g_per_kwh=predicted, name=self.trace.name)
        minutes = step // 60
        if fc.perfect_foresight:
            label = f"{fc.name} (perfect foresight: the trace's actual values; an upper bound)"
            data = (
                f"the actual values of {self.trace.name}, {len(trace)} slots of {minutes} min, "
                f"{span(slot0, slot0 + horizon * step)}"
            )
        else:
            used = min(index, fc.history_slots(step))
            label = f"{fc.name} (causal, from {self.trace.name} before {_iso(at)})"
            data = (
                f"{used} history slots of {minutes} min of {self.trace.name}, "
                f"{span(slot0 - used * step, slot0)}"
                if used
                else f"no history: {_iso(at)} is in the first slot of {self.trace.name}"
            )
        return PlanForecast(trace, label, None, False, data)

    def plan(self, at: datetime, *, duration_s: float, deadline: datetime) -> LivePlan:
        """Best start for work of ``duration_s`` ready at ``at``, ending by ``deadline``, with
        the actual mean intensities where the trace covers them."""
        t, d = to_epoch_s(at), to_epoch_s(deadline)
        check_window(t, d, duration_s)
        fc = self.forecast(at, deadline=deadline)
        plan = plan_on(
            fc,
            at,
            duration_s=duration_s,
            deadline=deadline,
            policy=self.policy,
            source=self.trace.name,
            region=self.trace.region,
        )
        actual = actual_now = None
        s, e = to_epoch_s(plan.start), to_epoch_s(plan.end)
        if e <= self.trace.end_s and t + duration_s <= self.trace.end_s:
            actual = float(self.trace.mean_over(np.asarray(s), np.asarray(e)))
            actual_now = float(self.trace.mean_over(np.asarray(t), np.asarray(t + duration_s)))
        return LivePlan(
            start=plan.start,
            end=plan.end,
            expected_g_per_kwh=plan.expected_g_per_kwh,
            now_g_per_kwh=plan.now_g_per_kwh,
            saving_pct=plan.saving_pct,
            source=plan.source,
            forecast=plan.forecast,
            forecast_issued_at=None,
            as_of=at,
            data=plan.data,
            actual_g_per_kwh=actual,
            actual_now_g_per_kwh=actual_now,
        )
