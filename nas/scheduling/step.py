"""Carbon-aware steps of every trial (``[schedule]``): the carbon budget and green windows.

:class:`BudgetGuard` refuses a trial before anything is spent once the search has emitted
its budget (``max_kgco2e``, shared by every worker of the study through the storage).

:class:`GreenWindow` decides before each trial, from a forecast made with the trace's data
before "now" only, when the trial should start, waits until then (wall clock: a countdown on
stderr; simulated clock: the time jumps), and makes the trial's carbon intensity the trace's
mean over the interval it ran. The wait is idle: it is not metered and not part of the
trial's wall time.

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
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO

import optuna

from nas.carbon import CarbonIntensity, IntensitySource, TraceIntensity, load_trace, to_datetime
from nas.errors import BadInputError, ConfigError
from nas.record import Schedule, StudyAttrs, TrialAttrs, TrialRecord
from nas.scheduling._budget import budget_usage, spent_reason
from nas.scheduling._scheduler import Clock, GreenWindowScheduler, SimulatedClock, WallClock
from nas.sections.schedule import parse_utc
from nas.trial import RunningTrial, Step

if TYPE_CHECKING:  # pragma: no cover
    from nas.context import RunContext

__all__ = ["BudgetGuard", "GreenWindow", "RegionPicker", "SimulatedTimeIntensity", "parse_utc"]

log = logging.getLogger(__name__)


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
    log.warning("%s; stopping the study", reason)
    study.stop()
    raise optuna.TrialPruned(reason)


class BudgetGuard(Step):
    """Before a trial spends anything: if the budget is spent (e.g. by another worker), stop."""

    name = "carbon-budget"

    def __init__(self, *, max_kgco2e: float) -> None:
        self.max_kgco2e = max_kgco2e

    def admit(self, t: RunningTrial) -> None:
        study = t.trial.study
        used = budget_usage(study.get_trials(deepcopy=False)).used_kgco2e
        if used >= self.max_kgco2e:
            _stop(study, StudyAttrs.budget_stop_reason, spent_reason(used, self.max_kgco2e))


class GreenWindow(Step):
    """Waits for the scheduler's green slot before each trial; see the module docstring."""

    name = "schedule"

    def __init__(self, context: RunContext, *, stream: TextIO | None = None) -> None:
        self.section = section = context.config.schedule
        self.stream = stream
        self.live = section.trace == "live"
        self.window_s = section.window_hours * 3600.0
        self.trial_s = None if section.trial_hours is None else section.trial_hours * 3600.0
        if self.live:  # the [carbon] live source: its forecast, else a causal one
            from nas.carbon import FallbackIntensity
            from nas.scheduling._live_plan import LivePlanner

            if not isinstance(context.intensity, FallbackIntensity):
                raise ConfigError("schedule.trace = 'live' needs carbon.source = 'live:...'")
            self.simulated = False
            self.intensity = context.intensity
            self.planner = LivePlanner(
                source=context.intensity.live,
                policy=section.effective_policy,
                causal=section.forecast,
            )
            self.scheduler_clock: Clock = WallClock()
            return
        trace = load_trace(section.trace or "")
        self.trace = trace
        base = TraceIntensity(trace=trace, region=section.region or trace.region)
        self.simulated = section.clock == "simulated"
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
            if (rec := TrialRecord.of(t)).get(Schedule.slot_start) and not rec.reused
        ]  # a reused trial (nas.efficiency) ran no training time

    def _sim_now(self, study: optuna.Study) -> datetime:
        """Where the simulated clock stands: the end of the latest trial (or the start)."""
        now = self.start
        for t in self._ended(study):
            begin = parse_utc(t.user_attrs[Schedule.slot_start], Schedule.slot_start)
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
            duration
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if not (rec := TrialRecord.of(t)).reused
            if (duration := rec.num(TrialAttrs.duration_s)) is not None
        ]
        return min(max(sum(done) / len(done), 1.0), self.window_s) if done else 1.0

    # -- the hook -------------------------------------------------------------------------------
    def wait(self, t: RunningTrial) -> IntensitySource:
        if self.live:
            return self._wait_live(t)
        study = t.trial.study
        sec = self.section
        if self.simulated:
            now = self._sim_now(study)
            self.scheduler.clock = SimulatedClock(start=now)
            if now + timedelta(seconds=self.window_s) > to_datetime(self.trace.end_s):
                _stop(
                    study,
                    StudyAttrs.stop_reason,
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
                log.info("trial %d: simulated clock jumps %.1f h", t.number, wait_s / 3600)
        else:
            wait_s = self._countdown_wait(t.number, plan_s)
        slot_start = self.scheduler.clock.now()
        if isinstance(self.intensity, SimulatedTimeIntensity):
            self.intensity.sim_start = slot_start
            study.set_user_attr(StudyAttrs.schedule_clock, slot_start.isoformat())
        t.record(
            {
                Schedule.policy: sec.effective_policy,
                Schedule.forecast: sec.forecast,
                Schedule.clock: sec.clock,
                Schedule.trace: self.trace.name,
                Schedule.wait_s: float(wait_s),
                Schedule.ready_at: now.isoformat(),
                Schedule.slot_start: slot_start.isoformat(),
                Schedule.expected_s: float(expected_s),
            }
        )
        return self.intensity

    def _wait_live(self, t: RunningTrial) -> IntensitySource:
        """Plan on the live forecast, again at every slot while waiting; count down with the
        expected saving against starting now."""
        sec, clock = self.section, self.scheduler_clock
        expected_s = self._expected_s(t.trial.study)
        ready = clock.now()
        deadline = ready + timedelta(seconds=self.window_s)

        def decide() -> tuple[Any, float, int]:
            now = clock.now()
            fc = None
            try:
                fc = self.planner.forecast(now)
            except BadInputError as exc:  # no forecast, no history: the plan starts now
                log.warning("%s; trial %d starts now", exc, t.number)
            plan = self.planner.plan(now, duration_s=expected_s, deadline=deadline, forecast=fc)
            wait_s = 0.0 if fc is None else max(0.0, (plan.start - now).total_seconds())
            return plan, (wait_s if wait_s >= 1e-3 else 0.0), (fc.trace.step_s if fc else 0)

        plan, wait_s, slot_s = decide()
        first, replans = plan, 1
        while wait_s > 0:
            self._show(t.number, wait_s, plan)
            to_slot = slot_s - (clock.now().timestamp() % slot_s)
            step = min(sec.countdown_s, wait_s, to_slot)
            clock.sleep(step)
            wait_s -= step
            if wait_s > 0 and step >= to_slot - 1e-6:  # a new slot: decide again
                plan, wait_s, slot_s = decide()
                replans += 1
        waited = (clock.now() - ready).total_seconds()
        if waited > 0 and (self.stream or sys.stderr).isatty():
            print(file=self.stream or sys.stderr, flush=True)
        attrs = {
            Schedule.policy: sec.effective_policy,
            Schedule.forecast: plan.forecast[:300],
            Schedule.clock: "wall",
            Schedule.trace: f"live:{self.planner.source.name}",
            Schedule.wait_s: float(waited),
            Schedule.ready_at: ready.isoformat(),
            Schedule.slot_start: clock.now().isoformat(),
            Schedule.expected_s: float(expected_s),
            Schedule.replans: replans,
        }
        if plan.expected_g_per_kwh == plan.expected_g_per_kwh:  # not NaN: a forecast existed
            attrs[Schedule.expected_g_per_kwh] = plan.expected_g_per_kwh
            attrs[Schedule.now_g_per_kwh] = first.now_g_per_kwh
        if plan.forecast_issued_at is not None:
            attrs[Schedule.forecast_issued_at] = plan.forecast_issued_at.isoformat()
        t.record(attrs)
        return self.intensity

    def _show(self, number: int, remaining_s: float, plan: object) -> None:
        stream = self.stream or sys.stderr
        tty = stream.isatty()
        h, rest = divmod(int(round(remaining_s)), 3600)
        line = (
            f"econas: trial {number} waits for a green slot: {h}:{rest // 60:02d}:"
            f"{rest % 60:02d} left; expected {plan.expected_g_per_kwh:.0f} gCO2e/kWh against "  # type: ignore[attr-defined]
            f"{plan.now_g_per_kwh:.0f} now ({plan.saving_pct:.0f}% less, forecast)"  # type: ignore[attr-defined]
        )
        print(("\r" + line) if tty else line, end="" if tty else "\n", file=stream, flush=True)

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


class RegionPicker(Step):
    """Spatial shifting for a worker started with ``--regions A,B,...``: before each trial,
    the region whose forecast mean over the trial's expected length (from now) is lowest;
    the trial is charged that region's intensity and the region is recorded. A region whose
    provider cannot answer is skipped (its reason logged); with none answering, the first."""

    name = "spatial"

    def __init__(self, context: RunContext) -> None:
        from nas.carbon import FallbackIntensity, create_live_source, region_specs
        from nas.scheduling._live_plan import LivePlanner

        c = context.config.carbon
        cache = context.config.run_dir / "carbon-cache"
        self.regions: list[tuple[str, FallbackIntensity, LivePlanner]] = []
        for spec in region_specs(c.source or "", c.regions):
            live = create_live_source(
                spec, base_url=c.base_url, timeout_s=c.timeout_s, retries=c.retries, cache_dir=cache
            )
            fb = FallbackIntensity(live=live, country=spec.fallback_country)
            self.regions.append((spec.text, fb, LivePlanner(source=live)))
        self.clock: Clock = WallClock()

    def wait(self, t: RunningTrial) -> IntensitySource:
        now = self.clock.now()
        done = [
            d
            for f in t.trial.study.get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)
            )
            if (d := TrialRecord.of(f).num(TrialAttrs.duration_s)) is not None
        ]
        span = max(sum(done) / len(done), 1.0) if done else 60.0
        means: dict[str, float] = {}
        for text, _, planner in self.regions:
            try:
                fc = planner.forecast(now).trace
                end = max(fc.end_s, int(now.timestamp() + span) + 1)
                held = type(fc)(times_s=fc.times_s, values_g_per_kwh=fc.values_g_per_kwh, end_s=end)
                a = max(now.timestamp(), held.start_s)
                means[text] = float(held.mean_over(a, a + span))
            except BadInputError as exc:
                log.warning("spatial: %s skipped (%s)", text, exc)
        chosen = min(means, key=means.__getitem__) if means else self.regions[0][0]
        t.record(
            {
                Schedule.policy: "spatial",
                Schedule.region: chosen,
                Schedule.expected_s: float(span),
                Schedule.ready_at: now.isoformat(),
                Schedule.forecast: "; ".join(f"{k} {v:.1f}" for k, v in means.items())[:300]
                or "none (no region answered)",
            }
        )
        if chosen in means:
            t.record({Schedule.expected_g_per_kwh: means[chosen]})
        return next(fb for text, fb, _ in self.regions if text == chosen)
