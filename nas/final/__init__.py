"""From proxy to product: train a chosen trial at full budget (``econas train``).

    options = FinalOptions.of(config, epochs=5)
    results = train_trials(study, [3], config, options)   # [nas.trained.TrainedTrial]
    results[0].test_accuracy, results[0].to_dict()         # .to_dict(): econas train --json

or, one trial by hand::

    run = FinalRun(study, trial, final_context(config, options), options)
    projection = run.project()       # before spending: energy and kgCO2e
    record = run.run(projection)     # metered, checkpointed, resumable

The record (``nas.record.Final`` names) is stored in the study and merged into the trial's
record by :class:`nas.record.TrialRecord`; ``econas export`` ships its weights. A projection's
range is the spread ``benchmarks/projection.py`` measured on the same hardware class
(``SPREAD_FILE``, package data; ``$ECONAS_PROJECTION_SPREAD`` names another file).
"""

from __future__ import annotations

from nas.final._checkpoint import Checkpoint, CheckpointDir
from nas.final._options import BudgetStop, FinalOptions, final_context, final_plan
from nas.final._project import Projection, project_energy
from nas.final._run import FinalRun
from nas.final._spread import FORMAT as SPREAD_FORMAT
from nas.final._spread import SPREAD_FILE, hardware_class, load_spread, spread_for
from nas.final._train import summary, top_of_front, train_trials

__all__ = [
    "BudgetStop",
    "Checkpoint",
    "CheckpointDir",
    "FinalOptions",
    "FinalRun",
    "Projection",
    "SPREAD_FILE",
    "SPREAD_FORMAT",
    "final_context",
    "final_plan",
    "hardware_class",
    "load_spread",
    "project_energy",
    "spread_for",
    "summary",
    "top_of_front",
    "train_trials",
]
