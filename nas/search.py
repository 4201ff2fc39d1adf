"""Run a search: build its run context (data, device, meter, carbon source), then optimise with progress."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

import optuna

from nas.config import Config
from nas.errors import EconasError, TrialFailure
from nas.record import StudyAttrs, TrialAttrs, TrialRecord
from nas.signals import Terminated, interrupt_in
from nas.storage_faults import fault_of, is_fault
from nas.study import StudyCounts, fail_stale, open_study, redact_url
from nas.text import human_duration, one_line

if TYPE_CHECKING:  # pragma: no cover
    from nas.carbon import IntensitySource
    from nas.context import RunContext

log = logging.getLogger(__name__)


@dataclass
class SearchResult:
    study: optuna.Study
    new_trials: int
    wall_s: float


class ProgressBar:
    """One line per finished trial on stderr, with a bar of the study's progress."""

    def __init__(self, *, target: int, done: int, stream: TextIO | None = None) -> None:
        self.target = target
        self.done = done
        self.stream = stream or sys.stderr
        self.spent_s = 0.0  # this process's trials: wall time and search energy so far
        self.spent_kwh = 0.0
        self.seen = 0
        self.kinds: set[str] = set()

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state != optuna.trial.TrialState.FAIL:
            self.done += 1
        width = 20
        filled = int(width * min(self.done, self.target) / max(self.target, 1))
        bar = "#" * filled + "." * (width - filled)
        rec = TrialRecord.of(trial)
        kind = rec.energy_kind or "?"
        if trial.state == optuna.trial.TrialState.COMPLETE:
            acc, kg = (_nan(v) for v in (rec.accuracy, rec.kgco2e))
            chance = " (chance)" if rec.at_or_below_chance else ""
            what = f"val acc {acc:.3f}{chance}  model {kg:.3e} kgCO2e"
            if rec.reused_from is not None:
                what += f"  reused trial {rec.reused_from[1]}"
        else:
            reason = rec.get(TrialAttrs.fail_reason) or rec.get(TrialAttrs.stop_reason)
            what = f"{trial.state.name.lower()}: {reason or trial.state.name.lower()}"
        # what the trial cost the search (every phase): these lines sum to the search's cost
        what += f"  search {rec.search_kgco2e:.3e} kgCO2e {rec.search_energy_kwh:.2e} kWh ({kind})"
        arch = rec.get(TrialAttrs.arch, "?")
        secs = trial.duration.total_seconds() if trial.duration else 0.0
        self.seen += 1
        self.spent_s += secs
        self.spent_kwh += rec.search_energy_kwh
        self.kinds.add(kind)
        # the architecture last: a CNN's string is long, and would push the columns after it
        line = f"[{bar}] {self.done}/{self.target} trial {trial.number:>3}  {what}  {secs:.1f} s"
        print(one_line(line + self.to_go() + f"  arch {arch}"), file=self.stream, flush=True)

    def to_go(self) -> str:
        """What the trials left are projected to take, at this process's mean so far (a
        projection, shown so that a target of 10**12 trials makes its cost visible)."""
        left = self.target - self.done
        if left <= 0 or self.seen == 0:
            return ""
        kind = " (estimated)" if "estimated" in self.kinds else ""
        return (
            f"  | {left} to go: ~{human_duration(left * self.spent_s / self.seen)}, "
            f"~{left * self.spent_kwh / self.seen:.2e} kWh projected{kind} |"
        )


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value


def _started(study: optuna.Study) -> int:
    """Trials that have run or are running (enqueued ones still waiting are not)."""
    waiting = optuna.trial.TrialState.WAITING
    return sum(t.state != waiting for t in study.get_trials(deepcopy=False))


def _stopped(study: optuna.Study) -> bool:
    """A step stopped the study on purpose (e.g. the carbon budget)."""
    attrs = study.user_attrs
    return bool(attrs.get(StudyAttrs.stop_reason) or attrs.get(StudyAttrs.budget_stop_reason))


class _ExpectedFailureFilter(logging.Filter):
    """Optuna logs every failed trial with a traceback; for failures econas expects and records
    (invalid architecture, NaN loss, out of memory) one line is enough: the progress bar and
    the trial's ``fail_reason`` attr say why."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, TrialFailure | KeyboardInterrupt) or (exc is not None and is_fault(exc)):
            return False
        return not record.getMessage().endswith("failed with value None.")


def _quiet_expected_failures() -> None:
    logger = logging.getLogger("optuna.study._optimize")
    if not any(isinstance(f, _ExpectedFailureFilter) for f in logger.filters):
        logger.addFilter(_ExpectedFailureFilter())


class _Interruptible:
    """Wraps the objective: a trial stopped by Ctrl-C or SIGTERM is recorded as
    ``fail_reason=interrupted`` (Optuna then tells it FAIL and re-raises), and the last trial
    asked is remembered so that :func:`run_search` can fail it if the interrupt came outside
    the objective. A storage or disk fault inside a trial (a full disk, a read-only database:
    :func:`nas.storage_faults.is_fault`) is kept in ``fault``: the trial fails as any other,
    and :class:`_StopOnFault` stops the study, since every later trial would fail the same."""

    def __init__(self, objective: Callable[[optuna.Trial], Any]) -> None:
        self.objective = objective
        self.trial_id: int | None = None
        self.fault: Exception | None = None

    def __call__(self, trial: optuna.Trial) -> Any:
        self.trial_id = trial._trial_id
        try:
            return self.objective(trial)
        except KeyboardInterrupt as exc:
            trial.set_user_attr(TrialAttrs.fail_reason, "interrupted")
            trial.set_user_attr(TrialAttrs.fail_message, f"stopped by {_how(exc)}")
            raise
        except Exception as exc:
            if is_fault(exc):
                self.fault = exc
            raise


class _StopOnFault:
    """Stops the study once a trial failed on a storage or disk fault (:class:`_Interruptible`)."""

    def __init__(self, objective: _Interruptible) -> None:
        self.objective = objective

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.objective.fault is not None:
            study.stop()


def _how(exc: KeyboardInterrupt) -> str:
    return "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C (SIGINT)"


def _fail_if_running(
    study: optuna.Study, trial_id: int | None, interrupt: KeyboardInterrupt | None = None
) -> None:
    """Fail the last trial asked if an interrupt or a storage fault left it RUNNING: the
    interrupt may land after its objective returned, while Optuna tells its state."""
    if trial_id is None:
        return
    storage = study._storage
    try:
        if storage.get_trial(trial_id).state == optuna.trial.TrialState.RUNNING:
            if interrupt is not None:
                storage.set_trial_user_attr(trial_id, TrialAttrs.fail_reason, "interrupted")
                message = f"stopped by {_how(interrupt)}"
                storage.set_trial_user_attr(trial_id, TrialAttrs.fail_message, message)
            storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
    except Exception:  # noqa: BLE001 - best effort while stopping; heartbeats cover the rest
        log.debug("could not fail interrupted trial %s", trial_id, exc_info=True)


def build_objective(  # noqa: ANN201 - nas.pipeline.Objective
    config: Config,
    *,
    study: optuna.Study | None = None,
    context: RunContext | None = None,
    intensity: IntensitySource | None = None,
):
    """The trial objective (:class:`nas.pipeline.Objective`, whose steps come from the config's
    sections) on ``context`` (default: :func:`nas.runs.build_context` of ``config``), with
    the study's artifact store for the trials' weights."""
    from nas.pipeline import Objective
    from nas.runs import build_context

    ctx = context or build_context(config, intensity=intensity)
    if ctx.artifact_store is None and ctx.workload.trains_modules:  # a table has no weights
        ctx.config.artifact_dir.mkdir(parents=True, exist_ok=True)
        store = optuna.artifacts.FileSystemArtifactStore(str(ctx.config.artifact_dir))
        ctx = ctx.replace(artifact_store=store)
    return Objective(ctx)


class _TargetReached:
    """Stop this process once the study's finished trials, plus those other processes are
    running now, reach ``target``: two `search` processes on one study share its target
    instead of each running it in full."""

    def __init__(self, target: int) -> None:
        self.target = target

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        counts = StudyCounts.of(study)
        if counts.finished + counts.running >= self.target:
            study.stop()


def run_search(
    config: Config,
    *,
    n_trials: int | None = None,
    progress: bool = True,
    stream: TextIO | None = None,
) -> SearchResult:
    """Run the study until it has ``config.study.trials`` finished trials (resumes).

    With ``n_trials`` (workers), run exactly that many more trials instead.
    """
    from nas.config import config_intensity
    from nas.runs import build_context
    from nas.space_options import check_images, configured_spaces
    from nas.tracking import TrackingCallback, finish_tracking, open_tracker

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _quiet_expected_failures()
    # every [search.<space>] option: before any study or file exists
    configured_spaces(config.search.spaces, config.search.options)
    tracker = open_tracker(config)  # unreachable or not installed: bad input, before any work
    intensity = config_intensity(config)  # bad source or missing token: before any work
    # device, meter, data: checked before any study exists
    context = build_context(config, intensity=intensity)
    check_images(context.data.image_size, config.data.dataset)
    study = open_study(config)
    fail_stale(study)
    from nas.baselines import enqueue_baselines

    d = context.data  # a new study's first trials: the reference designs that fit its space
    if context.workload.trains_modules:  # a table study's space is the table's
        enqueue_baselines(
            study, config, in_channels=d.in_channels, num_classes=d.num_classes,
            image_size=d.image_size,
        )  # fmt: skip
    counts = StudyCounts.of(study)
    if n_trials is not None:
        remaining = n_trials
    else:  # trials other processes are running now count towards the target
        remaining = config.study.trials - counts.finished - counts.running
    t0 = time.perf_counter()
    if remaining <= 0:
        log.info(
            "study %s already has %d finished and %d running trials",
            config.study.name,
            counts.finished,
            counts.running,
        )
        if tracker is not None:  # a finished study sent to a tracker afterwards
            TrackingCallback(tracker).backfill(study)
            finish_tracking(tracker, study)
        return SearchResult(study=study, new_trials=0, wall_s=0.0)
    from nas.compression.study_calibration import calibrate_study

    # what pays on this hardware: measured once per study, its energy in the search cost
    config = calibrate_study(study, context)
    from nas.proposals import bind_sampler

    inner_objective = build_objective(config, study=study, context=context.replace(config=config))
    bind_sampler(study, inner_objective)  # sampler "eco": the spaces it draws from
    objective = _Interruptible(inner_objective)
    target = counts.finished + remaining if n_trials is not None else config.study.trials
    callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = [
        _StopOnFault(objective)
    ]
    if progress:
        callbacks.append(ProgressBar(target=target, done=counts.finished, stream=stream))
    if n_trials is None:
        callbacks.append(_TargetReached(target))
    from nas.scheduling import budget_callbacks

    callbacks += budget_callbacks(config.schedule.max_kgco2e, study)
    if tracker is not None:
        tracking = TrackingCallback(tracker)
        tracking.backfill(study)
        callbacks.append(tracking)
    n_before = _started(study)  # enqueued baselines wait: they are new trials once run
    # Failed trials (invalid architecture, NaN loss...) don't count towards study.trials: run
    # more passes until the target is reached, as long as a pass finishes some trial and the
    # study wasn't stopped (carbon budget, timeout). Workers run exactly n_trials attempts.
    deadline = None if config.study.timeout_s is None else time.monotonic() + config.study.timeout_s
    while remaining > 0:
        before = StudyCounts.of(study).finished
        timeout = None if deadline is None else deadline - time.monotonic()
        if timeout is not None and timeout <= 0:
            break
        try:
            study.optimize(
                objective,
                n_trials=remaining,
                timeout=timeout,
                catch=(Exception,),
                callbacks=callbacks,
                gc_after_trial=False,
            )
        except KeyboardInterrupt as exc:  # finished trials are already in the storage
            _fail_if_running(study, objective.trial_id, exc)
            raise
        except Exception as exc:  # raised by Optuna itself, outside the objective
            interrupt = interrupt_in(exc)
            # best effort: the storage may refuse
            _fail_if_running(study, objective.trial_id, interrupt)
            if interrupt is not None:  # Ctrl-C while Optuna told a state: it masks it
                raise interrupt from None
            fault = fault_of(exc, redact_url(config.storage_url))
            if fault is not None:  # the storage failed under Optuna (commit, ask, tell)
                raise fault from None
            raise
        if objective.fault is not None:  # a trial failed on a full disk or read-only storage
            fault = fault_of(objective.fault, redact_url(config.storage_url))
            raise fault or EconasError(str(objective.fault)) from None
        gained = StudyCounts.of(study).finished - before
        if n_trials is not None or gained == 0 or _stopped(study):
            break
        now = StudyCounts.of(study)
        remaining = target - now.finished - now.running
    new = _started(study) - n_before
    if tracker is not None:
        finish_tracking(tracker, study)
    if new and StudyCounts.of(study).complete == 0:
        failed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))
        reasons = {TrialRecord.of(t).get(TrialAttrs.fail_reason, "error") for t in failed}
        raise EconasError(f"every trial failed ({', '.join(sorted(reasons))}); see -v output")
    return SearchResult(study=study, new_trials=new, wall_s=time.perf_counter() - t0)
