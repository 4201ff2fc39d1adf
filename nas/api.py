"""The Python front door, re-exported by :mod:`nas` (``import nas``; see its docstring).

Every function takes the same inputs as the CLI verb of the same purpose and raises
:class:`~nas.errors.BadInputError` where the verb would exit with 2. Nothing heavy is imported
at module level: torch and optuna load when a function that needs them is called.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.bundled import list_studies
from nas.config import Config, load_config
from nas.errors import BadInputError

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from nas.record import TrialRecord
    from nas.search import SearchResult
    from nas.trained import TrainedTrial

ConfigLike = Config | str | Path

__all__ = [
    "export_trial",
    "list_studies",
    "load_config",
    "load_study",
    "pareto_front",
    "run_search",
    "train_trial",
    "trial_records",
]


def _config(config: ConfigLike) -> Config:
    return config if isinstance(config, Config) else load_config(config)


def run_search(
    config: ConfigLike,
    *,
    trials: int | None = None,
    mlflow: str | None = None,
    progress: bool = True,
) -> SearchResult:
    """Run (or resume) the study of ``config`` (a :class:`Config`, a TOML file or a bundled
    name) until it has ``trials`` finished trials (default ``study.trials``), as
    ``econas search`` does; ``mlflow`` logs every trial to that tracking URI.

    Returns a :class:`nas.search.SearchResult`: ``.study`` (an ``optuna.Study``),
    ``.new_trials``, ``.wall_s``.
    """
    from nas.search import run_search as _run

    cfg = _config(config)
    if trials is not None:
        if trials < 1:
            raise BadInputError("trials must be >= 1")
        cfg = cfg.replace("study", trials=trials)
    if mlflow is not None:
        cfg = cfg.replace("tracking", mlflow=mlflow)
    return _run(cfg, progress=progress)


def load_study(
    config: ConfigLike | None = None,
    *,
    storage: str | None = None,
    study_name: str | None = None,
) -> optuna.Study:
    """An existing study, from its config (file, bundled name or :class:`Config`) or from a
    storage URL (with ``study_name`` when it holds several)."""
    from nas.study import load_existing_study

    if config is not None:
        cfg = _config(config)
        return load_existing_study(storage or cfg.storage_url, study_name or cfg.study.name)
    if storage is None:
        raise BadInputError("give a study config or storage= (with study_name=)")
    return load_existing_study(storage, study_name)


def pareto_front(study: optuna.Study) -> list[TrialRecord]:
    """The study's Pareto-optimal trials (reused duplicates listed once, by their source), as
    :class:`nas.record.TrialRecord`, merged with their full-budget training if any."""
    from nas.pareto import pareto_trials

    return pareto_trials(study)


def trial_records(study: optuna.Study, *, states: Iterable[str] | None = None) -> list[TrialRecord]:
    """Every trial's :class:`nas.record.TrialRecord` in trial order; ``states`` keeps only
    those named (``"COMPLETE"``, ``"PRUNED"``, ``"FAIL"``, ``"RUNNING"``)."""
    import optuna

    from nas.record import records

    wanted = None
    if states is not None:
        try:
            wanted = tuple(optuna.trial.TrialState[s.upper()] for s in states)
        except KeyError as exc:
            raise BadInputError(f"unknown trial state {exc.args[0]!r}") from None
    return records(study.get_trials(deepcopy=False), states=wanted, study=study)


def export_trial(
    config: ConfigLike | None = None,
    *,
    trial: int,
    out: str | Path,
    fmt: str = "onnx",
    weights: str | None = None,
    storage: str | None = None,
    study_name: str | None = None,
) -> dict[str, Any]:
    """``econas export``: the trial's model (``onnx``, ``pt2`` or ``state_dict``) with its
    ArchSpec, preprocessing, figures and carbon label in ``out``; returns what was written
    (:func:`nas.export.export_trial`)."""
    from nas.export import check_export
    from nas.export import export_trial as _export

    check_export(Path(out), fmt=fmt, weights=weights)  # before the study is opened
    study = load_study(config, storage=storage, study_name=study_name)
    return _export(study, trial, out=out, fmt=fmt, weights=weights).to_dict()


def train_trial(
    config: ConfigLike | None = None,
    *,
    trial: int,
    epochs: int | None = None,
    train_size: int | str | None = None,
    max_kgco2e: float | None = None,
    dry_run: bool = False,
    device: str | None = None,
    meter: str | None = None,
    storage: str | None = None,
    study_name: str | None = None,
) -> TrainedTrial:
    """``econas train``: the trial at full budget (projected first, metered, checkpointed,
    resumable); ``dry_run`` stops after the projection. Returns a
    :class:`nas.TrainedTrial` (``.test_accuracy``, ``.kgco2e``, ``.energy_kind``,
    ``.projected_kgco2e``, ...; ``.to_dict()`` is the verb's ``--json``). Its ``[final]``
    section is ``config``'s, else the study's."""
    from nas.final import FinalOptions, train_trials
    from nas.study import study_config

    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int)):
        raise BadInputError(f"epochs must be a whole number, not {epochs!r}")
    if isinstance(train_size, bool) or not (
        isinstance(train_size, int) or train_size in (None, "all")
    ):
        raise BadInputError(f"train_size must be 'all' or a number, not {train_size!r}")
    study = load_study(config, storage=storage, study_name=study_name)
    cfg = _config(config) if config is not None else study_config(study)
    opts = FinalOptions.of(
        cfg,
        epochs=epochs,
        train_size=train_size,
        device=device,
        meter=meter,
        max_kgco2e=max_kgco2e,
    )
    return train_trials(study, [trial], cfg, opts, dry_run=dry_run)[0]
