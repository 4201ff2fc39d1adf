"""Experiment tracking: a study's trials in the tracker ML users already have (MLflow).

    tracker = open_tracker(config)      # None without [tracking]; bad input if unreachable
    callbacks.append(TrackingCallback(tracker))
    ...
    finish_tracking(tracker, study)     # the report and the front's carbon labels

Tracking runs after a trial is stored (an Optuna callback), outside its phases: a failure
to track is logged and never fails, nor loses, a trial. Weights & Biases is not offered:
see the README.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import optuna

if TYPE_CHECKING:  # pragma: no cover
    from nas.config import Config
    from nas.tracking._mlflow import MlflowTracker

log = logging.getLogger(__name__)

__all__ = ["TrackingCallback", "finish_tracking", "open_tracker"]


def open_tracker(config: Config) -> MlflowTracker | None:
    """The tracker ``config`` asks for, checked reachable (None without ``[tracking]``)."""
    sec = config.tracking
    if not sec.active:
        return None
    from nas.tracking._mlflow import MlflowTracker

    assert sec.mlflow is not None
    tracker = MlflowTracker(
        uri=sec.mlflow,
        experiment=sec.experiment or config.study.name,
        storage_url=config.storage_url,
    )
    tracker.check()
    return tracker


class TrackingCallback:
    """Optuna callback: each finished trial becomes a run; failures are logged, not raised."""

    def __init__(self, tracker: MlflowTracker) -> None:
        self.tracker = tracker
        self.failures = 0

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        try:
            self.tracker.log_trial(study, trial)
        except Exception as exc:  # noqa: BLE001 - tracking must never fail a trial
            self.failures += 1
            log.warning("MLflow: trial %d not tracked: %s", trial.number, _line(exc))

    def backfill(self, study: optuna.Study) -> None:
        """Trials finished before this run (a resumed study), when none holds them yet."""
        try:
            n = self.tracker.backfill(study)
        except Exception as exc:  # noqa: BLE001
            self.failures += 1
            log.warning("MLflow: earlier trials not tracked: %s", _line(exc))
            return
        if n:
            print(f"econas: MLflow: logged {n} earlier trials", file=sys.stderr)


def finish_tracking(tracker: MlflowTracker, study: optuna.Study) -> None:
    """Attach the report and the front trials' carbon labels; failures are logged."""
    try:
        tracker.log_study(study)
    except Exception as exc:  # noqa: BLE001 - the study's results are already stored
        log.warning("MLflow: report and carbon labels not attached: %s", _line(exc))


def _line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
