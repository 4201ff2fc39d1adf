"""`econas worker CONFIG --storage URL --trials N`: join a shared study and run N trials.

Any number of workers, on any number of machines, share one study through its storage:
PostgreSQL/MySQL for many hosts; SQLite or ``journal:PATH`` for processes on one host. The
study is created by the first worker (or ``search``) and joined by the others; a worker whose
config differs from the one the study was created with is refused (exit 2).
"""

from __future__ import annotations

import argparse
import sys

from nas.commands._common import add_run_args, config_from_args, print_json
from nas.text import plural


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "worker",
        help="join a shared study and run N trials",
        description="Join (or create) the study in CONFIG's storage (--storage) and run exactly "
        "--trials more trials (default: the config's study.trials); several workers on one "
        "PostgreSQL/MySQL storage share the study across machines.",
    )
    add_run_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.pareto import pareto_rows
    from nas.search import run_search
    from nas.study import StudyCounts, redact_url

    cfg = config_from_args(args)
    n_trials = args.trials if args.trials is not None else cfg.study.trials
    print(
        f"econas: worker joining study '{cfg.study.name}' in {redact_url(cfg.storage_url)} "
        f"for {plural(n_trials, 'trial')} (data {cfg.data.dataset})",
        file=sys.stderr,
    )
    if cfg.tracking.active:
        print(
            f"econas: tracking trials in MLflow {redact_url(cfg.tracking.mlflow or '')} "
            f"(experiment '{cfg.tracking.experiment or cfg.study.name}')",
            file=sys.stderr,
        )
    result = run_search(cfg, n_trials=n_trials)
    counts = StudyCounts.of(result.study)
    if args.json:
        print_json(pareto_rows(result.study))
    print(
        f"econas: worker ran its {plural(n_trials, 'trial')} in {result.wall_s:.1f} s; study now has "
        f"{counts.complete} complete, {counts.pruned} pruned, {counts.failed} failed, "
        f"{counts.running} running",
        file=sys.stderr,
    )
    return 0
