"""Feedback: what would cut the most carbon next, computed from the study's own data."""

from __future__ import annotations

import optuna
import pytest

from nas.carbon import RegionIntensity
from nas.cli import main
from nas.report import choose_point, feedback


def test_feedback_from_the_study(study: optuna.Study) -> None:
    point = choose_point(study.trials)
    got = {s.kind: s for s in feedback(study)}
    assert "quantization" in got and got["quantization"].saving_kgco2e is None  # not tried
    region = got["region"]
    assert "CAN:quebec" in region.text  # the cheapest grid of codecarbon's table (> 1 g/kWh)
    g_here = point.attrs["intensity_g_per_kwh"]
    g_best = RegionIntensity(region="CAN:quebec").intensity_g_per_kwh
    assert region.saving_kgco2e == pytest.approx(point.kgco2e * (1 - g_best / g_here))
    assert "fr_2020" in got["window"].text and 0 < got["window"].saving_kgco2e < point.kgco2e
    savings = [s.saving_kgco2e for s in feedback(study) if s.saving_kgco2e is not None]
    assert savings == sorted(savings, reverse=True)


def test_quantized_trials_give_an_expected_saving() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    for n, (q, kg) in enumerate(
        [("fp32", 4e-6), ("fp32", 6e-6), ("int8_dynamic", 2e-6), ("int8_dynamic", 3e-6)]
    ):
        attrs = {"accuracy": 0.5 + 0.01 * n, "kgco2e": kg, "quantization": q, "family": "cnn"}
        study.add_trial(optuna.trial.create_trial(values=[attrs["accuracy"], kg], user_attrs=attrs))
    got = {s.kind: s for s in feedback(study, trial_number=1)}
    # median quantized 2.5e-6 vs median fp32 5e-6: half the cost of trial 1 (6e-6)
    assert got["quantization"].saving_kgco2e == pytest.approx(3e-6)


def test_pareto_prints_feedback_and_json_stays_a_list(
    study: optuna.Study, capsys, config_and_study
) -> None:  # noqa: ANN001
    config, _ = config_and_study
    argv = ["pareto", "--storage", config.storage_url, "--study", config.study.name]
    assert main(argv) == 0
    assert "what would cut the most carbon next" in capsys.readouterr().out
    assert main([*argv, "--json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list) and all("trial" in r for r in rows)


def test_window_and_region_say_which_intensity_they_compare(study: optuna.Study) -> None:
    """ "56 here" next to "against 56.7" read as a contradiction: each figure is named."""
    point = choose_point(study.trials)
    got = {s.kind: s.text for s in feedback(study)}
    charged = f"{point.attrs['intensity_g_per_kwh']:.1f}"
    assert f"trial {point.trial} was charged {charged}" in got["window"]
    assert "the trace's mean of" in got["window"]
    assert f"trial {point.trial} was charged {charged} from codecarbon" in got["region"]
