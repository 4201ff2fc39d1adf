"""Rebuild a trial's trained model from its storage: ArchSpec + weights from the artifact store."""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import torch
from torch import nn

from nas.errors import BadInputError
from nas.record import Final, TrialAttrs, TrialRecord
from search_spaces import ArchSpec, build_model

log = logging.getLogger(__name__)

_COMPLETE = (optuna.trial.TrialState.COMPLETE,)


def get_trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    for trial in study.get_trials(deepcopy=False):
        if trial.number == number:
            return trial
    raise BadInputError(f"study {study.study_name!r} has no trial {number}")


def artifact_store_for(study: optuna.Study, override: str | None = None):  # noqa: ANN201
    from nas.study import study_artifact_dir

    path = str(override or study_artifact_dir(study) or "")
    if not path or not Path(path).is_dir():
        raise BadInputError(f"artifact directory {path!r} of study {study.study_name!r} not found")
    return optuna.artifacts.FileSystemArtifactStore(str(path))


def weights_source(
    study: optuna.Study, trial: optuna.trial.FrozenTrial
) -> tuple[optuna.Study, optuna.trial.FrozenTrial]:
    """Where ``trial``'s weights are: its own, or those of the trial its result was reused
    from (in this study or another study of the same storage)."""
    rec = TrialRecord.of(trial)
    source = rec.reused_from
    if source is None or rec.get(TrialAttrs.weights_artifact_id):
        return study, trial
    name, number = source
    if name and name != study.study_name:
        try:
            study = optuna.load_study(study_name=name, storage=study._storage)
        except KeyError:
            raise BadInputError(
                f"trial {trial.number} reused trial {number} of study {name!r}, which is gone"
            ) from None
    return study, get_trial(study, number)


WEIGHTS = ("proxy", "final")


def load_trial_model(
    study: optuna.Study,
    trial: optuna.trial.FrozenTrial,
    *,
    artifact_dir: str | None = None,
    weights: str | None = None,
) -> tuple[nn.Module, ArchSpec]:
    """The trial's model rebuilt from its ArchSpec with its trained weights (CPU, eval).

    ``weights``: ``"final"`` (its full-budget training, ``econas train``), ``"proxy"`` (what
    the search trained), or None: final when it exists, else proxy.
    """
    if trial.state != optuna.trial.TrialState.COMPLETE:
        raise BadInputError(f"trial {trial.number} is {trial.state.name}, not COMPLETE")
    if weights not in (None, *WEIGHTS):
        raise BadInputError(f"weights {weights!r} are unknown; use one of {list(WEIGHTS)}")
    final = TrialRecord.of(trial, study)
    if weights == "final" and not final.has_final:
        raise BadInputError(
            f"trial {trial.number} has no final weights; train it with `econas train --trial "
            f"{trial.number}` (or export --weights proxy)"
        )
    if weights != "proxy" and final.has_final:
        source = trial
        rec = TrialRecord.of(trial)
        artifact_id = final.final[Final.weights_artifact_id]
    else:
        study, source = weights_source(study, trial)
        rec = TrialRecord.of(source)
        artifact_id = rec.get(TrialAttrs.weights_artifact_id)
    raw = rec.get(TrialAttrs.arch_spec)
    if raw is None or artifact_id is None:
        raise BadInputError(f"trial {trial.number} has no stored architecture/weights")
    check_artifact_id(artifact_id, trial.number)
    from nas.stored_spec import stored_spec

    spec = stored_spec(raw, f"trial {trial.number}")  # bounded before anything is allocated
    from nas.compression import deployed_layout  # pruned structure + quantization, if any

    shape = (spec.in_channels, spec.image_size, spec.image_size)
    model = deployed_layout(build_model(spec), rec, input_shape=shape)
    store = artifact_store_for(study, artifact_dir if source is trial else None)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights.pt"
        try:
            optuna.artifacts.download_artifact(
                artifact_store=store, file_path=str(path), artifact_id=artifact_id
            )
        except Exception as exc:  # noqa: BLE001 - ArtifactNotFound, unreadable file...
            raise BadInputError(
                f"trial {trial.number}: weights artifact {artifact_id} not found in the "
                f"artifact store ({type(exc).__name__})"
            ) from None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)  # no unpickling
            model.load_state_dict(state)
        except Exception as exc:  # noqa: BLE001 - truncated file, another model's weights
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise BadInputError(
                f"trial {trial.number}: weights artifact {artifact_id} does not load ({reason})"
            ) from None
    return model.eval(), spec


_ARTIFACT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def check_artifact_id(artifact_id: object, number: int) -> str:
    """An artifact id from storage is untrusted: only a plain name (Optuna's ids are UUIDs),
    never a path such as ``../../etc/passwd``."""
    if not isinstance(artifact_id, str) or not _ARTIFACT_ID.fullmatch(artifact_id):
        raise BadInputError(
            f"trial {number}: stored weights artifact id {str(artifact_id)[:80]!r} is malformed"
        )
    return artifact_id


def best_trial_model(study: optuna.Study) -> tuple[int, Callable[[], nn.Module]] | None:
    """(number, loader of its model) of the study's most accurate finished trial with saved
    weights (the earliest on ties): the teacher ``[compression] teacher = "best"`` uses."""
    done = [
        (rec.accuracy, -rec.number, t)
        for t in study.get_trials(deepcopy=False, states=_COMPLETE)
        if (rec := TrialRecord.of(t)).accuracy is not None
        and rec.get(TrialAttrs.weights_artifact_id)
    ]
    if not done:
        return None
    *_, best = max(done, key=lambda x: (x[0], x[1]))
    return best.number, lambda: load_trial_model(study, best)[0]


def upload_weights(store, model: nn.Module, name: str, owner) -> str:  # noqa: ANN001
    """Save ``model``'s state_dict (on the CPU; quantized modules' packed params and version
    metadata included, so it loads back with ``weights_only=True``) to the artifact ``store``
    under ``owner`` (a trial, or a study for a finished trial's final weights); its id."""
    import warnings

    state = model.state_dict()
    cpu = type(state)((k, v.detach().cpu() if torch.is_tensor(v) else v) for k, v in state.items())
    meta = getattr(state, "_metadata", None)
    if meta is not None:
        cpu._metadata = meta  # type: ignore[attr-defined]
    tracked = _TrackedStore(store)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TypedStorage is deprecated")  # int8 params
        path = Path(tmp) / f"{name}.pt"
        torch.save(cpu, path)
        try:
            return optuna.artifacts.upload_artifact(
                artifact_store=tracked,
                file_path=str(path),
                study_or_trial=owner,
                mimetype="application/octet-stream",
            )
        except BaseException:  # a full disk, a read-only storage, Ctrl-C: no orphan file
            tracked.remove_written()
            raise


class _TrackedStore:
    """An artifact store that remembers what it wrote, so that an upload that fails (the
    file cut short by a full disk, or written but its owner's attr refused by the storage)
    removes it: every artifact file has an owner."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.written: list[str] = []

    def write(self, artifact_id: str, content_body: Any) -> None:
        self.written.append(artifact_id)
        self.store.write(artifact_id, content_body)

    def remove_written(self) -> None:
        for artifact_id in self.written:
            try:
                self.store.remove(artifact_id)
            except Exception:  # noqa: BLE001 - best effort; the first error is what matters
                log.debug("could not remove artifact %s", artifact_id, exc_info=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)
