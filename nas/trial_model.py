"""Rebuild a trial's trained model from its storage: ArchSpec + weights from the artifact store."""

from __future__ import annotations

import tempfile
from pathlib import Path

import optuna
import torch
from torch import nn

from nas.errors import BadInputError
from nas.objective import WEIGHTS_ATTR
from nas.study import ARTIFACT_DIR_ATTR
from search_spaces import ArchSpec, build_model


def get_trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    for trial in study.get_trials(deepcopy=False):
        if trial.number == number:
            return trial
    raise BadInputError(f"study {study.study_name!r} has no trial {number}")


def artifact_store_for(study: optuna.Study, override: str | None = None):  # noqa: ANN201
    path = override or study.user_attrs.get(ARTIFACT_DIR_ATTR)
    if not path or not Path(path).is_dir():
        raise BadInputError(f"artifact directory {path!r} of study {study.study_name!r} not found")
    return optuna.artifacts.FileSystemArtifactStore(str(path))


def load_trial_model(
    study: optuna.Study, trial: optuna.trial.FrozenTrial, *, artifact_dir: str | None = None
) -> tuple[nn.Module, ArchSpec]:
    """The trial's model rebuilt from its ArchSpec with its own trained weights (CPU, eval)."""
    if trial.state != optuna.trial.TrialState.COMPLETE:
        raise BadInputError(f"trial {trial.number} is {trial.state.name}, not COMPLETE")
    raw = trial.user_attrs.get("arch_spec")
    artifact_id = trial.user_attrs.get(WEIGHTS_ATTR)
    if raw is None or artifact_id is None:
        raise BadInputError(f"trial {trial.number} has no stored architecture/weights")
    spec = ArchSpec.from_json(raw)
    from nas.compression import deployed_layout  # pruned structure + quantization, if any

    shape = (spec.in_channels, spec.image_size, spec.image_size)
    model = deployed_layout(build_model(spec), trial.user_attrs, input_shape=shape)
    store = artifact_store_for(study, artifact_dir)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights.pt"
        optuna.artifacts.download_artifact(
            artifact_store=store, file_path=str(path), artifact_id=artifact_id
        )
        state = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle code
    model.load_state_dict(state)
    return model.eval(), spec
