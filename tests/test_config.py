from __future__ import annotations

from pathlib import Path

import pytest

from nas.config import Config, config_from_dict, load_config
from nas.errors import ConfigError

STUDIES = sorted(Path(__file__).resolve().parents[1].glob("studies/*.toml"))


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_shipped_study_configs_load(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.study.objectives
    assert cfg.search.spaces


def test_defaults_and_derived_paths() -> None:
    cfg = config_from_dict({"study": {"name": "demo"}})
    assert cfg.study.objectives == ("accuracy", "kgco2e")
    assert cfg.storage_url == "sqlite:///runs/demo/study.db"
    assert cfg.artifact_dir == Path("runs/demo/artifacts")


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"study": {"nmae": "x"}}, "unknown key 'study.nmae'"),
        ({"stduy": {}}, "unknown section [stduy]"),
        ({"study": {"trials": "ten"}}, "study.trials must be an integer"),
        ({"study": {"trials": 1.5}}, "study.trials must be an integer"),
        ({"study": {"sampler": "cmaes"}}, "study.sampler 'cmaes' is unknown"),
        ({"study": {"objectives": ["accuracy", "joules"]}}, "unknown objective 'joules'"),
        ({"search": {"spaces": ["resnet"]}}, "unknown search space 'resnet'"),
        ({"hardware": {"meter": "wattmeter"}}, "hardware.meter 'wattmeter' is unknown"),
        ({"hardware": {"device": "tpu"}}, "hardware.device 'tpu' is unknown"),
        ({"train": {"epochs": 0}}, "train.epochs must be >= 1"),
        ({"carbon": {"region": "FRA", "intensity_g_per_kwh": 50}}, "not both"),
        ({"data": {"batch_size": True}}, "data.batch_size must be an integer"),
    ],
)
def test_bad_config_names_the_problem(doc: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(doc)
    assert needle in str(info.value)


def test_per_space_options_are_kept() -> None:
    cfg = config_from_dict({"search": {"spaces": ["cnn"], "cnn": {"max_stages": 2}}})
    assert cfg.search.options == {"cnn": {"max_stages": 2}}


def test_fingerprint_ignores_trial_count_but_not_data(tmp_path: Path) -> None:
    base = Config()
    assert base.fingerprint() == base.replace("study", trials=99).fingerprint()
    assert base.fingerprint() != base.replace("data", train_size=100).fingerprint()


def test_invalid_toml_is_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[study\nname = 1")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
