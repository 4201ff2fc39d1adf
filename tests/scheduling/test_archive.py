"""Forecast archives: no peeking, bad files refused before any work, the synthetic error model."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from nas.cli import main
from nas.errors import BadInputError
from nas.scheduling import load_trace, simulate
from nas.scheduling._archive import ForecastArchive, load_archive, synthetic_archive, write_archive


def _s(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


@pytest.fixture(scope="module")
def month():  # noqa: ANN201 - a Trace: 20 days of GB 2020, half-hourly
    return load_trace("gb_2020").slice(_s("2020-03-01T00:00"), _s("2020-03-21T00:00"))


def test_row_sees_only_the_latest_issue_at_or_before_the_decision() -> None:
    h = 3600
    base = _s("2020-01-01T00:00")
    issues = [
        (base, base + h * np.arange(6), np.full(6, 100.0)),
        (base + 2 * h, base + h * np.arange(2, 8), np.full(6, 200.0)),
    ]
    arch = ForecastArchive(issues=issues)
    grid = base + h * np.arange(10)
    assert arch.row(grid, 0, 3, h).tolist() == [100.0, 100.0, 100.0]
    assert arch.row(grid, 1, 6, h).tolist() == [100.0] * 5 + [np.inf]  # beyond its horizon
    assert arch.row(grid, 2, 3, h).tolist() == [200.0] * 3  # issued exactly at the decision
    early = ForecastArchive(issues=issues[1:])
    assert np.all(np.isinf(early.row(grid, 1, 3, h)))  # nothing issued yet


def test_replay_never_peeks(month) -> None:  # noqa: ANN001
    """Changing every issue after a cut-off changes no decision made before it."""
    archive, rows = synthetic_archive(month, mape_pct=10, seed=3, horizon_hours=24)
    cut = _s("2020-03-10T00:00")
    kw = dict(traces=[month], job_hours=2, window_hours=12, policy="flexible-start")
    for replan in (False, True):
        kw["replan"] = replan
        a = simulate(forecast=archive, **kw)
        tampered = [
            (i, t, v if i <= cut else v[::-1] * 3.0)
            for i, t, v in (
                (int(k), *p) for k, p in zip(archive.issued_s, archive._points, strict=True)
            )
        ]
        b = simulate(forecast=ForecastArchive(issues=tampered), **kw)
        arrivals = month.resample(30).times_s[::2][: a.jobs]  # one job an hour
        # a job's last decision can be at arrival + window: only jobs decided entirely before
        before = arrivals + 12 * 3600 < cut
        assert np.array_equal(
            a.policy_per_job_g_per_kwh[before], b.policy_per_job_g_per_kwh[before]
        )
        assert not np.array_equal(a.policy_per_job_g_per_kwh, b.policy_per_job_g_per_kwh)


def test_synthetic_archive_has_the_stated_mape_and_round_trips(month, tmp_path: Path) -> None:  # noqa: ANN001
    archive, rows = synthetic_archive(month, mape_pct=7, seed=1, horizon_hours=24)
    actual = dict(zip(month.times_s.tolist(), month.values_g_per_kwh.tolist(), strict=True))
    errs = [abs(v - actual[t]) / actual[t] for _, t, v in rows]
    assert 100 * np.mean(errs) == pytest.approx(7.0, abs=1e-6)
    by_lead = {}
    for i, t, v in rows:
        by_lead.setdefault((t - i) // 3600, []).append(abs(v - actual[t]) / actual[t])
    assert np.mean(by_lead[0]) < np.mean(by_lead[23])  # errors grow with lead time
    again, rows2 = synthetic_archive(month, mape_pct=7, seed=1, horizon_hours=24)
    assert rows2 == rows  # same seed, same archive
    path = tmp_path / "a.csv"
    write_archive(rows, path)
    loaded = load_archive(path)
    assert len(loaded) == len(archive) and loaded.issued_s.tolist() == archive.issued_s.tolist()
    grid = month.times_s
    assert np.allclose(loaded.row(grid, 5, 48, 1800), archive.row(grid, 5, 48, 1800), atol=1e-3)


def test_cli_archive_then_replay(month, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    trace_csv = tmp_path / "t.csv"
    trace_csv.write_text(
        "Time,Carbon Intensity\n" + "".join(f"{d:%Y-%m-%d %H:%M:%S},{v}\n" for d, v in month),
        encoding="utf-8",
    )
    out = tmp_path / "arch.csv"
    argv = ["schedule", "forecast-archive", "--trace", str(trace_csv), "--mape", "0",
            "--seed", "0", "--out", str(out), "--horizon-hours", "24"]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    sim = ["schedule", "simulate", "--trace", str(trace_csv), "--job-hours", "2",
           "--window-hours", "12", "--policy", "flexible-start", "--json", "--forecast"]  # fmt: skip
    assert main([*sim, f"archive:{out}"]) == 0
    exact = json.loads(capsys.readouterr().out)
    assert main([*sim, "oracle"]) == 0
    oracle = json.loads(capsys.readouterr().out)
    assert exact["forecast"] == "archive:arch.csv"
    # a 0% archive is the truth up to 24 h ahead: the oracle's saving
    assert exact["saving_pct"] == pytest.approx(oracle["saving_pct"], abs=1e-6)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("issued,time,value\n", "header must be issued_at,time,carbon_intensity"),
        (
            "issued_at,time,carbon_intensity\n2020-01-01T00:00:00+01:00,2020-01-01T01:00:00Z,1\n",
            "not in UTC",
        ),
        (
            "issued_at,time,carbon_intensity\n2020-01-01T00:00:00,2020-01-01T01:00:00Z,1\n",
            "not in UTC",
        ),
        (
            "issued_at,time,carbon_intensity\n2020-01-01T02:00:00Z,2020-01-01T01:00:00Z,1\n",
            "earlier than issued_at",
        ),
        ("issued_at,time,carbon_intensity\n2020-01-01T00:00:00Z,2020-01-01T01:00:00Z,-3\n", ">= 0"),
        (
            "issued_at,time,carbon_intensity\n2020-01-01T00:00:00Z,2020-01-01T01:00:00Z,x\n",
            "not a number",
        ),
    ],
)
def test_malformed_archive_is_one_line_exit_2(
    tmp_path: Path, capsys, body: str, needle: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(BadInputError, match=needle):
        load_archive(path)
    argv = ["schedule", "simulate", "--trace", "gb_2020", "--job-hours", "1", "--window-hours",
            "4", "--policy", "flexible-start", "--forecast", f"archive:{path}"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "line 2" in err[0] or "header" in err[0]
