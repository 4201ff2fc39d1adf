"""`econas ablate CONFIG`: baseline vs. pruning, quantization, distillation, mixed precision,
scheduling, the paper's combination and econas's chosen one (and federated), against the paper
econas implements."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nas.commands._common import config_from_args, print_json

_BUDGETS = ("proxy", "final")  # kept equal to nas.sections.compression.ABLATE_BUDGETS (tested)


def _train_size(text: str) -> int | str:
    if text == "all":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither 'all' nor a number") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ablate",
        help="measure each compression/efficient-training technique against a baseline",
        description="Train the [ablate] baseline architecture, then each technique alone, the "
        "baseline's job shifted by carbon-aware scheduling, the paper's combination (pruning + "
        "quantization + scheduling) and econas's chosen compression plus scheduling, on the "
        "same data, budget and meter; print accuracy, training, "
        "inference and lifecycle energy and kgCO2e (each scope with its intensity on a real "
        "trace), params, FLOPs and latency per row, against Carbon-Conscious AI (Viswanath).",
    )
    p.add_argument("config", help="study config (TOML) with an optional [ablate] section")
    p.add_argument("--dataset", help="fashion-mnist | cifar10 | npz:PATH")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--meter", help="auto | nvml | rapl | estimate")
    p.add_argument("--repeats", type=int, help="repeats with seeds seed, seed+1, ... (spread)")
    p.add_argument("--seed", type=int, help="first seed (default: study.seed)")
    p.add_argument(
        "--budget",
        choices=_BUDGETS,
        help="proxy: rows train by [train] on [data]'s subsets (a search trial's budget); "
        "final: as `econas train` trains ([final] epochs, the whole training split less "
        "validation, the whole test split). Default: [ablate] budget (proxy)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        metavar="N",
        help="epochs every row trains (the budget's: [train] epochs, or [final] epochs)",
    )
    p.add_argument(
        "--train-size",
        type=_train_size,
        metavar="N|all",
        help="training images (proxy: [data] train_size; final: [final] train_size, 'all' = "
        "the whole split less validation)",
    )
    p.add_argument(
        "--val-size",
        type=int,
        metavar="N",
        help="validation images the combined row's candidates are ranked on (proxy: [data] "
        "val_size; final: [ablate] select_val_size, 5000)",
    )
    p.add_argument(
        "--trace",
        metavar="CSV",
        help="the grid every row's jobs are charged on: a shipped trace (gb_2020, fr_2020) or "
        "a CSV (default: [ablate] trace, gb_2020)",
    )
    p.add_argument(
        "--window-hours",
        type=float,
        metavar="H",
        help="how far the scheduled rows' training may be shifted (default 24)",
    )
    p.add_argument(
        "--inference-predictions",
        type=int,
        metavar="N",
        help="predictions served in the lifecycle (default 1,000,000)",
    )
    p.add_argument("--json", action="store_true", help="print the table and its spread as JSON")
    p.set_defaults(func=run)


def format_table(result: dict[str, Any]) -> str:
    """The human output (:func:`nas.ablation.format_table`)."""
    from nas.ablation import format_table as fmt

    return fmt(result)


def run(args: argparse.Namespace) -> int:
    from nas.ablation import ablation_config, run_ablation
    from nas.errors import BadInputError

    if args.repeats is not None and args.repeats < 1:
        raise BadInputError("--repeats must be >= 1")
    if args.inference_predictions is not None and args.inference_predictions < 0:
        raise BadInputError("--inference-predictions must be >= 0")
    cfg = ablation_config(
        config_from_args(args),
        budget=args.budget,
        epochs=args.epochs,
        train_size=args.train_size,
        val_size=args.val_size,
        trace=args.trace,
        window_hours=args.window_hours,
        inference_predictions=args.inference_predictions,
    )
    result = run_ablation(
        cfg,
        repeats=args.repeats,
        seed=args.seed,
        progress=lambda msg: print(f"econas ablate: {msg}", file=sys.stderr, flush=True),
    )
    if args.json:
        print_json(result)
    else:
        print(format_table(result))
    return 0
