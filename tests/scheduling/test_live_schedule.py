"""Green windows on a live source (the loopback UK server) and spatial workers (--regions)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import optuna
import pytest

import nas.scheduling.step as step_module
from nas.commands._common import add_run_args, apply_run_flags
from nas.config import config_from_dict
from nas.errors import ConfigError
from nas.record import Schedule, TrialAttrs
from nas.scheduling import SimulatedClock
from nas.search import run_search
from tests.scheduling.loopback import SLOT, TOKEN
from tests.scheduling.test_study_schedule import TINY

NOW = datetime(2024, 5, 1, 12, 10, tzinfo=UTC)


def doc(name: str, url: str, **extra: dict) -> dict:  # noqa: ANN003
    d = {k: dict(v) for k, v in TINY.items()}
    d["study"] = {**d["study"], "name": name, "trials": 1}
    d["carbon"] = {"source": "live:uk-carbon-intensity", "base_url": url, "retries": 0}
    d.update(extra)
    return d


def test_live_green_window_replans_every_slot_and_counts_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loopback, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    clock = SimulatedClock(start=NOW)
    monkeypatch.setattr(step_module, "WallClock", lambda: clock)
    slot0 = NOW.timestamp() // SLOT * SLOT
    green_at = slot0 + 4 * SLOT  # 14:00, 1 h 50 min after NOW

    def fc(t: float) -> float:
        return 80.0 if green_at <= t < green_at + 2 * SLOT else 300.0

    loopback.forecast_fn = fc
    loopback.now = NOW
    schedule = {"trace": "live", "policy": "flexible-start", "window_hours": 4.0,
                "trial_hours": 0.5, "countdown_s": 900.0}  # fmt: skip
    cfg = config_from_dict(doc("live-green", loopback.url, schedule=schedule))
    study = run_search(cfg, progress=False).study
    (t,) = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    a = t.user_attrs
    assert datetime.fromisoformat(a[Schedule.slot_start]).timestamp() == pytest.approx(green_at)
    assert a[Schedule.wait_s] == pytest.approx(green_at - NOW.timestamp())
    assert (
        a[Schedule.replans] == 4
    )  # at 12:10, then at each slot boundary passed: 12:30, 13:00, 13:30
    assert a[Schedule.expected_g_per_kwh] == pytest.approx(80.0)
    assert a[Schedule.now_g_per_kwh] == pytest.approx(300.0)
    assert a[Schedule.forecast].startswith("provider carbonintensity.org.uk:GB")
    assert a[Schedule.trace] == "live:carbonintensity.org.uk:GB"
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "waits for a green slot" in ln]
    assert lines and "expected 80 gCO2e/kWh against 300 now (73% less, forecast)" in lines[0]
    assert sum(1 for p in loopback.paths() if "fw48h" in p) >= 4  # a fresh forecast each slot
    assert a[TrialAttrs.intensity_source].startswith("carbonintensity.org.uk:GB")


def test_spatial_worker_runs_in_the_greenest_region(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loopback
) -> None:
    import argparse

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ELECTRICITYMAPS_TOKEN", TOKEN)
    d = doc("spatial", loopback.url)
    d["study"]["trials"] = 2
    cfg = config_from_dict(d)
    p = argparse.ArgumentParser()
    add_run_args(p)
    args = p.parse_args(["x.toml", "--carbon-source", "live:electricitymaps:DE", "--regions", "DE,FR",
                         "--carbon-base-url", loopback.url])  # fmt: skip
    cfg = apply_run_flags(cfg, args)
    assert cfg.carbon.regions == ("DE", "FR") and cfg.carbon.source == "live:electricitymaps:DE"
    study = run_search(cfg, progress=False).study
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 2
    for t in done:
        a = t.user_attrs
        assert a[Schedule.region] == "live:electricitymaps:FR"  # the server's FR is 50 g greener
        assert a[TrialAttrs.carbon_region] == "FR"
        assert a[TrialAttrs.intensity_source].startswith("electricitymaps:FR:lifecycle")
        de, fr = (float(x.split()[-1]) for x in a[Schedule.forecast].split("; "))
        assert de - fr == pytest.approx(50.0)
    with pytest.raises(ConfigError, match="unknown Electricity Maps zone"):
        apply_run_flags(cfg, p.parse_args(["x.toml", "--regions", "DE,QQ-1"]))
