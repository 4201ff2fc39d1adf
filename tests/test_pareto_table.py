"""The Pareto table's provenance footer."""

from __future__ import annotations

import optuna

from nas.pareto import pareto_table


def _study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(directions=["maximize", "minimize"])


def _add(study: optuna.Study, acc: float, kg: float, intensity: float, source: str) -> None:
    trial = study.ask()
    attrs = {
        "accuracy": acc,
        "kgco2e": kg,
        "energy_source": "estimate",
        "energy_kind": "estimated",
        "hardware": "cpu",
        "intensity_g_per_kwh": intensity,
        "intensity_source": source,
    }
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    study.tell(trial, [acc, kg])


def test_time_varying_intensity_is_one_line_with_its_range() -> None:
    study = _study()
    _add(study, 0.5, 1e-7, 120.0, "trace:gb_2020.csv")
    _add(study, 0.7, 3e-7, 210.5, "trace:gb_2020.csv")
    _add(study, 0.8, 5e-7, 56.0, "codecarbon:FRA")
    text = pareto_table(study)
    lines = [line for line in text.splitlines() if line.startswith("carbon intensity")]
    assert lines == [
        "carbon intensity: 56.0 gCO2e/kWh from codecarbon:FRA",
        "carbon intensity: 120.0-210.5 gCO2e/kWh from trace:gb_2020.csv",
    ]


def test_stop_reason_shows_even_without_completed_trials() -> None:
    study = _study()
    study.set_user_attr("carbon_budget_kgco2e", 1e-6)
    study.set_user_attr("carbon_budget_used_kgco2e", 1.2e-6)
    study.set_user_attr("carbon_budget_stop_reason", "carbon budget reached")
    text = pareto_table(study)
    assert text.splitlines()[0] == "no completed trials yet"
    assert "study stopped: carbon budget reached" in text and "carbon budget:" in text


def test_latency_legend_says_batch_runtime_device_and_threads() -> None:
    study = _study()
    trial = study.ask()
    attrs = {"accuracy": 0.6, "kgco2e": 1e-7, "energy_kind": "estimated"}
    attrs |= {"inference_latency_ms": 0.9, "inference_batch_size": 1, "inference_threads": 1}
    attrs |= {"inference_runtime": "torch", "inference_device": "cpu"}
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    study.tell(trial, [0.6, 1e-7])
    text = pareto_table(study)
    legend = "latency_ms: median time per batch of 1 (torch on cpu, 1 thread, this machine, "
    assert legend in text
