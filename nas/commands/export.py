"""`econas export`: write a trial's trained model (ONNX, torch.export .pt2, state_dict).

Parses, calls :func:`nas.export.export_trial`, prints what was written."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nas.commands._common import add_study_source_args, print_json, study_from_args

FORMATS = ("onnx", "pt2", "state_dict")  # nas.export.EXPORT_FORMATS (not imported: no torch)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trial's trained model",
        description="Rebuild a trial's model from its ArchSpec, load its own trained weights "
        "from the study's artifact store and export it with its figures.",
    )
    add_study_source_args(p)
    p.add_argument("--trial", type=int, required=True, help="trial number")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="onnx",
        help="onnx (checked in ONNX Runtime), pt2 (torch.export) or state_dict (default onnx)",
    )
    p.add_argument("--out", required=True, help="output directory (new or empty; see --force)")
    p.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty --out directory, replacing files of the same names and "
        "keeping the others",
    )
    p.add_argument("--artifacts", help="artifact directory (default: the study's)")
    p.add_argument(
        "--weights",
        choices=("proxy", "final"),
        help="final: the full-budget training (econas train); proxy: what the search trained "
        "(default: final when the trial has it)",
    )
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.add_argument(
        "--inference-min-duration-s",
        type=float,
        default=1.0,
        help="onnx: length of the ONNX Runtime CPU inference measurement window (default 1 s)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.export import check_export, export_trial

    out = Path(args.out)
    check_export(  # before the study is opened
        out, force=args.force, inference_min_duration_s=args.inference_min_duration_s
    )
    result = export_trial(
        study_from_args(args),
        args.trial,
        out=out,
        fmt=args.format,
        weights=args.weights,
        artifacts=args.artifacts,
        force=args.force,
        inference_min_duration_s=args.inference_min_duration_s,
    )
    if args.json:
        print_json(result.to_dict())
    else:
        for name, p in result.written.items():
            print(f"{name}: {p}")
        check = result.max_abs_diff_vs_pytorch
        if check is not None:
            print(f"verified against PyTorch: max abs difference {check:.2e}", file=sys.stderr)
    return 0
