"""Study integration: trials in green windows of the GB 2020 trace on the simulated clock."""

from __future__ import annotations

import argparse
import math
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
import pytest

from nas.commands._common import add_run_args
from nas.commands._common import apply_run_flags as apply_run_args
from nas.config import config_from_dict
from nas.errors import BadInputError, ConfigError
from nas.record import Efficiency
from nas.scheduling import load_trace
from nas.scheduling.step import GreenWindow, parse_utc
from nas.search import run_search
from nas.sections import ScheduleSection
from tests.configs import tiny_config_dict

START = "2020-06-10T06:00:00Z"

# A nearly constant, tiny CNN: every trial costs about the same and trains in a second.
TINY: dict = tiny_config_dict(
    "tiny",  # each test names its study
    study={"seed": 1, "trials": 3},
    search={"cnn": {"min_stages": 1, "stem_stride_choices": [2], "width_choices": [8, 12]}},
    data={"batch_size": 100},
    carbon=None,
)


def tiny_config(name: str, **schedule: object):
    doc = {k: dict(v) for k, v in TINY.items()}
    doc["study"] = {**doc["study"], "name": name}
    doc["schedule"] = schedule
    return config_from_dict(doc)


def green(name: str, policy: str, **extra: object):
    return tiny_config(
        name,
        trace="gb_2020",
        policy=policy,
        clock="simulated",
        start=START,
        trial_hours=1.0,
        window_hours=24.0,
        green_quantile=0.25,
        **extra,
    )


def done(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Completed trials that ran (not reused from a duplicate by nas.efficiency)."""
    complete = optuna.trial.TrialState.COMPLETE
    return [
        t for t in study.trials if t.state == complete and not t.user_attrs.get(Efficiency.reused)
    ]


def test_green_trials_incur_less_than_run_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    trace = load_trace("gb_2020")
    base = run_search(green("now", "run-now"), progress=False).study
    cfg = green("green", "pause-resume")
    run_search(cfg.replace("study", trials=2), progress=False)  # interrupted after 2 trials ...
    study = run_search(cfg, progress=False).study  # ... and resumed: the clock continues
    means = {}
    for s in (base, study):
        trials = done(s)
        assert len(trials) >= 2
        for t in trials:
            a = t.user_attrs
            slot = parse_utc(a["schedule_slot_start"], "slot")
            ready = parse_utc(a["schedule_ready_at"], "ready")
            # the intensity incurred is the trace's exact mean over the simulated hour
            exact = trace.mean_over(int(slot.timestamp()), int(slot.timestamp()) + 3600)
            assert a["intensity_g_per_kwh"] == pytest.approx(float(exact))
            assert "gb_2020" in a["intensity_source"] and "simulated" in a["intensity_source"]
            assert math.isclose(a["kgco2e"], a["energy_kwh"] * a["intensity_g_per_kwh"] / 1000)
            assert a["schedule_wait_s"] == pytest.approx((slot - ready).total_seconds())
            assert (slot - ready) <= timedelta(hours=23)  # ends within the 24-h window
            assert a["schedule_policy"] == {"now": "run-now", "green": "pause-resume"}[s.study_name]
        # each trial is ready when the previous one ended on the simulated clock
        for prev, nxt in zip(trials, trials[1:], strict=False):
            prev_end = parse_utc(prev.user_attrs["schedule_slot_start"], "s") + timedelta(hours=1)
            assert parse_utc(nxt.user_attrs["schedule_ready_at"], "r") == prev_end
        means[s.study_name] = np.mean([t.user_attrs["intensity_g_per_kwh"] for t in trials])
    assert all(t.user_attrs["schedule_wait_s"] == 0.0 for t in done(base))
    assert parse_utc(done(base)[0].user_attrs["schedule_slot_start"], "s") == parse_utc(START, "")
    assert sum(t.user_attrs["schedule_wait_s"] for t in done(study)) > 0
    assert means["green"] < means["now"]
    assert study.user_attrs["schedule_clock"] == done(study)[-1].user_attrs["schedule_slot_start"]


def _step(section: ScheduleSection, **kwargs: object) -> GreenWindow:
    return GreenWindow(SimpleNamespace(config=SimpleNamespace(schedule=section)), **kwargs)  # type: ignore[arg-type]


def _wait(step: GreenWindow) -> tuple[dict, object]:
    """One wait decision of the step, without training (in-memory study)."""
    trial = optuna.create_study().ask()
    attrs: dict = {}
    t = SimpleNamespace(trial=trial, number=trial.number, record=attrs.update)
    return attrs, step.wait(t)  # type: ignore[arg-type]


def _decide(cfg, trace_path: str | None = None) -> dict:
    """One wait decision of the step, without training (in-memory study)."""
    section = cfg.schedule
    if trace_path is not None:
        section = ScheduleSection(**{**section.__dict__, "trace": trace_path})
    step = _step(section)
    attrs, intensity = _wait(step)
    assert intensity is step.intensity  # the trial is charged through the step's source
    return attrs


def test_decision_never_reads_the_future_of_the_trace(tmp_path: Path) -> None:
    cfg = green("x", "flexible-start", forecast="seasonal")
    first = _decide(cfg)
    # rewrite everything after the decision time: a forecast from the past cannot notice
    trace = load_trace("gb_2020")
    t0 = parse_utc(START, "").timestamp()
    values = np.where(trace.times_s >= t0, 5.0, trace.values_g_per_kwh)
    values[(trace.times_s >= t0) & ((trace.times_s // 3600) % 2 == 0)] = 900.0
    path = tmp_path / "altered.csv"
    times = trace.times_s.astype("datetime64[s]").astype(str)
    rows = (f"{t.replace('T', ' ')},{v:g}" for t, v in zip(times, values, strict=True))
    path.write_text("Time,Carbon Intensity\n" + "\n".join(rows) + "\n")
    altered = _decide(cfg, str(path))
    assert altered["schedule_slot_start"] == first["schedule_slot_start"]
    # the oracle reads the future on purpose (an upper bound), so it does notice
    oracle = green("x", "flexible-start", forecast="oracle")
    assert _decide(oracle, str(path))["schedule_slot_start"] != first["schedule_slot_start"]


def test_run_args_and_bad_sections() -> None:
    parser = argparse.ArgumentParser()
    add_run_args(parser)
    args = parser.parse_args(["c.toml", "--schedule", "flexible-start", "--max-kgco2e", "0.5"])
    cfg = apply_run_args(green("x", "pause-resume"), args)
    assert cfg.schedule.policy == "flexible-start" and cfg.schedule.max_kgco2e == 0.5
    with pytest.raises(ConfigError, match="--schedule needs a trace"):
        apply_run_args(tiny_config("x"), args)
    budget_only = apply_run_args(
        tiny_config("x"), parser.parse_args(["c.toml", "--max-kgco2e", "1"])
    )
    assert budget_only.schedule.max_kgco2e == 1.0 and not budget_only.schedule.active
    with pytest.raises(SystemExit):
        parser.parse_args(["c.toml", "--schedule", "spatial"])
    bad = [
        ({"policy": "pause-resume"}, "needs schedule.trace"),
        ({"trace": "gb_2020", "clock": "simulated"}, "needs schedule.start"),
        ({"trace": "gb_2020", "start": START}, "simulated' only"),
        ({"trace": "gb_2020", "policy": "later"}, "unknown"),
        ({"trace": "gb_2020", "forecast": "crystal"}, "unknown"),
        ({"trace": "gb_2020", "trial_hours": 30.0}, "shorter than a trial"),
        ({"trace": "gb_2020", "clock": "simulated", "start": "June"}, "cannot parse time"),
        ({"max_kgco2e": -1.0}, "positive"),
        ({"trace": "gb_2020", "green_quantile": 0.0}, r"\(0, 1\]"),
    ]
    for schedule, message in bad:
        with pytest.raises(ConfigError, match=message):
            tiny_config("x", **schedule)


def test_trace_must_cover_the_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    late = tiny_config(
        "late", trace="gb_2020", clock="simulated", start="2021-01-09T12:00Z", trial_hours=1.0
    )
    with pytest.raises(ConfigError, match="must lie in trace gb_2020"):
        run_search(late, progress=False)
    with pytest.raises(ConfigError, match="clock = 'wall'"):  # 2020 data, 2020s wall clock
        run_search(tiny_config("wall", trace="gb_2020"), progress=False)
    with pytest.raises(BadInputError, match="no such file"):
        run_search(tiny_config("nofile", trace=str(tmp_path / "nope.csv")), progress=False)


def test_wall_clock_waits_with_a_countdown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import time
    from datetime import UTC, datetime

    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)  # WallClock.sleep: no real waiting
    now_s = int(datetime.now(UTC).timestamp()) // 60 * 60
    times = np.arange(now_s - 2 * 86_400, now_s + 86_400, 60)
    values = np.where(times == now_s + 600, 20.0, 300.0)  # green 10 min from now
    path = tmp_path / "minutes.csv"
    stamps = times.astype("datetime64[s]").astype(str)
    rows = (f"{t.replace('T', ' ')},{v:g}" for t, v in zip(stamps, values, strict=True))
    path.write_text("Time,Carbon Intensity\n" + "\n".join(rows) + "\n")
    section = ScheduleSection(
        trace=str(path), policy="flexible-start", forecast="oracle", window_hours=1.0
    )
    stream = io.StringIO()
    step = _step(section, stream=stream)
    attrs, intensity = _wait(step)
    wait_s = attrs["schedule_wait_s"]
    assert 540 < wait_s <= 600 and sum(slept) == pytest.approx(wait_s)
    assert max(slept) <= 60.0  # ticks of countdown_s
    lines = stream.getvalue().splitlines()
    assert len(lines) == len(slept) and "trial 0 waits for a green slot: 0:" in lines[0]
    assert attrs["schedule_clock"] == "wall" and intensity is step.intensity
