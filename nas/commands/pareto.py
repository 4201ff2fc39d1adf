"""`econas pareto`: print a study's Pareto front (accuracy vs kgCO2e)."""

from __future__ import annotations

import argparse

from nas.commands._common import add_study_source_args, print_json, study_from_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pareto", help="print a study's Pareto front")
    add_study_source_args(p)
    p.add_argument("--json", action="store_true", help="JSON list of front trials on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.pareto import pareto_rows, pareto_table

    study = study_from_args(args)
    if args.json:
        print_json(pareto_rows(study))
    else:
        print(pareto_table(study))
        from nas.report import feedback_lines

        lines = feedback_lines(study)
        if lines:
            print("\n" + "\n".join(lines))
    return 0
