"""`econas train`: train a chosen trial (or the K most accurate on the front) at full budget.

Projects the run's energy and kgCO2e from the proxy first (``--dry-run`` stops there),
refuses to start above ``--max-kgco2e``, then trains with a checkpoint at every epoch end
(rerun the same command to resume), evaluates the test split once and stores the result
with the trial; ``econas export`` then ships these weights.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nas.commands._common import (
    add_carbon_source_args,
    add_study_source_args,
    apply_carbon_flags,
    print_json,
    study_from_args,
)


def _train_size(text: str) -> str | int:
    if text == "all":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'all' or a number, not {text!r}") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a trial's architecture at full budget",
        description="Rebuild a trial's model as it deployed it (architecture, pruned structure, "
        "precision, teacher, quantization), project the full run's energy and kgCO2e from the "
        "proxy, then train it on the whole training split with checkpoints ([final] section; "
        "flags override it) and store the result with the trial.",
    )
    add_study_source_args(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", type=int, help="trial number")
    which.add_argument(
        "--top", type=int, metavar="K", help="the K most accurate trials on the front"
    )
    p.add_argument("--epochs", type=int, help="full-budget epochs (final.epochs)")
    p.add_argument("--train-size", type=_train_size, help="'all' or a number of images")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--meter", help="auto | nvml | rapl | estimate")
    p.add_argument(
        "--max-kgco2e",
        type=float,
        metavar="KG",
        help="refuse to start above this projection; stop at a checkpoint on reaching it "
        "(with --top: one budget for all)",
    )
    add_carbon_source_args(p)
    p.add_argument("--dry-run", action="store_true", help="project, print and stop")
    p.add_argument("--json", action="store_true", help="one JSON object (a list with --top)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.energy import create_meter
    from nas.errors import BadInputError
    from nas.final import FinalOptions, FinalRun
    from nas.pareto import pareto_trials
    from nas.study import study_config
    from nas.train import resolve_device
    from nas.trial_model import get_trial

    study = study_from_args(args)
    if args.config:  # the file's [final] section (it is not part of the study's fingerprint)
        from nas.commands._common import config_from_args

        config = config_from_args(argparse.Namespace(config=args.config, storage=args.storage))
    else:
        config = study_config(study)
    if args.top is not None:
        if args.top < 1:
            raise BadInputError(f"--top must be >= 1, got {args.top}")
        front = sorted(pareto_trials(study), key=lambda r: (-(r.accuracy or 0.0), r.number))
        numbers = [r.number for r in front[: args.top]]
    else:
        numbers = [args.trial]
    opts = FinalOptions.of(
        config,
        epochs=args.epochs,
        train_size=args.train_size,
        device=args.device,
        meter=args.meter,
        max_kgco2e=args.max_kgco2e,
    )
    from nas.config import config_intensity

    config = apply_carbon_flags(config, args)
    intensity = config_intensity(config)
    device = resolve_device(opts.device)
    meter = None if args.dry_run else create_meter(opts.meter, device=str(device))
    outputs: list[dict[str, Any]] = []
    spent = 0.0
    for number in numbers:
        trial = get_trial(study, number)
        final = FinalRun(study, trial, config, opts)
        final.ckpt.load(opts.settings())  # a corrupt or foreign checkpoint: bad input, first
        final.check_memory(device)  # data and training fit in memory, before any work
        projection = final.project(intensity)
        _print_projection(number, projection)
        final.store_projection(projection)
        if config.schedule.active:
            _print_green_start(config, projection.duration_s)
        left = None if opts.max_kgco2e is None else opts.max_kgco2e - spent
        if left is not None and (projection.kgco2e or 0.0) > left:
            raise BadInputError(
                f"trial {number}: projected {projection.kgco2e:.3e} kgCO2e exceeds the "
                f"{left:.3e} kgCO2e left of --max-kgco2e {opts.max_kgco2e:.3e}; not started"
            )
        if args.dry_run:
            outputs.append(_summary(final, None, projection))
            continue
        assert meter is not None
        run_opts = opts if left is None else FinalOptions(**{**opts.__dict__, "max_kgco2e": left})
        final.opts = run_opts
        record = final.run(meter, intensity, projection)
        spent += float(record.get("final_kgco2e") or 0.0)
        outputs.append(_summary(final, record, projection))
        if not args.json:
            _print_result(outputs[-1])
    if meter is not None:
        meter.close()
    if args.json:
        print_json(outputs if args.top is not None else outputs[0])
    return 0


def _summary(final: Any, record: dict[str, Any] | None, projection: Any) -> dict[str, Any]:
    from nas.record import Final, Trial

    rec = final.rec
    r = record or {}
    return {
        "trial": final.trial.number,
        "epochs": r.get(Final.epochs, final.opts.epochs),
        "train_size": r.get(Final.train_size, len(final.data.train)),
        "test_accuracy": r.get(Final.test_accuracy),
        "val_accuracy": r.get(Final.val_accuracy),
        "proxy_accuracy": rec.accuracy,
        "proxy_test_accuracy": rec.num(Trial.test_accuracy),
        "energy_kwh": r.get(Final.energy_kwh),
        "kgco2e": r.get(Final.kgco2e),
        "lost_energy_kwh": r.get(Final.lost_energy_kwh),
        "energy_kind": r.get(Final.energy_kind),
        "energy_source": r.get(Final.energy_source),
        "intensity_g_per_kwh": r.get(Final.intensity_g_per_kwh, projection.intensity_g_per_kwh),
        "intensity_source": r.get(Final.intensity_source, projection.intensity_source),
        "projected_energy_kwh": projection.energy_kwh,
        "projected_kgco2e": projection.kgco2e,
        "projected_duration_s": projection.duration_s,
        "projection_method": projection.method,
        "projection_error_pct": r.get(Final.projection_error_pct),
        "resumed_from_epoch": r.get(Final.resumed_from_epoch, 0),
        "weights_artifact_id": r.get(Final.weights_artifact_id),
        "dry_run": record is None,
    }


def _print_projection(number: int, p: Any) -> None:
    from nas.text import human_duration

    print(
        f"econas: trial {number}: projected {p.energy_kwh:.3e} kWh, {p.kgco2e:.3e} kgCO2e at "
        f"{p.intensity_g_per_kwh:.4g} gCO2e/kWh ({p.intensity_source}), about "
        f"{human_duration(p.duration_s)} (projected from the proxy: {p.method})",
        file=sys.stderr,
        flush=True,
    )


def _print_green_start(config: Any, duration_s: float) -> None:
    """With [schedule]: the greenest start for the projected run within the window."""
    from datetime import UTC, datetime, timedelta

    from nas.carbon import load_trace
    from nas.errors import BadInputError
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
        print(f"econas: no green start from trace {sec.trace}: {exc}", file=sys.stderr)
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
        file=sys.stderr,
    )


def _print_result(s: dict[str, Any]) -> None:
    err = s["projection_error_pct"]
    print(
        f"trial {s['trial']}: test accuracy {s['test_accuracy']:.4f} after {s['epochs']} epochs on "
        f"{s['train_size']} images (proxy: {s['proxy_test_accuracy'] or float('nan'):.4f}); "
        f"{s['energy_kwh']:.3e} kWh, {s['kgco2e']:.3e} kgCO2e ({s['energy_kind']}); "
        f"projection {s['projected_energy_kwh']:.3e} kWh, error {err:+.1f}%"
    )
