"""`econas search CONFIG`: run (or resume) a multi-objective NAS study."""

from __future__ import annotations

import argparse
import sys

from nas.commands._common import add_run_args, config_from_args, print_json
from nas.text import plural


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="run or resume a NAS study",
        description="Run (or resume) the study in CONFIG until it has study.trials finished "
        "trials, then print its Pareto front of accuracy versus kgCO2e.",
    )
    add_run_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.pareto import pareto_rows, pareto_table
    from nas.search import run_search
    from nas.study import redact_url

    cfg = config_from_args(args)
    print(
        f"econas: study '{cfg.study.name}' in {redact_url(cfg.storage_url)} "
        f"({plural(cfg.study.trials, 'trial')}, "
        f"{cfg.search.benchmark or 'data ' + cfg.data.dataset})",
        file=sys.stderr,
    )
    if cfg.tracking.active:
        print(
            f"econas: tracking trials in MLflow {redact_url(cfg.tracking.mlflow or '')} "
            f"(experiment '{cfg.tracking.experiment or cfg.study.name}')",
            file=sys.stderr,
        )
    result = run_search(cfg)
    if args.json:
        print_json(pareto_rows(result.study))
    else:
        print(pareto_table(result.study))
    print(f"econas: {result.new_trials} new trials in {result.wall_s:.1f} s", file=sys.stderr)
    return 0
