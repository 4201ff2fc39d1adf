"""Reports of a study read from its storage: the eco-performance curve (accuracy vs kgCO2e),
hypervolume over the search, energy by phase, the knee, the pick under a carbon cap, the
search's own cost with provenance, and feedback on what would cut the most carbon next.

    report = build_report(study, cap_kgco2e=1e-4)
    write_report(report, "report.html")  # self-contained, offline
    write_static(report.figures["eco_curve"], "curve.png")  # needs a Chromium
"""

from __future__ import annotations

from nas.report._analysis import (
    HypervolumeHistory,
    best_under_cap,
    choose_point,
    hypervolume,
    hypervolume_history,
    knee_point,
)
from nas.report._data import (
    COMPRESSION_KEYS,
    Budget,
    Point,
    SearchCost,
    carbon_budget,
    pareto_front,
    points,
    search_cost,
)
from nas.report._feedback import Suggestion, feedback, feedback_lines
from nas.report._fidelity import Fidelity, fidelity
from nas.report._figures import eco_curve, hypervolume_figure, phase_energy_figure, phase_order
from nas.report._html import Report, build_report, check_report_path, write_report
from nas.report._static import NoBrowserError, find_chromium, write_static
from nas.report._units import Unit, carbon_unit, energy_unit

__all__ = [
    "COMPRESSION_KEYS",
    "Budget",
    "Fidelity",
    "HypervolumeHistory",
    "NoBrowserError",
    "Point",
    "Report",
    "SearchCost",
    "Unit",
    "Suggestion",
    "best_under_cap",
    "build_report",
    "carbon_unit",
    "carbon_budget",
    "check_report_path",
    "choose_point",
    "eco_curve",
    "energy_unit",
    "feedback",
    "feedback_lines",
    "fidelity",
    "find_chromium",
    "hypervolume",
    "hypervolume_figure",
    "hypervolume_history",
    "knee_point",
    "pareto_front",
    "phase_energy_figure",
    "phase_order",
    "points",
    "search_cost",
    "write_report",
    "write_static",
]
