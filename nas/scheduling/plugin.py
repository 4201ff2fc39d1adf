"""Study plugin (``nas.plugins``): trials in green windows, and a carbon budget.

``[schedule]`` section::

    [schedule]
    trace = "gb_2020"            # shipped trace name or a CSV path (see load_trace)
    region = "GB"                # label stored with the intensities (default: the trace's)
    policy = "pause-resume"      # run-now | flexible-start | pause-resume (default with a trace)
    forecast = "seasonal"        # seasonal | persistence | oracle (perfect foresight: upper bound)
    window_hours = 24            # deadline: each trial ends within this long of being ready
    green_quantile = 0.25        # pause-resume: run only in the greenest 25 % of the window
    clock = "simulated"          # wall (real waits, countdown on stderr) | simulated
    start = "2020-06-10T00:00Z"  # simulated clock: where the study starts on the trace
    trial_hours = 1.0            # simulated time a trial takes (default: its real duration)
    max_kgco2e = 0.01            # carbon budget of the whole search (also without a trace)

``flexible-start`` starts each trial where the forecast mean over its expected duration is
lowest within the window; ``pause-resume`` treats the study as interruptible work that runs
only in green slots (the ``green_quantile`` share of the window's slots with the lowest
forecast, at least as many as a trial needs): a trial ready in a non-green slot waits for
the next green one. Trials record ``schedule_*`` attrs and the intensity they incurred
(``intensity_g_per_kwh``, ``intensity_source``). Flags: ``--schedule POLICY``,
``--max-kgco2e KG``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

from nas.config import Config
from nas.errors import BadInputError, ConfigError
from nas.plugins import TrialPlugin
from nas.scheduling._budget import (
    BREAKDOWN_ATTR,
    BUDGET_ATTR,
    STOP_REASON_ATTR,
    USED_ATTR,
    CarbonBudgetCallback,
    record_usage,
    spent_reason,
)

__all__ = [
    "BREAKDOWN_ATTR",
    "BUDGET_ATTR",
    "SECTIONS",
    "STOP_REASON_ATTR",
    "USED_ATTR",
    "ScheduleSection",
    "add_run_args",
    "apply_run_args",
    "make_trial_plugins",
    "study_callbacks",
]

STUDY_POLICIES = ("run-now", "flexible-start", "pause-resume")
_FORECASTS = ("seasonal", "persistence", "oracle")
_CLOCKS = ("wall", "simulated")


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
        if self.policy is not None and self.policy not in STUDY_POLICIES:
            raise ConfigError(
                f"schedule.policy {self.policy!r} is unknown; use one of {list(STUDY_POLICIES)}"
            )
        if self.forecast not in _FORECASTS:
            raise ConfigError(
                f"schedule.forecast {self.forecast!r} is unknown; use one of {list(_FORECASTS)}"
            )
        if self.clock not in _CLOCKS:
            raise ConfigError(
                f"schedule.clock {self.clock!r} is unknown; use one of {list(_CLOCKS)}"
            )
        if self.clock == "simulated" and self.start is None:
            raise ConfigError("schedule.clock = 'simulated' needs schedule.start (ISO time, UTC)")
        if self.clock == "wall" and self.start is not None:
            raise ConfigError("schedule.start is for clock = 'simulated' only")
        if self.start is not None:
            from nas.scheduling._green_trials import parse_utc

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


SECTIONS: dict[str, type] = {"schedule": ScheduleSection}


def make_trial_plugins(objective: Any) -> list[TrialPlugin]:
    from nas.scheduling._green_trials import BudgetGuardPlugin, GreenTrialPlugin

    section: ScheduleSection = objective.config.schedule
    plugins: list[TrialPlugin] = []
    if section.max_kgco2e is not None:  # first: don't wait for a slot the budget can't pay
        plugins.append(BudgetGuardPlugin(max_kgco2e=section.max_kgco2e))
    if section.active:
        plugins.append(GreenTrialPlugin(objective=objective, section=section))
    return plugins


def study_callbacks(config: Config, study: optuna.Study) -> list[Callable[..., None]]:
    """The carbon budget's callback; refuses to resume a study whose budget is spent."""
    cap = config.schedule.max_kgco2e
    if cap is None:
        return []
    usage = record_usage(study, cap)
    used, per = usage.used_kgco2e, usage.per_trial_kgco2e
    if used >= cap or (per is not None and used + per > cap):
        raise BadInputError(
            f"study {study.study_name!r}: {spent_reason(used, cap)}, less than a trial left; "
            "nothing to run"
        )
    return [CarbonBudgetCallback(max_kgco2e=cap)]


def add_run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schedule",
        choices=STUDY_POLICIES,
        metavar="POLICY",
        help="run trials in green windows of [schedule] trace: run-now | flexible-start | "
        "pause-resume",
    )
    parser.add_argument(
        "--max-kgco2e",
        type=float,
        metavar="KG",
        help="carbon budget: stop the study once the search has emitted this much",
    )


def apply_run_args(config: Config, args: Any) -> Config:
    changes: dict[str, Any] = {}
    policy = getattr(args, "schedule", None)
    if policy is not None:
        if config.schedule.trace is None:
            raise ConfigError("--schedule needs a trace: set [schedule] trace = 'gb_2020' or a CSV")
        changes["policy"] = policy
    cap = getattr(args, "max_kgco2e", None)
    if cap is not None:
        changes["max_kgco2e"] = cap
    return config.replace("schedule", **changes) if changes else config
