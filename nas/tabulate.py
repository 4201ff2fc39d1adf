"""``econas tabulate``: a tabular benchmark of a study's own space, trained and metered here.

N distinct architectures are drawn from the study's spaces (``[search]``, with its options)
by a random sampler seeded with ``study.seed``, so a rerun draws the same ones first (and a
larger N extends them). Each is trained from scratch by the study's recipe (``[train]``,
``[data]``'s subsets, the study's device and meter) in one run to the largest of the epochs
asked for, its one-cycle schedule over that run, and evaluated (validation and test accuracy)
at each of them. ``energy_kwh`` and ``duration_s`` are the training epochs' metered energy and
time, cumulative (the evaluations are not counted). Repeat r trains with seed
``study.seed + r``.

The table (:func:`nas.tabular.write_table`'s format) has one parameter, ``architecture``
(the spec's compact string), and its ``meta.json`` keeps every architecture's ``ArchSpec``
and the study's config fingerprint. Writing is resumable: every (architecture, repeat) is
written whole when done; a rerun skips those already there and trains only the rest. A
rerun with a config that decides other architectures (another fingerprint) is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import BadInputError, InvalidArchError, TrialFailure
from nas.tabular import Evaluation, Table, TableError, load_table, write_table

if TYPE_CHECKING:  # pragma: no cover
    from nas.config import Config
    from nas.context import RunContext
    from search_spaces import ArchSpec, SearchSpace

log = logging.getLogger(__name__)

PARAM = "architecture"
DRAWS_PER_ARCH = 200  # draws allowed per architecture asked for, before giving up
WINDOW = "tabulate:epoch"


@dataclass(frozen=True)
class Candidate:
    arch: str  # the table's id: a hash of the spec
    space: str
    spec: ArchSpec


@dataclass(frozen=True)
class TabulateResult:
    table: Table
    trained: list[str]  # "arch repeat r" trained by this run
    failed: dict[str, str]  # arch -> why it could not be trained (not in the table)
    energy_kwh: float  # what this run's training cost (the table's figures, summed)


def parse_epochs(text: str) -> list[int]:
    """``"1,2,4"`` -> ``[1, 2, 4]``: distinct non-negative integers, the largest >= 1."""
    try:
        epochs = sorted({int(p) for p in text.split(",") if p.strip()})
    except ValueError:
        raise BadInputError(f"--epochs {text!r} must be integers separated by commas") from None
    if not epochs or epochs[0] < 0 or epochs[-1] < 1:
        raise BadInputError(f"--epochs {text!r}: non-negative integers, the largest >= 1")
    if epochs[-1] > 10_000:
        raise BadInputError(f"--epochs {text!r}: at most 10000 epochs")
    return epochs


def check_tabulate_config(config: Config) -> None:
    """What a table of architectures cannot hold: refused before any work."""
    if config.search.benchmark is not None:
        raise BadInputError("tabulate trains a study's own spaces; this one is a table already")
    if config.compression.enabled or config.federated.enabled:
        raise BadInputError(
            "tabulate tabulates architectures trained by [train]; turn [compression] and "
            "[federated] off (their choices are not table parameters)"
        )


def draw_architectures(
    spaces: Mapping[str, SearchSpace],
    n: int,
    *,
    seed: int,
    in_channels: int,
    num_classes: int,
    image_size: int,
) -> list[Candidate]:
    """``n`` distinct valid architectures, in the order a seeded random sampler draws them
    (the same ``seed`` and spaces give the same list; a larger ``n`` extends it)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    names = list(spaces)
    out: list[Candidate] = []
    seen: set[str] = set()
    for _ in range(n * DRAWS_PER_ARCH):
        if len(out) == n:
            break
        trial = study.ask()
        name = trial.suggest_categorical("space", names) if len(names) > 1 else names[0]
        space = spaces[name]
        spec = space.sample(
            trial,
            in_channels=in_channels,
            num_classes=num_classes,
            image_size=image_size,
            prefix=f"{name}.",
        )
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        try:
            space.validate(spec)
        except InvalidArchError:
            continue
        text = spec.encode()
        if text in seen:
            continue
        seen.add(text)
        arch = hashlib.sha256(spec.to_json().encode()).hexdigest()[:16]
        out.append(Candidate(arch=arch, space=name, spec=spec))
    if len(out) < n:
        raise BadInputError(
            f"--archs {n}: the study's spaces gave only {len(out)} distinct valid "
            f"architectures in {n * DRAWS_PER_ARCH} draws; ask for fewer or widen [search]"
        )
    return out


def table_meta(config: Config, ctx: RunContext, name: str, candidates: list[Candidate]) -> dict:
    """``meta.json`` of the table (every key but ``max_epochs``)."""
    assert ctx.meter is not None
    d, t = config.data, config.train
    return {
        "name": name,
        "source": f"econas tabulate of study {config.study.name!r} "
        f"(config fingerprint {config.fingerprint()})",
        "licence": f"the data set's ({d.dataset})",
        "task": f"{d.dataset} image classification: {len(ctx.data.train)} training, "
        f"{len(ctx.data.val)} validation, {len(ctx.data.test)} test images at "
        f"{ctx.data.image_size} px; spaces {', '.join(config.search.spaces)}",
        "hardware": ctx.meter.hardware,
        "energy_kind": ctx.meter.kind,
        "meter": ctx.meter.source,
        "energy_covers": "training only (evaluations not counted), cumulative from the start "
        "of training; one run to max_epochs with the one-cycle schedule over it, evaluated at "
        "each recorded epoch",
        "objective": "val_accuracy",
        "num_classes": ctx.data.num_classes,
        "config_fingerprint": config.fingerprint(),
        "recipe": {
            "optimizer": t.optimizer,
            "lr": t.lr,
            "weight_decay": t.weight_decay,
            "batch_size": d.batch_size,
            "device": str(ctx.device),
            "seed": config.study.seed,
        },
        "architectures": {c.arch: c.spec.to_dict() for c in candidates},
    }


def _check_resume(out: Path, fingerprint: str) -> None:
    meta = out / "meta.json"
    if not meta.exists():
        return
    try:
        old = json.loads(meta.read_text(encoding="utf-8")).get("config_fingerprint")
    except (OSError, ValueError, AttributeError):
        raise TableError(f"{meta}: not a table this command wrote; choose another --out") from None
    if old != fingerprint:
        raise TableError(
            f"{meta}: written from another config (fingerprint {old}, this one's {fingerprint}); "
            "choose another --out"
        )


def make_trainer(
    ctx: RunContext, spaces: Mapping[str, SearchSpace], by_text: Mapping[str, Candidate]
) -> Callable[[Mapping[str, Any], int, Sequence[int]], list[Evaluation]]:
    """``train(encoding, repeat, epochs)`` for :func:`nas.tabular.write_table`: the candidate
    trained from scratch with seed ``ctx.seed + repeat``, metered per epoch."""
    import torch

    meter, work = ctx.meter, ctx.workload
    assert meter is not None

    def train(encoding: Mapping[str, Any], repeat: int, epochs: Sequence[int]) -> list[Evaluation]:
        c = by_text[str(encoding[PARAM])]
        seed = ctx.seed + repeat
        torch.manual_seed(seed)
        model = work.build(spaces[c.space], c.spec)
        params = work.cost(model, (1, *ctx.input_shape)).params
        spent = {"kwh": 0.0, "s": 0.0}
        evals: list[Evaluation] = []

        def evaluation(done: int) -> None:
            val = work.evaluate(model, ctx.data.val, device=ctx.device)
            test = work.evaluate(model, ctx.data.test, device=ctx.device)
            evals.append(
                Evaluation(
                    epochs=done,
                    val_accuracy=val,
                    test_accuracy=test,
                    energy_kwh=spent["kwh"],
                    duration_s=spent["s"],
                    params=params,
                )
            )

        def epoch_end(epoch: int, loss: float) -> None:
            m = meter.end_window(WINDOW)
            spent["kwh"] += m.energy_kwh
            spent["s"] += m.duration_s
            if epoch + 1 in epochs:
                evaluation(epoch + 1)
            if epoch + 1 < max(epochs):
                meter.begin_window(WINDOW, restart=True)

        if 0 in epochs:
            evaluation(0)
        plan = ctx.plan(seed=seed).replace(epochs=max(epochs), epoch_callbacks=(epoch_end,))
        meter.begin_window(WINDOW, restart=True)
        try:
            work.train(model, ctx.data.train, plan)
        finally:
            if WINDOW in meter.open_windows:
                meter.end_window(WINDOW, cancel=True)
        return evals

    return train


def tabulate(
    config: Config,
    *,
    archs: int,
    epochs: Sequence[int],
    out: str | Path,
    repeats: int = 1,
    name: str | None = None,
    progress: Callable[[str], None] | None = None,
    context: RunContext | None = None,
) -> TabulateResult:
    """Train ``archs`` architectures of ``config``'s spaces at ``epochs`` (``repeats`` times)
    and write (or complete) the table in ``out`` (see the module docstring)."""
    from nas.runs import build_context

    if archs < 1 or repeats < 1:
        raise BadInputError("--archs and --repeats must be >= 1")
    check_tabulate_config(config)
    path = Path(out)
    table_name = name or path.resolve().name
    if not table_name or any(c in table_name for c in "/\\:\n"):
        raise BadInputError(f"table name {table_name!r} must not contain '/', '\\', ':'")
    if path.exists() and not path.is_dir():
        raise BadInputError(f"--out {path}: not a directory")
    _check_resume(path, config.fingerprint())
    ctx = context or build_context(config)  # device, meter, data: bad input before any file
    spaces = ctx.workload.search_spaces(config)
    d = ctx.data
    candidates = draw_architectures(
        spaces,
        archs,
        seed=config.study.seed,
        in_channels=d.in_channels,
        num_classes=d.num_classes,
        image_size=d.image_size,
    )
    by_text = {c.spec.encode(): c for c in candidates}
    meta = table_meta(config, ctx, table_name, candidates)
    train = make_trainer(ctx, spaces, by_text)
    trained: list[str] = []
    failed: dict[str, str] = {}
    assert ctx.meter is not None
    energy = {"kwh": 0.0}

    def counting(encoding: Mapping[str, Any], repeat: int, eps: Sequence[int]) -> list[Evaluation]:
        evals = train(encoding, repeat, eps)
        energy["kwh"] += evals[-1].energy_kwh
        trained.append(f"{by_text[str(encoding[PARAM])].arch} repeat {repeat}")
        return evals

    fresh = not (path / "meta.json").exists()
    written = False
    for i, c in enumerate(candidates, start=1):
        step = _numbered(progress, f"[{i}/{len(candidates)}] ")
        try:  # one architecture at a time: one that fails is left out, the others written
            write_table(
                path,
                meta=meta,
                encodings=[(c.arch, {PARAM: c.spec.encode()})],
                train=counting,
                epochs=epochs,
                repeats=repeats,
                progress=step,
            )
            written = True
        except TrialFailure as exc:
            failed[c.arch] = f"{exc.reason}: {exc}"
            log.warning("tabulate: %s (%s) left out: %s", c.arch, c.spec.encode(), exc)
    if not written:
        if fresh:  # nothing half-made left behind
            (path / "meta.json").unlink(missing_ok=True)
        raise TableError(f"{path}: no architecture could be trained ({'; '.join(failed.values())})")
    return TabulateResult(
        table=load_table(path), trained=trained, failed=failed, energy_kwh=energy["kwh"]
    )


def _numbered(progress: Callable[[str], None] | None, head: str) -> Callable[[str], None] | None:
    if progress is None:
        return None
    return lambda line: progress(head + line)
