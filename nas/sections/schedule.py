"""``[schedule]``: trials in green windows of a carbon-intensity trace, and a carbon budget.

::

    [schedule]
    trace = "gb_2020"            # shipped trace name or a CSV path (see load_trace), or "live":
                                 # plan on [carbon] source = "live:..." (the provider's forecast,
                                 # else `forecast` from its history); wall clock only
    region = "GB"                # label stored with the intensities (default: the trace's)
    policy = "pause-resume"      # run-now | flexible-start | pause-resume (default with a trace)
    forecast = "seasonal"        # seasonal | persistence | oracle (perfect foresight: upper bound)
    window_hours = 24            # deadline: each trial ends within this long of being ready
    green_quantile = 0.25        # pause-resume: run only in the greenest 25 % of the window
    clock = "simulated"          # wall (real waits, countdown on stderr) | simulated
    start = "2020-06-10T00:00Z"  # simulated clock: where the study starts on the trace
    trial_hours = 1.0            # simulated time a trial takes (default: its real duration)
    max_kgco2e = 0.01            # carbon budget of the whole search (also without a trace)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from nas.errors import ConfigError

STUDY_POLICIES = ("run-now", "flexible-start", "pause-resume")
FORECASTS = ("seasonal", "persistence", "oracle")
CLOCKS = ("wall", "simulated")


def parse_iso(text: str, what: str, error: type[Exception] = ConfigError) -> datetime:
    """ISO 8601 time as written (``Z`` read as +00:00; naive stays naive); ``error`` names
    ``what`` when it can't be parsed."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(s)
    except ValueError:
        raise error(f"{what}: cannot parse time {text!r} (ISO 8601, UTC)") from None


def parse_utc(text: str, what: str) -> datetime:
    """ISO 8601 time; without an offset it is UTC (as in the traces)."""
    when = parse_iso(text, what)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass(frozen=True)
class ScheduleSection:
    trace: str | None = None
    region: str | None = None
    policy: str | None = None  # default with a trace: pause-resume
    forecast: str = "seasonal"
    window_hours: float = 24.0
    green_quantile: float = 0.25
    clock: str = "wall"
    start: str | None = None
    trial_hours: float | None = None
    countdown_s: float = 60.0
    max_kgco2e: float | None = None

    @property
    def active(self) -> bool:
        """Trials wait for green windows (a trace is given)."""
        return self.trace is not None

    @property
    def effective_policy(self) -> str:
        return self.policy or "pause-resume"

    def check(self) -> None:
        if self.trace is None:
            for key in ("policy", "region", "start", "trial_hours"):
                if getattr(self, key) is not None:
                    raise ConfigError(f"schedule.{key} needs schedule.trace (e.g. 'gb_2020')")
            if self.clock != "wall":
                raise ConfigError("schedule.clock needs schedule.trace (e.g. 'gb_2020')")
        if self.trace is not None and not self.trace.strip():
            raise ConfigError("schedule.trace must be a shipped trace name or a CSV path")
        if self.trace == "live":
            if self.clock != "wall":
                raise ConfigError("schedule.trace = 'live' runs on the wall clock only")
            if self.forecast == "oracle":
                raise ConfigError("schedule.trace = 'live' cannot use the oracle forecast")
        if self.policy is not None and self.policy not in STUDY_POLICIES:
            raise ConfigError(
                f"schedule.policy {self.policy!r} is unknown; use one of {list(STUDY_POLICIES)}"
            )
        if self.forecast not in FORECASTS:
            raise ConfigError(
                f"schedule.forecast {self.forecast!r} is unknown; use one of {list(FORECASTS)}"
            )
        if self.clock not in CLOCKS:
            raise ConfigError(
                f"schedule.clock {self.clock!r} is unknown; use one of {list(CLOCKS)}"
            )
        if self.clock == "simulated" and self.start is None:
            raise ConfigError("schedule.clock = 'simulated' needs schedule.start (ISO time, UTC)")
        if self.clock == "wall" and self.start is not None:
            raise ConfigError("schedule.start is for clock = 'simulated' only")
        if self.start is not None:
            parse_utc(self.start, "schedule.start")
        _positive("window_hours", self.window_hours)
        _positive("countdown_s", self.countdown_s)
        if not 0.0 < self.green_quantile <= 1.0:
            raise ConfigError("schedule.green_quantile must be in (0, 1]")
        if self.trial_hours is not None:
            _positive("trial_hours", self.trial_hours)
            if self.trial_hours > self.window_hours:
                raise ConfigError(
                    f"schedule.window_hours ({self.window_hours:g}) is shorter than a trial "
                    f"(trial_hours {self.trial_hours:g})"
                )
        if self.max_kgco2e is not None:
            _positive("max_kgco2e", self.max_kgco2e)


def _positive(key: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"schedule.{key} must be a positive number, got {value!r}")
