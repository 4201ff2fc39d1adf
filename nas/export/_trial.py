"""Export a trial of a study: its trained model with ArchSpec, preprocessing, figures and carbon
label, into a new (or, with ``force``, existing) directory; ``econas export`` and
``nas.export_trial`` both call :func:`export_trial`.

The model is rebuilt from the trial's ArchSpec as it deployed it (pruned structure,
quantization) with its own trained weights from the study's artifact store: the full-budget
training's (``econas train``) when it has one, else the search's proxy weights (said on
``stream``). ONNX and pt2 files are checked against PyTorch; an ONNX file's inference cost is
measured in ONNX Runtime on the CPU.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from nas.errors import BadInputError
from nas.export._files import check_out_dir, publish, staging_dir
from nas.export._model import EXPORT_FORMATS

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from nas.record import TrialRecord
    from search_spaces import ArchSpec

WEIGHTS = ("proxy", "final")
TEST_INDICES = "test_indices.json"
# figures of a training (the weights it made), not of the architecture or the data set
_TRAINING_KEYS = (
    "accuracy",
    "test_accuracy",
    "kgco2e",
    "energy_kwh",
    "energy_source",
    "energy_kind",
    "hardware",
    "intensity_g_per_kwh",
    "intensity_source",
    "duration_s",
    "metered_fraction",
    "search_energy_kwh",
    "at_or_below_chance",
)


@dataclass(frozen=True)
class TrialExport:
    """What :func:`export_trial` wrote (``written``: what -> path) and from what."""

    written: dict[str, str]
    trial: int
    weights: str
    max_abs_diff_vs_pytorch: float | None  # onnx and pt2: checked against PyTorch

    def to_dict(self) -> dict[str, Any]:
        """The paths written, the trial, the weights and the check (``econas export --json``)."""
        return self.written | {
            "trial": self.trial,
            "weights": self.weights,
            "max_abs_diff_vs_pytorch": self.max_abs_diff_vs_pytorch,
        }


def export_trial(
    study: optuna.Study,
    number: int,
    *,
    out: str | Path,
    fmt: str = "onnx",
    weights: str | None = None,
    artifacts: str | None = None,
    force: bool = False,
    inference_min_duration_s: float = 1.0,
    stream: TextIO | None = None,
) -> TrialExport:
    """Export trial ``number`` of ``study`` as ``fmt`` (``onnx``, ``pt2`` or ``state_dict``)
    into ``out`` (module docstring). ``weights``: ``final`` or ``proxy`` (default: final when
    the trial has it); ``artifacts``: the artifact directory (default: the study's). Bad input
    raises :class:`~nas.errors.BadInputError` before anything is written."""
    out = Path(out)
    check_export(
        out,
        fmt=fmt,
        weights=weights,
        force=force,
        inference_min_duration_s=inference_min_duration_s,
    )
    with staging_dir(out) as tmp:
        written, check, used = _write(
            study,
            number,
            tmp,
            fmt=fmt,
            weights=weights,
            artifacts=artifacts,
            min_duration_s=inference_min_duration_s,
            stream=stream or sys.stderr,
        )
        written = {k: str(out / Path(v).relative_to(tmp)) for k, v in written.items()}
        publish(tmp, out)
    return TrialExport(written=written, trial=number, weights=used, max_abs_diff_vs_pytorch=check)


def check_export(
    out: Path,
    *,
    fmt: str = "onnx",
    weights: str | None = None,
    force: bool = False,
    inference_min_duration_s: float = 1.0,
) -> None:
    """The checks :func:`export_trial` makes before reading anything (bad input:
    :class:`~nas.errors.BadInputError`); ``econas export`` makes them before opening the study."""
    if fmt not in EXPORT_FORMATS:
        choices = ", ".join(repr(f) for f in EXPORT_FORMATS)
        raise BadInputError(f"export format: invalid choice: {fmt!r} (choose from {choices})")
    if weights not in (None, *WEIGHTS):
        choices = ", ".join(repr(w) for w in WEIGHTS)
        raise BadInputError(f"weights: invalid choice: {weights!r} (choose from {choices})")
    if not (math.isfinite(inference_min_duration_s) and inference_min_duration_s > 0):
        raise BadInputError("--inference-min-duration-s must be a number > 0")
    check_out_dir(out, force=force)


def _write(
    study: optuna.Study,
    number: int,
    out: Path,
    *,
    fmt: str,
    weights: str | None,
    artifacts: str | None,
    min_duration_s: float,
    stream: TextIO,
) -> tuple[dict[str, str], float | None, str]:
    """Write the export into ``out``; (written paths, check, the weights used)."""
    import torch

    from nas.carbon_label import build_carbon_label, write_carbon_label
    from nas.export._model import check_onnx, check_pt2, export_model
    from nas.record import Compression, TrialRecord
    from nas.study import study_config
    from nas.trial_model import get_trial, load_trial_model, weights_source

    trial = get_trial(study, number)
    full = TrialRecord.of(trial, study)
    weights = weights or ("final" if full.has_final else "proxy")
    model, spec = load_trial_model(study, trial, artifact_dir=artifacts, weights=weights)
    if weights == "proxy":
        print(_proxy_line(study, trial), file=stream)
    example = torch.randn(1, spec.in_channels, spec.image_size, spec.image_size)
    path = export_model(model, example_input=example, fmt=fmt, out_dir=out)
    check = None
    if fmt == "onnx":
        check = check_onnx(path, model, example)
    elif fmt == "pt2":
        check = check_pt2(path, model, example)
    (out / "arch_spec.json").write_text(spec.to_json() + "\n")
    prep = _preprocessing(study, full, spec, weights)
    (out / "preprocessing.json").write_text(json.dumps(prep, indent=2) + "\n")
    rec = TrialRecord.of(trial)
    structure = TrialRecord.of(weights_source(study, trial)[1]).get(Compression.pruned_structure)
    if structure:  # the spec alone can't rebuild pruned weights
        (out / "pruned_structure.json").write_text(structure + "\n")
    tested = _test_indices(study, full, weights, stream)
    if tested is not None:
        (out / TEST_INDICES).write_text(json.dumps(tested) + "\n")
    c = study_config(study)
    figures = shipped_figures(full, weights, proxy_train_size=c.data.train_size) | {
        "study": study.study_name,
        "format": fmt,
        "quantization": rec.quantization,
        "max_abs_diff_vs_pytorch": check,
        "test_indices": TEST_INDICES if tested is not None else None,
    }
    onnx_figures = _measure_onnx(path, spec, rec, min_duration_s) if fmt == "onnx" else None
    figures |= onnx_figures or {}
    (out / "figures.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    written = {
        "model": str(path),
        "arch_spec": str(out / "arch_spec.json"),
        "preprocessing": str(out / "preprocessing.json"),
        "figures": str(out / "figures.json"),
    }
    if tested is not None:
        written["test_indices"] = str(out / TEST_INDICES)
    projection = None if full.has_final else _projection(study, trial, stream)
    label = build_carbon_label(
        study,
        trial,
        model_format=fmt,
        onnx_inference=onnx_figures,
        weights=weights,
        projection=projection,
    )
    written |= {k: str(v) for k, v in write_carbon_label(out, label).items()}
    return written, check, weights


def _proxy_line(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
    from nas.study import study_config

    c = study_config(study)
    return (
        f"econas: trial {trial.number} is exported with its proxy weights ({c.train.epochs}-epoch "
        f"proxy on {c.data.train_size or 'all'} images); `econas train --trial {trial.number}` "
        "trains it at full budget"
    )


def _projection(
    study: optuna.Study, trial: optuna.trial.FrozenTrial, stream: TextIO
) -> dict[str, Any] | None:
    """What the full-budget training ([final]) is projected to cost, for the label."""
    import dataclasses

    from nas.final import FinalOptions, FinalRun, final_context
    from nas.study import study_config

    c = study_config(study)
    try:
        opts = FinalOptions.of(c)
        # a projection runs nothing: the study's device need not be on this machine
        context = final_context(c, dataclasses.replace(opts, device="cpu"), metered=False)
        return FinalRun(study, trial, context, opts).project().to_json()
    except BadInputError as exc:  # e.g. a proxy without a measured training phase
        print(f"econas: no projection of the full-budget training: {exc}", file=stream)
        return None


def _preprocessing(
    study: optuna.Study, rec: TrialRecord, spec: ArchSpec, weights: str
) -> dict[str, Any]:
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


def _measure_onnx(
    path: Path, spec: ArchSpec, rec: TrialRecord, min_duration_s: float
) -> dict[str, Any]:
    """Per-inference latency and energy of the exported file in ONNX Runtime on the CPU."""
    from nas.onnx_inference import measure_onnx_inference, onnx_inference_figures
    from nas.record import TrialAttrs

    cost = measure_onnx_inference(
        path,
        input_shape=(spec.in_channels, spec.image_size, spec.image_size),
        min_duration_s=min_duration_s,
    )
    return onnx_inference_figures(
        cost,
        intensity_g_per_kwh=rec.get(TrialAttrs.intensity_g_per_kwh),
        intensity_source=rec.get(TrialAttrs.intensity_source),
    )


def shipped_figures(
    rec: TrialRecord, weights: str, *, proxy_train_size: int | None = None
) -> dict[str, Any]:
    """``figures.json``'s figures: at the top level those of the shipped ``weights`` (their
    accuracies, the energy and kgCO2e of the training that made them, its meter and
    intensity) beside the architecture's (params, FLOPs, the search's inference
    measurement); the other training's figures under ``proxy`` (the search's proxy, when
    the full-budget weights are shipped) or ``final`` (a full-budget training not shipped).
    ``proxy_train_size``: the images the proxy trained on (the study's ``data.train_size``;
    None: the whole split less validation)."""
    from nas.pareto import trial_row
    from nas.record import Final, TrialAttrs, below_chance, finite

    row = trial_row(rec)
    final = row.pop("final", None)
    if weights == "proxy":
        return {
            "weights": "proxy",
            "figures_of": (
                "the shipped weights: the search's proxy training"
                + ("; the full-budget training (not shipped) is under 'final'" if final else "")
            ),
            **row,
            "epochs": rec.get(TrialAttrs.epochs),
            "train_size": proxy_train_size,
            **({"final": final} if final else {}),
        }
    f = rec.final
    proxy = {k: row.pop(k) for k in _TRAINING_KEYS if k in row}
    val = finite(f.get(Final.val_accuracy))
    top = {
        "accuracy": val,  # validation accuracy, as the search's
        "test_accuracy": finite(f.get(Final.test_accuracy)),
        "kgco2e": finite(f.get(Final.kgco2e)),
        "energy_kwh": finite(f.get(Final.energy_kwh)),
        "energy_source": f.get(Final.energy_source),
        "energy_kind": f.get(Final.energy_kind),
        "hardware": f.get(Final.hardware),
        "intensity_g_per_kwh": finite(f.get(Final.intensity_g_per_kwh)),
        "intensity_source": f.get(Final.intensity_source),
        "duration_s": finite(f.get(Final.duration_s)),
        "at_or_below_chance": below_chance(val, rec.chance_accuracy),
        "epochs": f.get(Final.epochs),
        "train_size": f.get(Final.train_size),
        "test_size": f.get(Final.test_size),
    }
    extra = {k: v for k, v in (final or {}).items() if k not in top and k != "val_accuracy"}
    return {
        "weights": "final",
        "figures_of": (
            "the shipped weights: the full-budget training (econas train); the search's "
            "proxy training of this trial is under 'proxy'"
        ),
        "trial": row.pop("trial"),
        "state": row.pop("state"),
        **top,
        **row,  # the architecture's and the data set's: params, flops, latency, chance
        **extra,  # the full-budget run's status, projection, lost energy, weights id
        "proxy": proxy | {"epochs": rec.get(TrialAttrs.epochs), "train_size": proxy_train_size},
    }


def _test_indices(
    study: optuna.Study, rec: TrialRecord, weights: str, stream: TextIO
) -> dict[str, Any] | None:
    """Which images of the data set's test split the shipped weights' ``test_accuracy`` was
    scored on (``test_indices.json``): the subset the search (proxy) or ``econas train``
    (final) drew, drawn again with the same seed and checked against the record."""
    from nas.data import DataBudget, drawn_test_indices, indices_digest
    from nas.errors import DataError
    from nas.record import Final, TrialAttrs, finite
    from nas.study import study_config

    c = study_config(study)
    d = c.data
    if weights == "final":
        f = rec.final
        size, seed = f.get(Final.test_size), f.get(Final.data_seed, c.study.seed)
        accuracy, digest = finite(f.get(Final.test_accuracy)), f.get(Final.test_indices_sha256)
    else:
        size, seed = d.test_size, c.study.seed
        accuracy, digest = rec.num(TrialAttrs.test_accuracy), None
    budget = DataBudget(train_size=None, val_size=d.val_size, test_size=size, resolution=None)
    try:
        indices, split = drawn_test_indices(d.dataset, budget=budget, seed=int(seed))
    except DataError as exc:
        print(f"econas: no {TEST_INDICES}: {exc}", file=stream)
        return None
    if (size is not None and len(indices) != size) or (
        digest is not None and indices_digest(indices) != digest
    ):
        print(
            f"econas: no {TEST_INDICES}: the test subset drawn again is not the one the "
            f"{weights} weights were scored on (the data set changed?)",
            file=stream,
        )
        return None
    return {
        "dataset": d.dataset,
        "split": "test",
        "split_size": split,
        "images": len(indices),
        "weights": weights,
        "test_accuracy": accuracy,
        "how": (
            "test_accuracy is the share of the test split's images at these positions (0-based, "
            "in the data set's own order) that the model classifies as labelled, each image "
            "prepared as preprocessing.json says"
        ),
        "indices": [int(i) for i in indices],
    }
