from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from nas.config import config_from_dict
from nas.errors import BadInputError, ConfigError
from nas.study import load_existing_study, open_storage, open_study, redact_url


def _cfg(tmp_path: Path, **study):
    doc = {"study": {"name": "s", "storage": f"sqlite:///{tmp_path}/s.db", **study}}
    return config_from_dict(doc)


def test_redact_url_hides_password() -> None:
    assert redact_url("postgresql://bob:hunter2@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert "hunter2" not in redact_url("mysql+pymysql://u:hunter2@h/db")
    assert redact_url("sqlite:///runs/a.db") == "sqlite:///runs/a.db"


def test_unreachable_storage_is_bad_input_without_password() -> None:
    with pytest.raises(BadInputError) as info:
        open_storage("postgresql://bob:hunter2@127.0.0.1:1/nope")
    assert "hunter2" not in str(info.value)
    assert "cannot open storage" in str(info.value)
    with pytest.raises(BadInputError, match="not a URL"):
        open_storage("runs/x.db")


def test_metric_names_and_resume(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    study = open_study(cfg)
    assert study.metric_names == ["accuracy", "kgco2e"]
    again = open_study(cfg.replace("study", trials=50))  # trial count may change
    assert again._study_id == study._study_id
    loaded = optuna.load_study(study_name="s", storage=cfg.storage_url)
    assert loaded.metric_names == ["accuracy", "kgco2e"]


def test_same_name_other_config_is_refused(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    open_study(cfg)
    with pytest.raises(ConfigError, match="different config"):
        open_study(cfg.replace("data", train_size=123))
    with pytest.raises(ConfigError, match="other objectives"):
        open_study(cfg.replace("study", objectives=("accuracy", "energy_kwh", "params")))


def test_load_existing_study_names_unknown(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    open_study(cfg)
    assert load_existing_study(cfg.storage_url, None).study_name == "s"
    with pytest.raises(BadInputError, match="no study named 'zzz'"):
        load_existing_study(cfg.storage_url, "zzz")
