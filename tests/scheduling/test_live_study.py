"""A study in wall-clock mode charges each trial what the loopback UK server says the grid
emitted while it ran (actuals where final, the forecast for the rest), and an outage costs no
trial: it is charged the yearly average with its reason recorded."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import optuna
import pytest

from nas.config import config_from_dict
from nas.errors import BadInputError
from nas.record import TrialAttrs
from nas.search import run_search
from tests.scheduling.loopback import TOKEN, expected_uk_mean
from tests.scheduling.test_study_schedule import TINY


def live_config(name: str, url: str, **carbon: object):  # noqa: ANN201
    doc = {k: dict(v) for k, v in TINY.items()}
    doc["study"] = {**doc["study"], "name": name, "trials": 2}
    doc["carbon"] = {"source": "live:uk-carbon-intensity", "base_url": url, "retries": 0, **carbon}
    return config_from_dict(doc)


def test_trials_are_charged_the_servers_intensity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loopback
) -> None:
    monkeypatch.chdir(tmp_path)
    study = run_search(live_config("live-uk", loopback.url), progress=False).study
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 2
    for t in done:
        a = datetime.fromisoformat(t.user_attrs[TrialAttrs.started_at]).timestamp()
        b = datetime.fromisoformat(t.user_attrs[TrialAttrs.finished_at]).timestamp()
        want = expected_uk_mean(a, b, asked_at=b)
        assert t.user_attrs[TrialAttrs.intensity_g_per_kwh] == pytest.approx(want, rel=1e-9)
        assert t.user_attrs[TrialAttrs.intensity_source].startswith("carbonintensity.org.uk:GB (")
        assert 0.0 <= t.user_attrs[TrialAttrs.intensity_forecast_share] <= 1.0
        assert t.user_attrs[TrialAttrs.carbon_region] == "GB"
        kwh = t.user_attrs[TrialAttrs.energy_kwh]
        assert t.values[1] == pytest.approx(kwh * want / 1000.0)
    assert any("/intensity/" in p for p in loopback.paths())
    assert list((tmp_path / "runs" / "live-uk" / "carbon-cache").glob("*.json"))


def test_an_outage_loses_no_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loopback
) -> None:
    monkeypatch.chdir(tmp_path)
    loopback.fail("/intensity", *([500] * 20))
    study = run_search(live_config("live-down", loopback.url), progress=False).study
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 2
    for t in done:
        assert "HTTP 500" in t.user_attrs[TrialAttrs.intensity_fallback_reason]
        assert t.user_attrs[TrialAttrs.intensity_source].startswith(
            "codecarbon:global_energy_mix:GBR"
        )


def test_missing_token_stops_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loopback
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ELECTRICITYMAPS_TOKEN", raising=False)
    cfg = live_config("live-em", loopback.url).replace("carbon", source="live:electricitymaps:DE")
    with pytest.raises(BadInputError, match="ELECTRICITYMAPS_TOKEN"):
        run_search(cfg, progress=False)
    assert not (tmp_path / "runs" / "live-em").exists()  # nothing half made


def test_stored_config_keeps_no_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loopback
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ELECTRICITYMAPS_TOKEN", TOKEN)
    url = loopback.url.replace("http://", "http://proxyuser:pr0xy-s3cret@")
    cfg = live_config("live-cred", url).replace("study", trials=1)
    study = run_search(cfg, progress=False).study
    blob = json.dumps(study.user_attrs) + json.dumps([t.user_attrs for t in study.trials])
    assert "pr0xy-s3cret" not in blob and TOKEN not in blob


def test_measure_charges_the_live_source(loopback, capsys) -> None:
    from nas.cli import main

    argv = ["measure", "--json", "--meter", "estimate", "--carbon-source",
            "live:uk-carbon-intensity", "--carbon-base-url", loopback.url, "--", "true"]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    a = datetime.fromisoformat(out["started_at"]).timestamp()
    b = datetime.fromisoformat(out["finished_at"]).timestamp()
    assert out["intensity_g_per_kwh"] == pytest.approx(expected_uk_mean(a, b, asked_at=b))
    assert out["intensity_source"].startswith("carbonintensity.org.uk:GB (")


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--carbon-source", "live:gridco"], "unknown carbon provider 'gridco'"),
        (["--carbon-source", "live:electricitymaps:ZZ"], "unknown Electricity Maps zone"),
        (["--carbon-base-url", "http://x"], "carbon.base_url needs carbon.source"),
    ],
)
def test_bad_carbon_flags_exit_2_before_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, flags: list[str], needle: str
) -> None:
    from nas.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text('[study]\nname = "bad"\n', encoding="utf-8")
    assert main(["search", "s.toml", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert not (tmp_path / "runs").exists()
