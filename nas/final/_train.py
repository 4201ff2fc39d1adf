"""``econas train`` as a library call: each chosen trial projected, checked and trained at full
budget (:class:`~nas.final.FinalRun`) in one run context; ``nas.train_trial`` and the verb
both call :func:`train_trials`.

Per trial: another process training the same trial (its run folder's ``train.lock``,
:mod:`nas.final._lock`), a corrupt or foreign checkpoint and a model that would not fit are
bad input before any work; the projection (energy, kgCO2e, duration) is printed on ``stream`` and kept
with the trial; with ``[schedule]`` the greenest start in the window is printed too; a
projection above what is left of ``max_kgco2e`` refuses to start (exit 2). A dry run stops
after the projections.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, TextIO

from nas.errors import BadInputError
from nas.final._options import FinalOptions, final_context
from nas.final._project import Projection
from nas.final._run import FinalRun
from nas.trained import TrainedTrial

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from nas.config import Config


def top_of_front(study: optuna.Study, k: int) -> list[int]:
    """The numbers of the ``k`` most accurate trials on the study's Pareto front."""
    from nas.pareto import pareto_trials

    if k < 1:
        raise BadInputError(f"--top must be >= 1, got {k}")
    front = sorted(pareto_trials(study), key=lambda r: (-(r.accuracy or 0.0), r.number))
    return [r.number for r in front[:k]]


def train_trials(
    study: optuna.Study,
    numbers: Sequence[int],
    config: Config,
    options: FinalOptions,
    *,
    dry_run: bool = False,
    stream: TextIO | None = None,
    on_result: Callable[[TrainedTrial], None] | None = None,
) -> list[TrainedTrial]:
    """Train trials ``numbers`` of ``study`` at ``options``' budget (module docstring); one
    :class:`~nas.trained.TrainedTrial` per trial (``.to_dict()`` is what ``econas train
    --json`` prints), each also to ``on_result`` as soon as its trial is trained.
    ``options.max_kgco2e`` is one budget for them all."""
    from nas.record import Final
    from nas.trial_model import get_trial

    trials = [get_trial(study, n) for n in numbers]  # an unknown trial: bad input, first
    context = final_context(config, options, metered=not dry_run)
    out = sys.stderr if stream is None else stream
    outputs: list[TrainedTrial] = []
    spent = 0.0
    try:
        for trial in trials:
            final = FinalRun(study, trial, context, options, stream=out)
            # one run per trial at a time (a second is refused, exit 2), before any work
            with nullcontext() if dry_run else final.ckpt.lock():
                record, projection = _train_one(final, config, options, spent, dry_run, out)
            outputs.append(summary(final, record, projection))
            if record is None:  # a dry run
                continue
            spent += float(record.get(Final.kgco2e) or 0.0)
            if on_result is not None:
                on_result(outputs[-1])
    finally:
        if context.meter is not None:
            context.meter.close()
    return outputs


def _train_one(
    final: FinalRun,
    config: Config,
    options: FinalOptions,
    spent: float,
    dry_run: bool,
    out: TextIO,
) -> tuple[dict[str, Any] | None, Projection]:
    """One trial of :func:`train_trials` (module docstring): its record (None for a dry run)
    and its projection; ``spent`` is the kgCO2e the trials before it spent."""
    number = final.trial.number
    final.ckpt.load(options.settings())  # a corrupt or foreign checkpoint: bad input
    final.check_memory()  # data and training fit in memory, before any work
    projection = final.project()
    _print_projection(number, projection, out, kind=final.rec.energy_kind)
    final.store_projection(projection)
    if config.schedule.active:
        _print_green_start(config, projection.duration_s, out)
    left = None if options.max_kgco2e is None else options.max_kgco2e - spent
    if left is not None and (projection.kgco2e or 0.0) > left:
        raise BadInputError(
            f"trial {number}: projected {projection.kgco2e:.3e} kgCO2e exceeds the "
            f"{left:.3e} kgCO2e left of --max-kgco2e {options.max_kgco2e:.3e}; not started"
        )
    if dry_run:
        return None, projection
    if left is not None:
        final.opts = dataclasses.replace(options, max_kgco2e=left)
    return final.run(projection), projection


def summary(final: FinalRun, record: dict[str, Any] | None, projection: Projection) -> TrainedTrial:
    """One trial's final training (or, without ``record``, its projection), typed."""
    from nas.record import Final, TrialAttrs

    rec = final.rec
    r = record or {}
    g = projection.intensity_g_per_kwh
    lo = r.get(Final.projected_energy_kwh_low, projection.energy_kwh_low)
    hi = r.get(Final.projected_energy_kwh_high, projection.energy_kwh_high)
    return TrainedTrial(
        trial=final.trial.number,
        dry_run=record is None,
        epochs=r.get(Final.epochs, final.opts.epochs),
        train_size=r.get(Final.train_size, len(final.data.train)),
        test_accuracy=r.get(Final.test_accuracy),
        val_accuracy=r.get(Final.val_accuracy),
        proxy_accuracy=rec.accuracy,
        proxy_test_accuracy=rec.num(TrialAttrs.test_accuracy),
        energy_kwh=r.get(Final.energy_kwh),
        kgco2e=r.get(Final.kgco2e),
        lost_energy_kwh=r.get(Final.lost_energy_kwh),
        energy_kind=r.get(Final.energy_kind),
        energy_source=r.get(Final.energy_source),
        intensity_g_per_kwh=r.get(Final.intensity_g_per_kwh, projection.intensity_g_per_kwh),
        intensity_source=r.get(Final.intensity_source, projection.intensity_source),
        # a resumed run projects again (its rebuild, warm-up, lost work): the record's
        projected_energy_kwh=r.get(Final.projected_energy_kwh, projection.energy_kwh),
        projected_kgco2e=r.get(Final.projected_kgco2e, projection.kgco2e),
        projected_energy_kwh_low=lo,
        projected_energy_kwh_high=hi,
        projected_kgco2e_low=None if lo is None or g is None else lo * g / 1000.0,
        projected_kgco2e_high=None if hi is None or g is None else hi * g / 1000.0,
        projection_range_basis=r.get(Final.projection_range_basis, projection.range_basis),
        projected_duration_s=projection.duration_s,
        projection_method=r.get(Final.projection_method, projection.method),
        projected_phases_kwh=_json(r.get(Final.projected_phases)) or projection.phases_kwh,
        phases_kwh=_json(r.get(Final.phases)),
        projection_error_pct=r.get(Final.projection_error_pct),
        resumed_from_epoch=r.get(Final.resumed_from_epoch, 0),
        weights_artifact_id=r.get(Final.weights_artifact_id),
    )


def _json(text: Any) -> Any:
    import json

    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _print_projection(number: int, p: Projection, stream: TextIO, *, kind: str | None) -> None:
    """The projection line; ``kind``: the proxy's energy kind (``estimated``, ``measured``),
    which the projection inherits."""
    from nas.text import human_duration

    print(
        f"econas: trial {number}: projected {p.energy_kwh:.3e} kWh ({p.range_text()}), "
        f"{p.kgco2e:.3e} kgCO2e at {p.intensity_g_per_kwh:.4g} gCO2e/kWh ({p.intensity_source}), "
        f"about {human_duration(p.duration_s)} (projected from the proxy's "
        f"{kind or 'unlabelled'} energy: {p.method})",
        file=stream,
        flush=True,
    )


def _print_green_start(config: Config, duration_s: float, stream: TextIO) -> None:
    """With [schedule]: the greenest start for the projected run within the window."""
    from datetime import UTC, datetime, timedelta

    from nas.carbon import load_trace
    from nas.scheduling import GreenWindowScheduler, SimulatedClock
    from nas.sections.schedule import parse_utc

    sec = config.schedule
    now = parse_utc(sec.start, "schedule.start") if sec.start else datetime.now(UTC)
    try:
        trace = load_trace(sec.trace)
        sched = GreenWindowScheduler(
            trace=trace,
            forecaster=sec.forecast,
            policy="flexible-start",
            window_hours=sec.window_hours,
            clock=SimulatedClock(start=now),
        )
        start, _ = sched.next_run_slot(now, max(duration_s, 1.0))
    except BadInputError as exc:
        print(f"econas: no green start from trace {sec.trace}: {exc}", file=stream)
        return
    end = start + timedelta(seconds=duration_s)
    g_then = float(trace.mean_over(int(start.timestamp()), int(end.timestamp())))
    g_now = float(
        trace.mean_over(
            int(now.timestamp()), int((now + timedelta(seconds=duration_s)).timestamp())
        )
    )
    print(
        f"econas: greenest start within {sec.window_hours:g} h on {trace.name} ({sec.forecast} "
        f"forecast): {start:%Y-%m-%d %H:%M} UTC, {g_then:.4g} against {g_now:.4g} gCO2e/kWh now",
        file=stream,
    )
