"""`econas schedule simulate`: JSON and table output, bad traces and arguments exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nas.cli import main
from nas.commands import schedule as schedule_cmd
from nas.scheduling import FORECASTERS, POLICIES


def _csv(tmp_path, name: str, rows: list[tuple[str, str]], header: str = "Time,Carbon Intensity"):
    path = tmp_path / name
    path.write_text(header + "\n" + "".join(f"{t},{v}\n" for t, v in rows))
    return str(path)


def _hourly_rows(values) -> list[tuple[str, str]]:
    return [(f"2020-01-{1 + h // 24:02d} {h % 24:02d}:00:00", str(v)) for h, v in enumerate(values)]


def test_cli_choices_match_the_library() -> None:
    assert schedule_cmd._POLICIES == POLICIES and schedule_cmd._FORECASTS == FORECASTERS


def test_json_on_shipped_gb_trace(capsys) -> None:
    argv = ["schedule", "simulate", "--trace", "gb_2020", "--job-hours", "2"]
    argv += ["--window-hours", "12", "--policy", "flexible-start", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    for key in (
        "policy",
        "forecast",
        "jobs",
        "baseline_g_per_kwh",
        "policy_g_per_kwh",
        "saving_pct",
        "by_month",
        "baseline_g_per_job",
        "policy_g_per_job",
    ):
        assert key in out
    assert out["policy"] == "flexible-start" and out["forecast"] == "seasonal"
    assert out["saving_pct"] > 0 and out["jobs"] > 8000
    assert out["policy_g_per_kwh"] < out["baseline_g_per_kwh"]
    assert {"month", "jobs", "saving_pct"} <= set(out["by_month"][0])


def test_oracle_json_equals_brute_force(tmp_path, capsys) -> None:
    values = [90, 40, 300, 20, 25, 200, 10, 80, 70, 60, 55, 400]
    path = _csv(tmp_path, "hand.csv", _hourly_rows(values))
    argv = ["schedule", "simulate", "--trace", path, "--job-hours", "2", "--window-hours", "4"]
    assert main([*argv, "--policy", "flexible-start", "--forecast", "oracle", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    best = [min(np.mean(values[s : s + 2]) for s in range(a, a + 3)) for a in range(9)]
    assert out["jobs"] == 9
    assert out["policy_g_per_kwh"] == pytest.approx(np.mean(best), rel=1e-12)
    assert out["forecast_is_upper_bound"] is True


def test_human_table(capsys) -> None:
    argv = ["schedule", "simulate", "--trace", "gb_2020", "--trace", "fr_2020", "--job-hours"]
    argv += ["1", "--window-hours", "6", "--policy", "spatial", "--job-kw", "0.3"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "policy spatial, forecast seasonal" in text and "home region gb_2020" in text
    assert "2020-07" in text and "overall" in text and "0.3 kW" in text


def _run_bad(capsys, argv: list[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("header", "rows", "needle"),
    [
        ("When,Carbon Intensity", [("2020-01-01 00:00:00", "1")] * 2, "missing column 'Time'"),
        (
            "Time,Carbon Intensity",
            [("2020-01-01 00:00:00", "1"), ("01/02/2020 1am", "2")],
            "line 3: cannot parse time",
        ),
        (
            "Time,Carbon Intensity",
            [("2020-01-01 00:00:00", "1"), ("2020-01-01 01:00:00", "-2")],
            "negative intensity",
        ),
        (
            "Time,Carbon Intensity",
            [("2020-01-01 00:00:00", "NaN"), ("2020-01-01 01:00:00", "2")],
            "intensity is NaN",
        ),
    ],
)
def test_bad_traces_exit_2(tmp_path, capsys, header, rows, needle) -> None:
    path = _csv(tmp_path, "bad.csv", rows, header=header)
    argv = ["schedule", "simulate", "--trace", path, "--job-hours", "1"]
    err = _run_bad(capsys, [*argv, "--window-hours", "2", "--policy", "flexible-start"])
    assert needle in err and "bad.csv" in err


def test_gap_longer_than_job_and_short_window_exit_2(tmp_path, capsys) -> None:
    rows = _hourly_rows(range(48))
    del rows[10:16]  # 6 h missing
    path = _csv(tmp_path, "gappy.csv", rows)
    base = ["schedule", "simulate", "--trace", path, "--policy", "pause-resume"]
    err = _run_bad(capsys, [*base, "--job-hours", "2", "--window-hours", "8"])
    assert "6 h of missing data" in err and "longer than the job (2 h)" in err
    err = _run_bad(capsys, [*base, "--job-hours", "6", "--window-hours", "4"])
    assert "window (4 h) is shorter than the job (6 h)" in err


def test_bad_arguments_exit_2(capsys) -> None:
    base = ["schedule", "simulate", "--trace", "gb_2020", "--job-hours", "1", "--window-hours", "4"]
    assert "invalid choice" in _run_bad(capsys, [*base, "--policy", "later"])
    assert "no such file" in _run_bad(
        capsys, [*base[:3], "nope.csv", *base[4:], "--policy", "run-now"]
    )
    assert "several only with spatial" in _run_bad(
        capsys, [*base, "--trace", "fr_2020", "--policy", "flexible-start"]
    )
    assert "give a verb" in _run_bad(capsys, ["schedule"])
