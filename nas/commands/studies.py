"""`econas studies`: the study configs bundled with econas (usable by name as CONFIG)."""

from __future__ import annotations

import argparse
import shutil
import textwrap

from nas.commands._common import print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "studies",
        help="list the bundled study configs",
        description="List the study configs shipped with econas. Any verb taking CONFIG "
        "accepts their name (`econas search quickstart`); `econas init NAME` copies one to edit.",
    )
    p.add_argument("--json", action="store_true", help="JSON list of {name, path, description}")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.bundled import describe, list_studies, study_path

    rows = [
        {"name": n, "path": str(study_path(n)), "description": describe(n)} for n in list_studies()
    ]
    if args.json:
        print_json(rows)
        return 0
    width = max((len(r["name"]) for r in rows), default=0)
    columns = max(shutil.get_terminal_size((100, 24)).columns, width + 40)
    for r in rows:  # the whole description, wrapped under its column (never cut)
        lines = textwrap.wrap(r["description"], columns - width - 2) or [""]
        print(f"{r['name']:<{width}}  {lines[0]}")
        for more in lines[1:]:
            print(f"{'':<{width}}  {more}")
    return 0
