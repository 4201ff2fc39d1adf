"""Trials that run in green windows, on the wall clock or on a trace's simulated timeline.

:class:`GreenTrialPlugin` (a :class:`~nas.plugins.TrialPlugin`) decides before each trial,
from a forecast made with the trace's data before "now" only, when the trial should start,
waits until then (wall clock: a countdown on stderr; simulated clock: the time jumps), and
makes the trial's carbon intensity the trace's mean over the interval it ran.

On the simulated clock the trial runs for real *now*, but its interval is the simulated one:
:class:`SimulatedTimeIntensity` maps the objective's real ``[started, finished]`` onto
``[slot start, slot start + trial duration]`` where the duration is ``trial_hours`` (or the
real duration). The clock's position is not kept in memory but derived from the storage
(each ended trial's ``schedule_slot_start`` plus its duration), so a resumed or interrupted
study continues from where it was; the latest trial's slot start is also stored in the study
attr ``schedule_clock``.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO

import optuna

from nas.carbon import CarbonIntensity, IntensitySource
from nas.errors import ConfigError
from nas.plugins import TrialContext, TrialPlugin
from nas.scheduling._budget import STOP_REASON_ATTR, budget_usage, spent_reason
from nas.scheduling._scheduler import Clock, GreenWindowScheduler, SimulatedClock, WallClock
from nas.scheduling._trace import TraceIntensity, to_datetime
from nas.scheduling._trace_io import load_trace

if TYPE_CHECKING:  # pragma: no cover
    from nas.scheduling.plugin import ScheduleSection

__all__ = ["BudgetGuardPlugin", "GreenTrialPlugin", "SimulatedTimeIntensity", "parse_utc"]

log = logging.getLogger(__name__)

CLOCK_ATTR = "schedule_clock"  # study attr: slot start of the latest trial (simulated clock)


def parse_utc(text: str, what: str) -> datetime:
    """ISO 8601 time; without an offset it is UTC (as in the traces)."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(s)
    except ValueError:
        raise ConfigError(f"{what}: cannot parse time {text!r} (ISO 8601, UTC)") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


class SimulatedTimeIntensity(IntensitySource):
    """The trace's intensity over the current trial's *simulated* interval.

    ``intensity_over(start, end)`` ignores the real times but their difference: the trial
    ran from :attr:`sim_start` for ``trial_s`` (if given) or for ``end - start``.
    """

    def __init__(self, *, base: TraceIntensity, trial_s: float | None) -> None:
        self.base = base
        self.trial_s = trial_s
        self.sim_start: datetime | None = None

    @property
    def name(self) -> str:
        return f"{self.base.name} (simulated clock)"

    def intensity_over(self, start: datetime, end: datetime) -> CarbonIntensity:
        if self.sim_start is None:
            raise RuntimeError("no trial was started on the simulated clock")
        span_s = self.trial_s if self.trial_s is not None else (end - start).total_seconds()
        sim_end = self.sim_start + timedelta(seconds=max(0.0, span_s))
        ci = self.base.intensity_over(self.sim_start, sim_end)
        return CarbonIntensity(ci.intensity_g_per_kwh, self.name, ci.region)


def _stop(study: optuna.Study, attr: str, reason: str) -> None:
    if study.user_attrs.get(attr) is None:
        study.set_user_attr(attr, reason)
    log.warning("econas: %s; stopping the study", reason)
    study.stop()
    raise optuna.TrialPruned(reason)


class BudgetGuardPlugin(TrialPlugin):
    """Before a trial: if the budget is already spent (e.g. by another worker), stop."""

    name = "carbon-budget"

    def __init__(self, *, max_kgco2e: float) -> None:
        self.max_kgco2e = max_kgco2e

    def before_train(self, ctx: TrialContext) -> list[float] | None:
        study = ctx.trial.study
        used = budget_usage(study.get_trials(deepcopy=False)).used_kgco2e
        if used >= self.max_kgco2e:
            _stop(study, STOP_REASON_ATTR, spent_reason(used, self.max_kgco2e))
        return None


class GreenTrialPlugin(TrialPlugin):
    """Waits for the scheduler's green slot before each trial; see the module docstring."""

    name = "schedule"

    def __init__(
        self, *, objective: Any, section: ScheduleSection, stream: TextIO | None = None
    ) -> None:
        self.section = section
        self.stream = stream
        trace = load_trace(section.trace or "")
        self.trace = trace
        base = TraceIntensity(trace=trace, region=section.region or trace.region)
        self.simulated = section.clock == "simulated"
        self.trial_s = None if section.trial_hours is None else section.trial_hours * 3600.0
        self.window_s = section.window_hours * 3600.0
        if self.simulated:
            self.start = parse_utc(section.start or "", "schedule.start")
            self.intensity: IntensitySource = SimulatedTimeIntensity(
                base=base, trial_s=self.trial_s
            )
            clock: Clock = SimulatedClock(start=self.start)
            self._check_inside(self.start, "schedule.start")
        else:
            self.intensity = base
            clock = WallClock()
            self._check_inside(clock.now(), "with schedule.clock = 'wall', now")
        self.scheduler = GreenWindowScheduler(
            trace=trace,
            forecaster=section.forecast,
            policy=section.effective_policy,
            window_hours=section.window_hours,
            clock=clock,
        )
        objective.intensity = self.intensity  # the objective charges trials through this

    def _check_inside(self, when: datetime, what: str) -> None:
        lo, hi = to_datetime(self.trace.start_s), to_datetime(self.trace.end_s)
        if not lo + timedelta(days=1) <= when <= hi - timedelta(seconds=self.window_s):
            raise ConfigError(
                f"{what} ({when:%Y-%m-%d %H:%M} UTC) must lie in trace {self.trace.name} "
                f"({lo:%Y-%m-%d} .. {hi:%Y-%m-%d}) after its first day and a window "
                f"({self.section.window_hours:g} h) before its end"
            )

    # -- state from the storage ---------------------------------------------------------------
    def _ended(self, study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
        S = optuna.trial.TrialState
        return [
            t
            for t in study.get_trials(deepcopy=False, states=(S.COMPLETE, S.PRUNED, S.FAIL))
            if t.user_attrs.get("schedule_slot_start") and not t.user_attrs.get("reused")
        ]  # a reused trial (nas.efficiency) copied its source's attrs and ran no time

    def _sim_now(self, study: optuna.Study) -> datetime:
        """Where the simulated clock stands: the end of the latest trial (or the start)."""
        now = self.start
        for t in self._ended(study):
            begin = parse_utc(t.user_attrs["schedule_slot_start"], "schedule_slot_start")
            if self.trial_s is not None:
                span_s = self.trial_s
            elif t.datetime_start is not None and t.datetime_complete is not None:
                span_s = (t.datetime_complete - t.datetime_start).total_seconds()
            else:
                span_s = 0.0
            now = max(now, begin + timedelta(seconds=span_s))
        return now

    def _expected_s(self, study: optuna.Study) -> float:
        """How long the next trial should take: trial_hours, else the mean real duration."""
        if self.trial_s is not None:
            return self.trial_s
        done = [
            float(t.user_attrs["duration_s"])
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if "duration_s" in t.user_attrs and not t.user_attrs.get("reused")
        ]
        return min(max(sum(done) / len(done), 1.0), self.window_s) if done else 1.0

    # -- the hook -------------------------------------------------------------------------------
    def before_train(self, ctx: TrialContext) -> list[float] | None:
        study = ctx.trial.study
        sec = self.section
        if self.simulated:
            now = self._sim_now(study)
            self.scheduler.clock = SimulatedClock(start=now)
            if now + timedelta(seconds=self.window_s) > to_datetime(self.trace.end_s):
                _stop(
                    study,
                    "stop_reason",
                    f"simulated clock reached the end of trace {self.trace.name} "
                    f"({now:%Y-%m-%d %H:%M} UTC)",
                )
        else:
            now = self.scheduler.clock.now()
        expected_s = self._expected_s(study)
        plan_s = expected_s
        if sec.effective_policy == "pause-resume":  # green: the greenest share of the window
            plan_s = max(expected_s, sec.green_quantile * self.window_s)
        if self.simulated:
            wait_s = self.scheduler.seconds_until_green(now, plan_s)
            self.scheduler.clock.sleep(wait_s)
            if wait_s > 0:
                log.info("trial %d: simulated clock jumps %.1f h", ctx.trial.number, wait_s / 3600)
        else:
            wait_s = self._countdown_wait(ctx.trial.number, plan_s)
        slot_start = self.scheduler.clock.now()
        if isinstance(self.intensity, SimulatedTimeIntensity):
            self.intensity.sim_start = slot_start
            study.set_user_attr(CLOCK_ATTR, slot_start.isoformat())
        ctx.intensity = self.intensity
        ctx.attrs.update(
            schedule_policy=sec.effective_policy,
            schedule_forecast=sec.forecast,
            schedule_clock=sec.clock,
            schedule_trace=self.trace.name,
            schedule_wait_s=float(wait_s),
            schedule_ready_at=now.isoformat(),
            schedule_slot_start=slot_start.isoformat(),
            schedule_expected_s=float(expected_s),
        )
        return None

    def _countdown_wait(self, number: int, plan_s: float) -> float:
        stream = self.stream or sys.stderr
        tty = stream.isatty()

        def show(remaining_s: float) -> None:
            h, rest = divmod(int(round(remaining_s)), 3600)
            line = f"econas: trial {number} waits for a green slot: {h}:{rest // 60:02d}:{rest % 60:02d} left"
            print(("\r" + line) if tty else line, end="" if tty else "\n", file=stream, flush=True)

        waited = self.scheduler.wait_until_green(
            plan_s, on_wait=show, tick_s=self.section.countdown_s
        )
        if waited > 0 and tty:
            print(file=stream, flush=True)
        return waited
