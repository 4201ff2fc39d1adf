"""`econas train`: train a chosen trial (or the K most accurate on the front) at full budget.

Projects the run's energy and kgCO2e from the proxy first (``--dry-run`` stops there),
refuses to start above ``--max-kgco2e``, then trains with a checkpoint at every epoch end
(rerun the same command to resume), evaluates the test split once and stores the result
with the trial; ``econas export`` then ships these weights. Parses, calls
:func:`nas.final.train_trials`, prints.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from nas.commands._common import (
    add_carbon_source_args,
    add_study_source_args,
    apply_carbon_flags,
    print_json,
    study_from_args,
)
from nas.text import plural

if TYPE_CHECKING:  # pragma: no cover
    from nas.trained import TrainedTrial


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
    from nas.final import FinalOptions, top_of_front, train_trials
    from nas.study import study_config

    study = study_from_args(args)
    if args.config:  # the file's [final] section (it is not part of the study's fingerprint)
        from nas.commands._common import config_from_args

        config = config_from_args(argparse.Namespace(config=args.config, storage=args.storage))
    else:
        config = study_config(study)
    numbers = top_of_front(study, args.top) if args.top is not None else [args.trial]
    opts = FinalOptions.of(
        config,
        epochs=args.epochs,
        train_size=args.train_size,
        device=args.device,
        meter=args.meter,
        max_kgco2e=args.max_kgco2e,
    )
    outputs = train_trials(
        study,
        numbers,
        apply_carbon_flags(config, args),
        opts,
        dry_run=args.dry_run,
        on_result=None if args.json else _print_result,
    )
    if args.json:
        dicts = [o.to_dict() for o in outputs]
        print_json(dicts if args.top is not None else dicts[0])
    return 0


def result_line(s: TrainedTrial) -> str:
    """The line ``econas train`` prints for a trained trial."""
    err = s.projection_error_pct
    proxy = s.proxy_test_accuracy if s.proxy_test_accuracy is not None else float("nan")
    return (
        f"trial {s.trial}: test accuracy {_num(s.test_accuracy, '.4f')} after "
        f"{plural(s.epochs, 'epoch')} on {plural(s.train_size, 'image')} (proxy: {proxy:.4f}); "
        f"{_num(s.energy_kwh, '.3e')} kWh, {_num(s.kgco2e, '.3e')} kgCO2e ({s.energy_kind}); "
        f"projection {_num(s.projected_energy_kwh, '.3e')} kWh, error {_num(err, '+.1f')}%"
        + _range_note(s)
    )


def _print_result(s: TrainedTrial) -> None:
    print(result_line(s))


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _range_note(s: TrainedTrial) -> str:
    lo, hi = s.projected_energy_kwh_low, s.projected_energy_kwh_high
    if lo is None or hi is None:
        return f" (range unknown: {s.projection_range_basis or 'not benchmarked'})"
    return f" (likely {lo:.3e} to {hi:.3e} kWh, {s.projection_range_basis})"
