"""Live decisions for a running study: when (and where) should the next piece of work run?

:class:`GreenWindowScheduler` answers, for work of an expected duration that becomes ready
``now`` and must finish within ``window_hours``: when to start (:meth:`next_run_slot`),
whether to start right away (:meth:`should_run_now`) and how long to wait
(:meth:`seconds_until_green`). It forecasts from the trace's past up to ``now`` only, exactly
as the simulator does, and reads time from a :class:`Clock`:

- :class:`WallClock` for real runs (the trace must then reach up to the present, e.g. one
  fetched from a live source);
- :class:`SimulatedClock` for tests and replays: ``sleep`` advances time instantly, so a study
  can walk through a 2020 trace in seconds.

Each piece of work (a trial) is a job with its own window, so no trial waits longer than
``window_hours`` minus its duration. :meth:`GreenWindowScheduler.wait_until_green` decides
again at every slot boundary while it waits, with the forecast made then and the deadline fixed
when the work became ready (a live scheduler sees new data each slot).
"""

from __future__ import annotations

import abc
import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

from nas.carbon import Trace, TraceIntensity, to_datetime, to_epoch_s
from nas.errors import BadInputError
from nas.scheduling._forecast import Forecaster, create_forecaster, forecast_at
from nas.scheduling._policies import Policy, ScheduledInterval, create_policy
from nas.scheduling._simulate import common_grid

__all__ = ["Clock", "GreenWindowScheduler", "SimulatedClock", "WallClock"]


class Clock(abc.ABC):
    """Where the scheduler reads the time and how it waits."""

    @abc.abstractmethod
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""

    @abc.abstractmethod
    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (>= 0)."""


class WallClock(Clock):
    """The real time; ``sleep`` blocks."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class SimulatedClock(Clock):
    """A clock on a trace's timeline: starts at ``start``; ``sleep`` advances it instantly.

    Work that "runs" for some time should call ``sleep(duration_s)`` (or :meth:`advance`) so
    the simulated time moves on as it would have.
    """

    def __init__(self, *, start: datetime) -> None:
        if start.tzinfo is None:
            raise BadInputError("SimulatedClock: start must be timezone-aware (UTC)")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"cannot sleep a negative time ({seconds} s)")
        self._now += timedelta(seconds=float(seconds))

    advance = sleep


class GreenWindowScheduler:
    """Chooses low-carbon run times (and regions, with ``spatial``) for work as it comes.

    ``trace`` is one trace, or several (one per region, the first being home) for
    ``policy="spatial"``. ``forecaster`` and ``policy`` take the CLI names. Decisions are made
    on a grid of ``slot_minutes`` (default: the coarsest step of the traces): work that would
    start inside the current slot is judged as if it had started at the slot's beginning.
    """

    def __init__(
        self,
        *,
        trace: Trace | Sequence[Trace],
        forecaster: str | Forecaster = "seasonal",
        policy: str | Policy = "flexible-start",
        window_hours: float,
        clock: Clock | None = None,
        slot_minutes: float | None = None,
    ) -> None:
        traces = [trace] if isinstance(trace, Trace) else list(trace)
        self.policy = create_policy(policy)
        self.forecaster = create_forecaster(forecaster)
        if not traces:
            raise BadInputError("GreenWindowScheduler needs a trace")
        if self.policy.multi_region != (len(traces) > 1):
            raise BadInputError(
                f"policy {self.policy.name} with {len(traces)} trace(s): spatial needs several "
                "(one per region), the other policies exactly one"
            )
        if not window_hours > 0:
            raise BadInputError(f"window must be positive, got {window_hours:g} h")
        self.window_s = float(window_hours) * 3600.0
        self.clock = clock if clock is not None else WallClock()
        self.slot_s = max(t.step_s for t in traces)
        if slot_minutes is not None:
            self.slot_s = int(round(slot_minutes * 60)) if math.isfinite(slot_minutes) else 0
        if self.slot_s <= 0 or self.window_s < self.slot_s:
            raise BadInputError("the window must be at least one slot long")
        self.traces = tuple(traces)
        self.regions = tuple(t.region for t in traces)
        self._times_s, self._values = common_grid(traces, self.slot_s)
        self.replans = 0

    # -- decisions ----------------------------------------------------------------------------
    def plan(
        self,
        now: datetime | None = None,
        expected_duration_s: float | None = None,
        *,
        deadline: datetime | None = None,
    ) -> list[ScheduledInterval]:
        """Where and when work of ``expected_duration_s`` ready at ``now`` should run.

        The first interval starts at ``now`` at the earliest. For ``pause-resume`` the
        intervals are whole slots (the first clipped to ``now``) trimmed to the duration.
        ``expected_duration_s`` defaults to one slot. ``deadline`` (default: now plus the
        window) is when the work must have ended; when too close for the work, it runs now.
        """
        t = to_epoch_s(now if now is not None else self.clock.now())
        duration_s = float(self.slot_s if expected_duration_s is None else expected_duration_s)
        if not duration_s > 0:
            raise BadInputError(f"expected duration must be positive, got {duration_s:g} s")
        if duration_s > self.window_s:
            raise BadInputError(
                f"window ({self.window_s / 3600:g} h) is shorter than the work "
                f"({duration_s / 3600:g} h)"
            )
        for trace in self.traces:
            trace.check_gaps(job_s=duration_s)
        i = int(np.floor((t - self._times_s[0]) / self.slot_s))
        n = self._values.shape[1]
        if i < 0 or i > n:
            raise BadInputError(
                f"{to_datetime(t):%Y-%m-%d %H:%M} UTC is outside the trace "
                f"({to_datetime(self._times_s[0]):%Y-%m-%d} .. "
                f"{to_datetime(self._times_s[0] + n * self.slot_s):%Y-%m-%d}); the scheduler "
                "needs data up to the decision time"
            )
        window = int(self.window_s // self.slot_s)
        if deadline is not None:
            slot_start_s = self._times_s[0] + i * self.slot_s
            left = int((to_epoch_s(deadline) - slot_start_s) // self.slot_s)
            window = max(min(window, left), int(np.ceil(duration_s / self.slot_s - 1e-9)))
        if self.forecaster.perfect_foresight:
            window = min(window, n - i)  # the oracle only knows what the trace holds
        job = int(np.ceil(duration_s / self.slot_s - 1e-9))
        if window < job:
            raise BadInputError("not enough trace left after now for the work (oracle)")
        forecast = np.stack(
            [
                forecast_at(self.forecaster, row, i, slot_s=self.slot_s, horizon_slots=window)
                for row in self._values
            ]
        )
        slot_start = float(self._times_s[0] + i * self.slot_s)
        schedule = self.policy.plan(
            arrival=to_datetime(slot_start),
            job_duration_s=job * self.slot_s,
            window_s=window * self.slot_s,
            forecast=forecast,
            slot_s=self.slot_s,
            regions=self.regions,
        )
        return _fit(schedule, now_s=t, duration_s=duration_s, contiguous=self.policy.contiguous)

    def next_run_slot(
        self, now: datetime | None = None, expected_duration_s: float | None = None
    ) -> tuple[datetime, datetime]:
        """Start and end of the next stretch of running (the plan's first interval)."""
        first = self.plan(now, expected_duration_s)[0]
        return first.start, first.end

    def next_region(
        self, now: datetime | None = None, expected_duration_s: float | None = None
    ) -> str:
        """Region of the plan's first interval (the home region unless ``spatial``)."""
        return self.plan(now, expected_duration_s)[0].region

    def seconds_until_green(
        self,
        now: datetime | None = None,
        expected_duration_s: float | None = None,
        *,
        deadline: datetime | None = None,
    ) -> float:
        """Seconds to wait from ``now`` until the next planned start (0: run now)."""
        now = now if now is not None else self.clock.now()
        start = self.plan(now, expected_duration_s, deadline=deadline)[0].start
        wait_s = (start - now).total_seconds()
        return wait_s if wait_s >= 1e-3 else 0.0  # float round trips of ``now`` are not waits

    def should_run_now(
        self, now: datetime | None = None, expected_duration_s: float | None = None
    ) -> bool:
        """True when the plan starts running at ``now``."""
        return self.seconds_until_green(now, expected_duration_s) == 0.0

    def wait_until_green(
        self,
        expected_duration_s: float | None = None,
        *,
        on_wait: Callable[[float], None] | None = None,
        tick_s: float = 60.0,
    ) -> float:
        """Sleep on the clock until the planned start; returns the seconds waited.

        The plan is made again at every slot boundary passed while waiting (same deadline:
        ready time plus the window), so a new forecast can bring the start forward or push it
        back. ``on_wait(remaining_s)`` is called before each tick of at most ``tick_s`` (a
        countdown); :attr:`replans` counts the decisions made.
        """
        ready = self.clock.now()
        ready_s = to_epoch_s(ready)
        deadline = ready + timedelta(seconds=self.window_s)
        self.replans = 1
        remaining = self.seconds_until_green(ready, expected_duration_s, deadline=deadline)
        waited = 0.0
        while remaining > 0:
            if on_wait is not None:
                on_wait(remaining)
            t = max(to_epoch_s(self.clock.now()), ready_s + waited)
            origin = float(self._times_s[0])
            to_boundary = origin + (np.floor((t - origin) / self.slot_s) + 1) * self.slot_s - t
            step = min(tick_s, remaining, float(to_boundary))
            self.clock.sleep(step)
            waited += step
            remaining -= step
            if remaining > 0 and step >= to_boundary - 1e-6:  # a new slot: decide again
                self.replans += 1
                now = to_datetime(max(to_epoch_s(self.clock.now()), ready_s + waited))
                remaining = self.seconds_until_green(now, expected_duration_s, deadline=deadline)
        return waited

    def intensity_source(self, region: str | None = None) -> TraceIntensity:
        """The :class:`TraceIntensity` of a region (home by default), for accounting."""
        name = region if region is not None else self.regions[0]
        if name not in self.regions:
            raise BadInputError(
                f"unknown region {name!r}; scheduler regions: {', '.join(self.regions)}"
            )
        return TraceIntensity(trace=self.traces[self.regions.index(name)], region=name)


def _fit(
    schedule: list[ScheduledInterval], *, now_s: float, duration_s: float, contiguous: bool
) -> list[ScheduledInterval]:
    """Clip the slot-aligned plan to start no earlier than now and to last ``duration_s``."""
    out: list[ScheduledInterval] = []
    left = duration_s
    for interval in schedule:
        start = max(to_epoch_s(interval.start), now_s)
        end = start + left if contiguous else min(to_epoch_s(interval.end), start + left)
        if end <= start:
            continue
        out.append(ScheduledInterval(interval.region, to_datetime(start), to_datetime(end)))
        left -= end - start
        if left <= 0:
            break
    return out
