"""econas: energy-aware neural architecture search (accuracy versus measured kgCO2e).

The Python front door, the same work as the ``econas`` verbs::

    import nas

    config = nas.load_config("quickstart")        # a bundled study (nas.list_studies()) or a TOML file
    result = nas.run_search(config, trials=4)     # resumes; result.study is an optuna.Study
    for rec in nas.pareto_front(result.study):    # nas.TrialRecord: the stored record, typed
        print(rec.number, rec.accuracy, rec.kgco2e, rec.get("energy_kind"))
    records = nas.trial_records(result.study)     # every trial, phases included (rec.phases)
    study = nas.load_study(config)                # later: read it back from its storage
    trained = nas.train_trial(config, trial=3)   # nas.TrainedTrial: .test_accuracy, .kgco2e
    nas.export_trial(config, trial=3, out="model/", fmt="onnx")  # model + carbon label

Importing ``nas`` is cheap: the names above load on first use, and torch only with the
functions that train or build models.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# OpenMP threads that spin while they wait burn CPU time, and on a busy machine (a descheduled
# peer thread) they spin for whole time slices: the estimate meter (CPU time x watts per core)
# charged a 2-thread epoch 7-10x its quiet cost on a loaded 2-core host (issue 27). Every econas
# process waits passively unless told otherwise, so a proxy and the final training it projects
# are measured alike; set before torch loads its OpenMP runtime (no effect if it already has).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("KMP_BLOCKTIME", "0")

if TYPE_CHECKING:  # pragma: no cover
    from nas.api import (
        export_trial,
        list_studies,
        load_config,
        load_study,
        pareto_front,
        run_search,
        train_trial,
        trial_records,
    )
    from nas.config import Config
    from nas.errors import BadInputError, ConfigError, EconasError
    from nas.record import TrialRecord
    from nas.search import SearchResult
    from nas.trained import TrainedTrial

_LAZY: dict[str, str] = {
    "load_config": "nas.api",
    "list_studies": "nas.api",
    "run_search": "nas.api",
    "load_study": "nas.api",
    "pareto_front": "nas.api",
    "trial_records": "nas.api",
    "export_trial": "nas.api",
    "train_trial": "nas.api",
    "Config": "nas.config",
    "TrialRecord": "nas.record",
    "SearchResult": "nas.search",
    "TrainedTrial": "nas.trained",
    "EconasError": "nas.errors",
    "BadInputError": "nas.errors",
    "ConfigError": "nas.errors",
}

__all__ = [
    "BadInputError",
    "Config",
    "ConfigError",
    "EconasError",
    "SearchResult",
    "TrainedTrial",
    "TrialRecord",
    "__version__",
    "export_trial",
    "list_studies",
    "load_config",
    "load_study",
    "pareto_front",
    "run_search",
    "train_trial",
    "trial_records",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib import metadata

        try:
            return metadata.version("econas")
        except metadata.PackageNotFoundError:  # a checkout on PYTHONPATH, not installed
            return "0+unknown"
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nas' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # next time without __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
