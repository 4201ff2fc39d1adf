"""The search's progress line: every figure labelled, the columns never pushed by the arch."""

from __future__ import annotations

import io
import re

import optuna
import pytest

from nas.search import ProgressBar
from tests.report.tiny_study import tiny_study


def _lines(study: optuna.Study) -> list[str]:
    stream = io.StringIO()
    bar = ProgressBar(target=len(study.trials), done=0, stream=stream)
    for t in study.trials:
        bar(study, t)
    return stream.getvalue().splitlines()


def test_progress_line_labels_its_figures_and_ends_with_the_arch() -> None:
    _, study = tiny_study("tiny")
    lines = _lines(study)
    assert len(lines) == len(study.trials)
    for line, t in zip(lines, study.trials, strict=True):
        if t.state != optuna.trial.TrialState.COMPLETE:
            continue
        assert " val acc 0." in line and " acc " not in line.replace("val acc", "")
        assert re.search(r" model \S+ kgCO2e ", line)  # the model's cost ...
        assert re.search(r" search \S+ kgCO2e \S+ kWh \(estimated\)", line)  # ... the trial's
        assert line.endswith(f"arch {t.user_attrs['arch']}")
    # aligned: the figures start at the same column whatever the architecture's length
    complete = [ln for ln, t in zip(lines, study.trials, strict=True) if t.state.name == "COMPLETE"]
    assert len({ln.index(" val acc") for ln in complete}) == 1
    assert any("projected (estimated)" in ln for ln in lines[:-1])


def test_progress_lines_sum_to_the_search_cost() -> None:
    """Four lines summed to 2.21e-05 against "search cost: 2.362e-05": they showed the models'
    cost. The search column is each trial's whole cost."""
    from nas.report import search_cost

    _, study = tiny_study("tiny")
    shown = [float(re.search(r" search (\S+) kgCO2e", ln).group(1)) for ln in _lines(study)]
    total = search_cost(study.trials, study_attrs=study.user_attrs).kgco2e
    assert sum(shown) == pytest.approx(total, rel=1e-3)  # printed to 4 significant digits
