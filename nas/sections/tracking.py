"""``[tracking]``: send every finished trial to an experiment tracker (MLflow).

::

    [tracking]
    mlflow = "sqlite:///mlflow.db"   # or file:./mlruns, http://host:5000 (--mlflow URI overrides)
    experiment = "quickstart"        # MLflow experiment; default: the study's name

Each trial becomes one MLflow run (params, objectives, every phase's kWh and kgCO2e, carbon
intensity and its source, provenance as tags); the report and the front trials' carbon labels
are attached at the end of the search. Tracking never changes what a trial means: it is not
part of the study's fingerprint, nor of the config stored with the study.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.errors import ConfigError


@dataclass(frozen=True)
class TrackingSection:
    mlflow: str | None = None
    experiment: str | None = None

    @property
    def active(self) -> bool:
        return self.mlflow is not None

    def check(self) -> None:
        if self.mlflow is not None and not self.mlflow.strip():
            raise ConfigError("tracking.mlflow must be a tracking URI (e.g. sqlite:///mlflow.db)")
        if self.experiment is not None and not self.experiment.strip():
            raise ConfigError("tracking.experiment must be a non-empty name")
        if self.experiment is not None and self.mlflow is None:
            raise ConfigError("tracking.experiment needs tracking.mlflow (a tracking URI)")
