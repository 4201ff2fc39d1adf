"""The grid the table's jobs are charged on, and what scheduling does there.

Every row's carbon is charged on a real trace (``[ablate] trace``), averaged over every
start hour the trace holds, so no lucky day decides a row: :func:`nas.scheduling.simulate`
replays a job arriving every hour and gives its mean intensity when it runs at once
(``run-now``) and when econas's carbon-aware policy (``[ablate] schedule_policy`` on the
causal ``schedule_forecast``, the forecast econas ships) shifts it within ``window_hours``.
The oracle (perfect foresight) is replayed beside it, as an upper bound.

Scopes of a row:

* **training** (the job; the paper's scope): the row's training energy, as one job of its
  measured duration rounded up to whole slots of the trace; shifted for scheduled rows
  (``scheduling``, ``paper_combined``, ``combined``), run at once for the others.
* **inference**: ``inference_predictions`` served around the clock (one-slot jobs at every
  hour, run at once), except the share ``[lifecycle] schedulable_inference_share`` declared
  batch-schedulable, shifted by the same policy for scheduled rows.
* **lifecycle**: training plus inference, each with its own intensity.

The saving of a scheduled job is exactly ``econas schedule simulate``'s for the same trace,
job length, window, policy and forecast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nas.errors import BadInputError

if TYPE_CHECKING:  # pragma: no cover
    from nas.config import Config
    from nas.scheduling import SimulationResult, Trace


@dataclass(frozen=True)
class ScopeIntensity:
    """The intensity one scope of a row is charged, and where it comes from."""

    intensity_g_per_kwh: float
    source: str
    scheduling: dict[str, Any] | None = None  # a shifted job: the simulation's figures


@dataclass
class Grid:
    """The trace and the policy of one table (module docstring); simulations are cached."""

    trace: Trace
    policy: str
    forecast: str
    window_hours: float
    schedulable_inference_share: float
    _cache: dict[tuple[float, str, str, float], SimulationResult] = field(default_factory=dict)

    @classmethod
    def of(cls, config: Config) -> Grid:
        """The config's grid, checked before any work: the trace loads and one slot of it
        can be scheduled within the window (bad input: exit 2)."""
        from nas.scheduling import load_trace

        s = config.ablate
        try:
            trace = load_trace(s.trace)
        except BadInputError as exc:
            raise BadInputError(f"ablate.trace: {exc}") from None
        grid = cls(
            trace=trace,
            policy=s.schedule_policy,
            forecast=s.schedule_forecast,
            window_hours=s.window_hours,
            schedulable_inference_share=config.lifecycle.schedulable_inference_share,
        )
        grid.simulate(grid.slot_hours, grid.policy, grid.forecast)  # window and trace usable
        return grid

    @property
    def slot_hours(self) -> float:
        return self.trace.step_s / 3600.0

    def job_hours(self, duration_s: float) -> float:
        """A job of ``duration_s`` as whole slots of the trace (at least one)."""
        slots = max(1, math.ceil(duration_s / self.trace.step_s - 1e-9))
        return slots * self.slot_hours

    def simulate(
        self, job_hours: float, policy: str, forecast: str, *, window_hours: float | None = None
    ) -> SimulationResult:
        """:func:`nas.scheduling.simulate` of one job every hour on the trace (cached)."""
        from nas.scheduling import simulate

        window = self.window_hours if window_hours is None else window_hours
        key = (job_hours, policy, forecast, window)
        if key not in self._cache:
            try:
                self._cache[key] = simulate(
                    traces=[self.trace],
                    policy=policy,
                    forecast=forecast,
                    job_hours=job_hours,
                    window_hours=window,
                )
            except BadInputError as exc:
                raise BadInputError(f"ablate: scheduling on {self.trace.name}: {exc}") from None
        return self._cache[key]

    def _run_now(self, job_hours: float) -> SimulationResult:
        """Jobs run at once (the window only bounds which arrivals fit in the trace)."""
        window = max(job_hours, self.window_hours)
        return self.simulate(job_hours, "run-now", self.forecast, window_hours=window)

    def training(self, duration_s: float, *, scheduled: bool) -> ScopeIntensity:
        """The training job's intensity: run at once, or shifted by the policy."""
        hours = self.job_hours(duration_s)
        every = f"mean over {{jobs}} hourly starts, {hours:g}-h job"
        if not scheduled or hours > self.window_hours:
            r = self._run_now(hours)
            why = (
                f" (longer than the {self.window_hours:g}-h window: not shifted)"
                if scheduled
                else ""
            )
            return ScopeIntensity(
                r.baseline_g_per_kwh,
                f"{self.trace.name}: run at once, {every.format(jobs=r.jobs)}{why}",
                None,
            )
        r = self.simulate(hours, self.policy, self.forecast)
        oracle = self.simulate(hours, self.policy, "oracle")
        info = {
            "trace": self.trace.name,
            "policy": self.policy,
            "forecast": self.forecast,
            "window_hours": self.window_hours,
            "job_hours": hours,
            "jobs": r.jobs,
            "first_arrival": r.first_arrival,
            "last_arrival": r.last_arrival,
            "run_now_g_per_kwh": r.baseline_g_per_kwh,
            "policy_g_per_kwh": r.policy_g_per_kwh,
            "saving_pct": r.saving_pct,
            "oracle_g_per_kwh": oracle.policy_g_per_kwh,
            "oracle_saving_pct": oracle.saving_pct,
        }
        return ScopeIntensity(
            r.policy_g_per_kwh,
            f"{self.trace.name}: {self.policy} on the {self.forecast} forecast within "
            f"{self.window_hours:g} h, {every.format(jobs=r.jobs)}",
            info,
        )

    def inference(self, *, scheduled: bool) -> ScopeIntensity:
        """Serving's intensity: around the clock; the schedulable share shifted when the row
        is scheduled."""
        slot = self.slot_hours
        now = self._run_now(slot)
        share = self.schedulable_inference_share if scheduled else 0.0
        if share == 0.0:
            return ScopeIntensity(
                now.baseline_g_per_kwh,
                f"{self.trace.name}: served around the clock (mean over {now.jobs} hourly starts)",
            )
        shifted = self.simulate(slot, self.policy, self.forecast).policy_g_per_kwh
        g = (1.0 - share) * now.baseline_g_per_kwh + share * shifted
        return ScopeIntensity(
            g,
            f"{self.trace.name}: {1 - share:.0%} served around the clock, {share:.0%} as batch "
            f"jobs shifted by {self.policy} ({self.forecast}) within {self.window_hours:g} h",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "trace": self.trace.name,
            "region": self.trace.region,
            "slot_minutes": self.trace.step_s / 60.0,
            "policy": self.policy,
            "forecast": self.forecast,
            "window_hours": self.window_hours,
            "schedulable_inference_share": self.schedulable_inference_share,
            "averaged_over": "every hourly start the trace holds (nas.scheduling.simulate)",
        }
