"""`econas report`: one self-contained HTML page of a study (plus an optional PNG/SVG)."""

from __future__ import annotations

import argparse
import logging
import sys

from nas.commands._common import add_study_source_args, print_json, study_from_args

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write an offline HTML report of a study",
        description="Eco-performance curve, hypervolume, energy by phase, knee point, the "
        "most accurate trial under a carbon cap, the search's total cost with provenance and "
        "what would cut the most carbon next: one HTML file that works offline.",
    )
    add_study_source_args(p)
    p.add_argument("--out", default="report.html", help="HTML file to write (default: report.html)")
    p.add_argument(
        "--carbon-cap",
        type=float,
        metavar="KGCO2E",
        help="pick the most accurate trial at or under this kgCO2e",
    )
    static = p.add_mutually_exclusive_group()
    static.add_argument(
        "--png", metavar="PATH", help="also write the eco-performance curve as PNG (needs Chromium)"
    )
    static.add_argument(
        "--svg", metavar="PATH", help="also write the eco-performance curve as SVG (needs Chromium)"
    )
    p.add_argument("--json", action="store_true", help="print what was written and picked as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.errors import BadInputError
    from nas.report import (
        NoBrowserError,
        build_report,
        check_report_path,
        write_report,
        write_static,
    )

    check_report_path(args.out)
    for flag, path in (("--png", args.png), ("--svg", args.svg)):
        if path and not path.lower().endswith(flag.replace("--", ".")):
            raise BadInputError(f"{flag} needs a path ending in {flag.replace('--', '.')}: {path}")
    study = study_from_args(args)
    report = build_report(study, cap_kgco2e=args.carbon_cap)
    out = write_report(report, args.out)
    written = {"html": str(out)}
    static_path = args.png or args.svg
    static_error = None
    if static_path:
        try:
            written["static"] = str(write_static(report.figures["eco_curve"], static_path))
        except NoBrowserError as exc:
            static_error = str(exc)
            print(f"econas: no static image: {exc}", file=sys.stderr)
    if args.json:
        print_json(
            {
                "written": written,
                "static_error": static_error,
                "study": study.study_name,
                "front": [p.trial for p in report.front],
                "knee_trial": report.knee.trial if report.knee else None,
                "cap_trial": report.capped.trial if report.capped else None,
                "search_kgco2e": report.search_kgco2e,
                "feedback": report.feedback[1:],
                "fidelity": report.fidelity.to_json() if report.fidelity else None,
            }
        )
        return 0
    for name, path in written.items():
        print(f"{name}: {path}")
    if report.knee is not None:
        k = report.knee
        chance = ", at or below chance" if k.at_or_below_chance else ""
        print(
            f"knee: trial {k.trial} (validation accuracy {k.accuracy:.4f}{chance}, model "
            f"{k.kgco2e:.3e} kgCO2e)"
        )
    if args.carbon_cap is not None:
        c = report.capped
        print(
            f"under {args.carbon_cap:g} kgCO2e: "
            + (f"trial {c.trial} (validation accuracy {c.accuracy:.4f})" if c else "no trial")
        )
    note = ", estimated" if "estimated" in report.search_kinds else ""
    print(f"search cost: {report.search_kgco2e:.3e} kgCO2e (all trials, every phase{note})")
    for line in report.feedback:
        print(line)
    return 0
