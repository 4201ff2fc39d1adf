"""`econas export`: write a trial's trained model (ONNX, torch.export .pt2, state_dict)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from nas.commands._common import add_study_source_args, print_json, study_from_args

FORMATS = ("onnx", "pt2", "state_dict")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trial's trained model",
        description="Rebuild a trial's model from its ArchSpec, load its own trained weights "
        "from the study's artifact store and export it with its figures.",
    )
    add_study_source_args(p)
    p.add_argument("--trial", type=int, required=True, help="trial number")
    p.add_argument("--format", choices=FORMATS, default="onnx")
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
    import math

    from nas.errors import BadInputError

    if not (math.isfinite(args.inference_min_duration_s) and args.inference_min_duration_s > 0):
        raise BadInputError("--inference-min-duration-s must be a number > 0")
    out = Path(args.out)
    check_out_dir(out, force=args.force)
    study = study_from_args(args)
    with staging_dir(out) as tmp:
        written, check, trial, weights = _export(study, args, tmp)
        written = {k: str(out / Path(v).relative_to(tmp)) for k, v in written.items()}
        publish(tmp, out)
    if args.json:
        print_json(
            written | {"trial": trial.number, "weights": weights, "max_abs_diff_vs_pytorch": check}
        )
    else:
        for name, p in written.items():
            print(f"{name}: {p}")
        if check is not None:
            print(f"verified against PyTorch: max abs difference {check:.2e}", file=sys.stderr)
    return 0


def check_out_dir(out: Path, *, force: bool) -> None:
    """``out`` must be a new or empty directory (any directory with ``force``)."""
    from nas.errors import BadInputError

    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out {str(out)!r} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise BadInputError(
            f"--out {str(out)!r} is not empty; choose a new directory or pass --force to "
            "replace the export's files in it"
        )


@contextlib.contextmanager
def staging_dir(out: Path) -> Iterator[Path]:
    """A temporary directory next to ``out`` (same file system), removed unless published."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish(tmp: Path, out: Path) -> None:
    """Move the finished export into place: a rename when ``out`` is new or empty, else file
    by file (``--force``), each replaced atomically."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        tmp.rename(out)
        tmp.mkdir()  # staging_dir removes it
        return
    for path in sorted(tmp.rglob("*")):
        target = out / path.relative_to(tmp)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            os.replace(path, target)


def _export(study, args: argparse.Namespace, out: Path):  # noqa: ANN001, ANN202
    """Write the export into ``out``; (written paths, check, trial, weights)."""
    import torch

    from nas.export import check_onnx, check_pt2, export_model
    from nas.pareto import trial_row
    from nas.record import Compression, Trial, TrialRecord
    from nas.trial_model import get_trial, load_trial_model, weights_source

    trial = get_trial(study, args.trial)
    full = TrialRecord.of(trial, study)
    weights = args.weights or ("final" if full.has_final else "proxy")
    model, spec = load_trial_model(study, trial, artifact_dir=args.artifacts, weights=weights)
    if weights == "proxy":
        print(_proxy_line(study, trial), file=sys.stderr)
    example = torch.randn(1, spec.in_channels, spec.image_size, spec.image_size)
    path = export_model(model, example_input=example, fmt=args.format, out_dir=out)
    check = None
    if args.format == "onnx":
        check = check_onnx(path, model, example)
    elif args.format == "pt2":
        check = check_pt2(path, model, example)
    (out / "arch_spec.json").write_text(spec.to_json() + "\n")
    prep = _preprocessing(study, full, spec, weights)
    (out / "preprocessing.json").write_text(json.dumps(prep, indent=2) + "\n")
    rec = TrialRecord.of(trial)
    structure = TrialRecord.of(weights_source(study, trial)[1]).get(Compression.pruned_structure)
    if structure:  # the spec alone can't rebuild pruned weights
        (out / "pruned_structure.json").write_text(structure + "\n")
    figures = trial_row(full) | {
        "study": study.study_name,
        "format": args.format,
        "weights": weights,
        "quantization": rec.quantization,
        "max_abs_diff_vs_pytorch": check,
        "intensity_source": rec.get(Trial.intensity_source),
    }
    onnx_figures = _measure_onnx(path, spec, trial, args) if args.format == "onnx" else None
    figures |= onnx_figures or {}
    (out / "figures.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    written = {
        "model": str(path),
        "arch_spec": str(out / "arch_spec.json"),
        "preprocessing": str(out / "preprocessing.json"),
        "figures": str(out / "figures.json"),
    }
    from nas.carbon_label import build_carbon_label, write_carbon_label

    projection = None if full.has_final else _projection(study, trial)
    label = build_carbon_label(
        study,
        trial,
        model_format=args.format,
        onnx_inference=onnx_figures,
        weights=weights,
        projection=projection,
    )
    written |= {k: str(v) for k, v in write_carbon_label(out, label).items()}
    return written, check, trial, weights


def _proxy_line(study, trial) -> str:  # noqa: ANN001
    from nas.study import study_config

    c = study_config(study)
    return (
        f"econas: trial {trial.number} is exported with its proxy weights ({c.train.epochs}-epoch "
        f"proxy on {c.data.train_size or 'all'} images); `econas train --trial {trial.number}` "
        "trains it at full budget"
    )


def _projection(study, trial) -> dict | None:  # noqa: ANN001
    """What the full-budget training ([final]) is projected to cost, for the label."""
    from nas.config import config_intensity
    from nas.errors import BadInputError
    from nas.final import FinalOptions, FinalRun
    from nas.study import study_config

    c = study_config(study)
    try:
        run = FinalRun(study, trial, c, FinalOptions.of(c))
        source = config_intensity(c)
        return run.project(source).to_json()
    except BadInputError as exc:  # e.g. a proxy without a measured training phase
        print(f"econas: no projection of the full-budget training: {exc}", file=sys.stderr)
        return None


def _preprocessing(study, rec, spec, weights: str) -> dict:  # noqa: ANN001
    """Scale, per-channel mean and std of the images the exported weights were trained on."""
    from nas.data import DataBudget, load_data, preprocessing
    from nas.record import Final
    from nas.study import study_config

    c = study_config(study)
    shape = (spec.in_channels, spec.image_size, spec.image_size)
    if weights == "final":
        mean, std = json.loads(rec.final[Final.mean]), json.loads(rec.final[Final.std])
    else:  # the proxy's statistics: the study's train subset, drawn again
        d = c.data
        budget = DataBudget(
            train_size=d.train_size, val_size=d.val_size, test_size=1, resolution=d.resolution
        )
        data = load_data(d.dataset, budget=budget, seed=c.study.seed)
        mean, std = list(data.mean), list(data.std)
    return preprocessing(
        c.data.dataset, mean=mean, std=std, input_shape=shape, resolution=c.data.resolution
    )


def _measure_onnx(path: Path, spec, trial, args: argparse.Namespace) -> dict:  # noqa: ANN001
    """Per-inference latency and energy of the exported file in ONNX Runtime on the CPU."""
    from nas.onnx_inference import measure_onnx_inference, onnx_inference_figures

    cost = measure_onnx_inference(
        path,
        input_shape=(spec.in_channels, spec.image_size, spec.image_size),
        min_duration_s=args.inference_min_duration_s,
    )
    from nas.record import Trial, TrialRecord

    rec = TrialRecord.of(trial)
    return onnx_inference_figures(
        cost,
        intensity_g_per_kwh=rec.get(Trial.intensity_g_per_kwh),
        intensity_source=rec.get(Trial.intensity_source),
    )
