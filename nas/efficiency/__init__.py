"""Spend less energy on the search: reuse duplicate configurations, screen candidates with
zero-cost proxies, and stop dominated trials early in multi-objective studies.

Enabled per study by the ``[efficiency]`` config section (:class:`EfficiencySection`).
"""

from __future__ import annotations

from nas.efficiency.early_stop import nondominated_ranks, should_stop
from nas.efficiency.plugin import EfficiencyPlugin, EfficiencySection, quantile
from nas.efficiency.proxies import PROXIES, compute_proxy, grad_norm, naswot, spearman, synflow
from nas.efficiency.reuse import Match, find_match, trial_fingerprint

__all__ = [
    "PROXIES",
    "EfficiencyPlugin",
    "EfficiencySection",
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
