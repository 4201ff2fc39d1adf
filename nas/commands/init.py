"""`econas init [NAME] [--out FILE]`: write a bundled study config to edit (quickstart by default)."""

from __future__ import annotations

import argparse
import sys

from nas.commands._common import print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "init",
        help="write a documented study config to edit",
        description="Copy a bundled study config (every key documented) to FILE, "
        "./NAME.toml by default; an existing file is never overwritten. `econas studies` "
        "lists the bundled ones.",
    )
    p.add_argument(
        "name", nargs="?", default="quickstart", help="bundled study (default quickstart)"
    )
    p.add_argument("--out", metavar="FILE", help="file to write (default: ./NAME.toml)")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.bundled import bundled_name, study_path, write_study

    source = study_path(args.name)  # an unknown name: bad input, before anything is written
    stem = bundled_name(args.name) or source.stem
    out = write_study(stem, args.out or f"{stem}.toml")
    if args.json:
        print_json({"study": stem, "written": str(out)})
    else:
        print(str(out))
    print(f"econas: wrote {out}; edit it, then: econas search {out}", file=sys.stderr)
    return 0
