"""econas's default multi-objective search strategy, as Optuna-compatible components.

- :class:`EcoSampler`: an Optuna sampler for (accuracy up, energy down) studies: never
  re-proposes a known (or isomorphic) candidate, predicts each candidate's training cost
  before training (any ``predict_cost(params)`` callable, calibrated on the study), fits a
  Gaussian process to accuracy, and picks the largest expected hypervolume improvement per
  predicted kWh, skipping candidates that cannot improve the front at their predicted cost.
- :class:`ArchSampler`: the same strategy for define-by-run architecture spaces (conditional
  parameters), proposing whole architectures drawn from the space: ``[study] sampler = "eco"``.
- :class:`SuccessiveHalving`: asynchronous successive halving over epochs with promotion by
  non-dominated rank; a promoted candidate continues from its checkpoint.

Each mechanism is a switch (``dedupe``, ``cost_aware``, ``skip_dominated``, ``surrogate``; the
halving policy used or not) so a benchmark can ablate it (``benchmarks/search_tabular.py``).
Independent of the pipeline: nothing here trains, meters or reads a config.
"""

from __future__ import annotations

from nas.search_strategy._acquisition import ehvi, expected_improvement_above
from nas.search_strategy._arch_sampler import ArchSampler, Described
from nas.search_strategy._halving import Paused, SuccessiveHalving
from nas.search_strategy._sampler import SURROGATES, EcoSampler

__all__ = [
    "SURROGATES",
    "ArchSampler",
    "Described",
    "EcoSampler",
    "Paused",
    "SuccessiveHalving",
    "ehvi",
    "expected_improvement_above",
]
