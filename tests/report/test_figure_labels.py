"""The report's figures read plainly: CO2e in g/mg/µg with the unit in the axis title,
"estimated" in the title when it is, phases in pipeline order, no raw dict in the header,
trials at or below chance flagged."""

from __future__ import annotations

import json
import re

import optuna
import pytest

from nas.record import PHASE_NAMES
from nas.report import Point, build_report, eco_curve, pareto_front, phase_energy_figure
from nas.report._figures import phase_order
from nas.report._units import carbon_unit, energy_unit, kind_note


def test_units_make_the_smallest_value_at_least_one() -> None:
    assert carbon_unit([2e-6, 8e-6]).name == "mgCO2e"
    assert carbon_unit([3e-3, 0.2]).name == "gCO2e"
    assert carbon_unit([2e-9]).name == "µgCO2e"
    assert carbon_unit([1.5, 20.0]).name == "kgCO2e"
    assert carbon_unit([]).name == "kgCO2e"
    assert energy_unit([4e-8]).name == "µWh" and energy_unit([2e-3]).name == "Wh"
    unit = carbon_unit([2e-6, 8e-6])
    assert unit.scale([2e-6, 8e-6]) == pytest.approx([2.0, 8.0])
    assert kind_note(["estimated", "estimated"]) == " (energy estimated)"
    assert kind_note(["measured", "estimated"]) == " (energy partly estimated)"
    assert kind_note(["measured"]) == ""


def test_eco_curve_axis_in_readable_units_and_estimated_in_title(study: optuna.Study) -> None:
    report = build_report(study)
    fig = report.figures["eco_curve"]
    title = fig.layout.xaxis.title.text
    unit = re.search(r"\((\S+CO2e)\)$", title).group(1)
    assert unit != "kgCO2e" and unit in {"gCO2e", "mgCO2e", "µgCO2e"}  # tiny studies: µg
    assert fig.layout.xaxis.exponentformat == "none"  # no "10µ" tick on a kg axis
    front = next(t for t in fig.data if t.name == "Pareto front")
    factor = {"gCO2e": 1e3, "mgCO2e": 1e6, "µgCO2e": 1e9}[unit]
    assert list(front.x) == pytest.approx([p.kgco2e * factor for p in report.front])
    xs = [x for t in fig.data if t.name in ("Pareto front", "dominated trials") for x in t.x]
    # the largest unit in which every value is at least 1; below 1 µg (a fast CPU's tiny
    # study) the smallest unit there is
    assert min(xs) >= 1.0 or unit == "µgCO2e"
    assert "estimated" in fig.layout.title.text  # the tiny study's energy is an estimate
    assert "estimated" in report.figures["energy_by_phase"].layout.title.text
    hv = report.figures["hypervolume"]
    assert unit in hv.layout.title.text and "kgCO2e" not in hv.layout.title.text


def test_phase_chart_in_pipeline_order_with_a_unit(study: optuna.Study) -> None:
    assert phase_order(["store", "train", "mystery", "sample", "eval"]) == [
        "sample",
        "train",
        "eval",
        "store",
        "mystery",
    ]
    fig = phase_energy_figure(study.trials)
    names = [t.name for t in fig.data]
    assert names == sorted(names, key=PHASE_NAMES.index)
    assert names != sorted(names)  # pipeline order is not the alphabet
    assert fig.layout.yaxis.title.text in {
        "energy (kWh)",
        "energy (Wh)",
        "energy (mWh)",
        "energy (µWh)",
    }


def test_report_header_and_phase_table_read_plainly(study: optuna.Study) -> None:
    page = build_report(study).html
    n = len(study.trials)
    assert f"trials by state: complete {n}" in page
    assert "{'" not in page.split("<h2>", 1)[0]  # no Python dict in the header
    table = page.split("<h4>by phase</h4>", 1)[1].split("</table>", 1)[0]
    listed = re.findall(r"<tr><td>([a-z]+)</td>", table)
    assert listed == sorted(listed, key=PHASE_NAMES.index) and "train" in listed


def _chance_point(n: int, acc: float, kg: float) -> Point:
    spec = {"family": "cnn", "in_channels": 1, "num_classes": 10, "image_size": 28, "config": {}}
    return Point(trial=n, accuracy=acc, kgco2e=kg, attrs={"arch_spec": json.dumps(spec)})


def test_eco_curve_marks_chance() -> None:
    pts = [_chance_point(0, 0.095, 1e-6), _chance_point(1, 0.8, 1e-5)]
    assert pts[0].at_or_below_chance and not pts[1].at_or_below_chance
    fig = eco_curve(pts, pareto_front(pts))
    chance = next(t for t in fig.data if t.name.startswith("chance"))
    assert list(chance.y) == [0.1, 0.1] and "1/10" in chance.name
    front = next(t for t in fig.data if t.name == "Pareto front")
    assert "at or below chance" in front.hovertext[0]
