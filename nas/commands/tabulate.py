"""`econas tabulate CONFIG --archs N --epochs 1,2,4 --out DIR`: a tabular benchmark of a study's
own space, trained and metered on this machine (resumable)."""

from __future__ import annotations

import argparse
import sys

from nas.commands._common import print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tabulate",
        help="make a tabular benchmark of a study's own space",
        description="Train N architectures drawn from CONFIG's search spaces (a random "
        "sampler seeded with study.seed) by its [train] recipe, with real metering, evaluate "
        "them at each of --epochs and write a table in nas.tabular's format to --out. "
        "Resumable: a rerun skips every architecture and repeat already written. Search it "
        "with: econas search tabular --benchmark table:DIR.",
    )
    p.add_argument("config", help="study config (TOML file or bundled name, e.g. quickstart)")
    p.add_argument("--archs", type=int, required=True, metavar="N", help="architectures to train")
    p.add_argument(
        "--epochs", required=True, metavar="E1,E2,...", help="epochs to record, e.g. 1,2,4"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="the table's folder")
    p.add_argument("--repeats", type=int, default=1, metavar="R", help="seeds per architecture")
    p.add_argument("--name", help="the table's name (default: the folder's name)")
    p.add_argument("--seed", type=int, metavar="S", help="overrides study.seed")
    p.add_argument("--dataset", help="fashion-mnist | cifar10 | npz:PATH")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--meter", help="auto | nvml | rapl | estimate")
    p.add_argument("--json", action="store_true", help="print a summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.commands._common import config_from_args
    from nas.tabulate import parse_epochs, tabulate

    epochs = parse_epochs(args.epochs)
    cfg = config_from_args(args)

    def progress(line: str) -> None:
        print(f"econas: {line}", file=sys.stderr, flush=True)

    result = tabulate(
        cfg,
        archs=args.archs,
        epochs=epochs,
        out=args.out,
        repeats=args.repeats,
        name=args.name,
        progress=progress,
    )
    t = result.table
    summary = {
        "table": t.name,
        "out": str(t.directory),
        "architectures": len(t.archs),
        "repeats": args.repeats,
        "epochs": epochs,
        "trained_now": len(result.trained),
        "left_out": result.failed,
        "energy_kwh_now": result.energy_kwh,
        "energy_kind": t.energy_kind,
        "meter": t.meta.get("meter"),
    }
    if args.json:
        print_json(summary)
    else:
        print(str(t.directory))
    print(
        f"econas: table {t.name} in {t.directory}: {len(t.archs)} architectures x "
        f"{args.repeats} repeat(s) at epochs {epochs}; trained now {len(result.trained)} "
        f"({result.energy_kwh:.3e} kWh, {t.energy_kind}), left out {len(result.failed)}; "
        f"search it: econas search tabular --benchmark table:{t.directory}",
        file=sys.stderr,
    )
    return 0
