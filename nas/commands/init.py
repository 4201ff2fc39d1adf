"""`econas init [NAME] [--out FILE]`: write a bundled study config to edit (quickstart by default)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nas.commands._common import print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "init",
        help="write a documented study config to edit",
        description="Copy a bundled study config (every key documented) to FILE, "
        "./NAME.toml by default; an existing file is never overwritten. A copy under another "
        "name is a new study named after the file (--out synth.toml: [study] name = "
        "'synth', stored in runs/synth/). `econas studies` lists the bundled ones.",
    )
    p.add_argument(
        "name", nargs="?", default="quickstart", help="bundled study (default quickstart)"
    )
    p.add_argument("--out", metavar="FILE", help="file to write (default: ./NAME.toml)")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.bundled import bundled_name, study_path, write_study
    from nas.config import check_study_name

    source = study_path(args.name)  # an unknown name: bad input, before anything is written
    stem = bundled_name(args.name) or source.stem
    target = Path(args.out or f"{stem}.toml")
    # A copy under another file name is a new study: named after the file, so it opens its
    # own runs/<name>/ and never the bundled study's storage.
    study_name = target.stem if target.stem != stem else None
    if study_name is not None:
        check_study_name(study_name, f"study name from --out {target.name}:")
    out = write_study(stem, target, study_name=study_name)
    if args.json:
        print_json({"study": stem, "name": study_name or stem, "written": str(out)})
    else:
        print(str(out))
    print(f"econas: wrote {out}; edit it, then: econas search {out}", file=sys.stderr)
    return 0
