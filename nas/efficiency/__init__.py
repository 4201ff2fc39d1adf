"""Spend less energy on the search: reuse duplicate configurations, screen candidates with
zero-cost proxies, and stop dominated trials early in multi-objective studies.

Enabled per study by the ``[efficiency]`` config section (:class:`EfficiencySection`), run
in every trial by :class:`EfficiencyStep`.
"""

from __future__ import annotations

from nas.efficiency.early_stop import nondominated_ranks, should_stop
from nas.efficiency.proxies import PROXIES, compute_proxy, grad_norm, naswot, synflow
from nas.efficiency.reuse import Match, find_match, trial_fingerprint
from nas.efficiency.step import EfficiencyStep
from nas.sections.efficiency import EfficiencySection
from nas.stats import quantile, spearman

__all__ = [
    "PROXIES",
    "EfficiencySection",
    "EfficiencyStep",
    "Match",
    "compute_proxy",
    "find_match",
    "grad_norm",
    "naswot",
    "nondominated_ranks",
    "quantile",
    "should_stop",
    "spearman",
    "synflow",
    "trial_fingerprint",
]
