"""tests/configs.py, the test-config factory: what it merges, removes and writes."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from nas.config import config_from_dict
from nas.errors import ConfigError
from tests.configs import TINY, load_tiny, tiny_config, tiny_config_dict, tiny_toml, to_toml


def test_sections_merge_recursively_and_none_removes() -> None:
    doc = tiny_config_dict(
        "m",
        search={"cnn": {"max_stages": 2}},
        carbon={"intensity_g_per_kwh": None, "region": "FRA"},
        eval=None,
        lifecycle={"requests_per_day": 10.0},
    )
    assert doc["study"]["name"] == "m" and doc["study"]["seed"] == TINY["study"]["seed"]
    assert doc["search"]["cnn"] == {**TINY["search"]["cnn"], "max_stages": 2}
    assert doc["carbon"] == {"region": "FRA"} and "eval" not in doc
    assert doc["lifecycle"] == {"requests_per_day": 10.0}
    doc["search"]["cnn"]["width_choices"].append(64)  # fresh copies: the base is untouched
    assert tiny_config_dict()["search"]["cnn"]["width_choices"] == [8, 16]


def test_the_base_is_a_valid_study_and_bad_values_stay_errors() -> None:
    config = tiny_config()
    assert config.study.name == "tiny" and config.hardware.meter == "estimate"
    assert config.carbon.intensity_g_per_kwh == 50.0 and not config.eval.measure_inference
    with pytest.raises(ConfigError, match="only one of"):
        tiny_config(carbon={"region": "FRA"})  # merged: both sources given


def test_toml_round_trips(tmp_path: Path) -> None:
    doc = tiny_config_dict(
        "rt",
        study={"objectives": ["accuracy", "kgco2e"], "storage": 'sqlite:///a "b"\\c.db'},
        efficiency={},  # an empty table is written too
        compression={"enabled": True, "prune_ratios": [0.0, 0.5], "distillation": [False]},
    )
    assert tomllib.loads(to_toml(doc)) == doc
    path = tiny_toml(tmp_path, "rt", extra='\n[tracking]\nmlflow = "file:///x"\n')
    assert path == tmp_path / "rt.toml"
    assert tomllib.loads(path.read_text())["tracking"] == {"mlflow": "file:///x"}
    loaded = load_tiny(tmp_path, "rt2", train={"epochs": 2})
    assert loaded == config_from_dict(
        tiny_config_dict("rt2", train={"epochs": 2}), path=loaded.path
    )
    with pytest.raises(ValueError, match="not finite"):
        to_toml({"train": {"lr": float("nan")}})
