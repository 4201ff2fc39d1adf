"""Traces: CSV formats, shipped files, exact integration, resampling, bad input."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from nas.carbon import CarbonIntensity, IntensitySource
from nas.carbon._trace_io import parse_trace_csv
from nas.errors import BadInputError
from nas.scheduling import SHIPPED_TRACES, Trace, TraceIntensity, load_trace

T0 = datetime(2020, 3, 1, tzinfo=UTC)
T0_S = int(T0.timestamp())


def hourly(values: list[float], name: str = "hand.csv") -> Trace:
    times = T0_S + 3600 * np.arange(len(values))
    return Trace(times_s=times, values_g_per_kwh=np.asarray(values, float), name=name)


def test_shipped_traces_load_by_name() -> None:
    assert set(SHIPPED_TRACES) == {"fr_2020", "gb_2020"}
    gb = load_trace("gb_2020")
    fr = load_trace("fr_2020.csv")
    assert gb.name == "gb_2020.csv" and gb.region == "gb_2020"
    assert len(gb) == 21980 and len(fr) == 18574
    assert gb.start_s == int(datetime(2019, 12, 20, tzinfo=UTC).timestamp())
    assert gb.step_s == 1800 and gb.max_gap_s == 0
    assert 150 < gb.values_g_per_kwh.mean() < 300 and fr.values_g_per_kwh.mean() < 100


def test_our_csv_format(tmp_path) -> None:
    p = tmp_path / "mini.csv"
    p.write_text(
        "Time,Carbon Intensity\n2020-01-01 00:00:00,100\n2020-01-01 00:30:00,200\n"
        "2020-01-01 01:00:00,300\n"
    )
    tr = load_trace(p)
    assert tr.name == "mini.csv"
    assert list(tr.values_g_per_kwh) == [100.0, 200.0, 300.0]
    assert tr.end_s - tr.start_s == 3 * 1800
    rows = list(tr)
    assert rows[1] == (datetime(2020, 1, 1, 0, 30, tzinfo=UTC), 200.0)


def test_electricity_maps_export_prefers_lca() -> None:
    text = (
        "Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
        "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage\n"
        "2021-01-01 00:00:00,France,France,FR,40.1,60.5,90\n"
        "2021-01-01 01:00:00,France,France,FR,42.0,61.0,90\n"
    )
    tr = parse_trace_csv(text, name="FR_2021_hourly.csv")
    assert list(tr.values_g_per_kwh) == [60.5, 61.0]
    assert tr.step_s == 3600


def test_electricity_maps_direct_column_and_iso_times() -> None:
    text = (
        "\ufeffDatetime (UTC),Carbon Intensity gCO₂eq/kWh (direct)\n"
        "2021-01-01T00:00:00Z,40\n2021-01-01T02:00:00+01:00,42\n"
    )
    tr = parse_trace_csv(text, name="em.csv")
    assert list(tr.values_g_per_kwh) == [40.0, 42.0]
    assert tr.times_s[1] - tr.times_s[0] == 3600  # 02:00+01:00 is 01:00 UTC


def test_unsorted_and_duplicate_rows_are_fixed_with_warnings() -> None:
    text = (
        "Time,Carbon Intensity\n2020-01-01 01:00:00,3\n2020-01-01 00:00:00,1\n"
        "2020-01-01 00:30:00,2\n2020-01-01 00:30:00,99\n"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tr = parse_trace_csv(text, name="messy.csv")
    messages = " ".join(str(w.message) for w in caught)
    assert "not in time order" in messages and "duplicate" in messages
    assert list(tr.values_g_per_kwh) == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("When,Carbon Intensity\n2020-01-01 00:00:00,1\n", "missing column 'Time'"),
        ("Time,Intensity\n2020-01-01 00:00:00,1\n", "missing column 'Carbon Intensity'"),
        (
            "Time,Carbon Intensity\n2020-01-01 00:00:00,1\nyesterday,2\n",
            "line 3: cannot parse time",
        ),
        (
            "Time,Carbon Intensity\n2020-01-01 00:00:00,1\n2020-01-01 01:00:00,-5\n",
            "line 3: negative",
        ),
        (
            "Time,Carbon Intensity\n2020-01-01 00:00:00,nan\n2020-01-01 01:00:00,1\n",
            "line 2: intensity is nan",
        ),
        (
            "Time,Carbon Intensity\n2020-01-01 00:00:00,abc\n",
            "line 2: intensity 'abc' is not a number",
        ),
        ("Time,Carbon Intensity\n2020-01-01 00:00:00,\n", "line 2: missing intensity"),
        ("Time,Carbon Intensity\n2020-01-01 00:00:00,1\n", "at least two"),
        ("", "empty"),
    ],
)
def test_bad_csv_one_line_error(text: str, needle: str) -> None:
    with pytest.raises(BadInputError) as err:
        parse_trace_csv(text, name="bad.csv")
    message = str(err.value)
    assert needle in message and "bad.csv" in message and "\n" not in message


def test_missing_file_names_the_shipped_traces(tmp_path) -> None:
    with pytest.raises(BadInputError, match="no such file.*gb_2020"):
        load_trace(tmp_path / "nope.csv")


def test_integration_weights_partial_slots() -> None:
    tr = hourly([100, 200, 400])
    # 30 min of 100, then 60 of 200, then 15 of 400
    a, b = T0_S + 1800, T0_S + 2 * 3600 + 900
    expected = (1800 * 100 + 3600 * 200 + 900 * 400) / (b - a)
    assert tr.mean_over(a, b) == pytest.approx(expected, rel=1e-12)
    assert tr.mean_over(T0_S + 4000, T0_S + 4000) == 200.0  # a point: the value in force
    means = tr.mean_over(np.array([T0_S, T0_S + 3600]), np.array([T0_S + 3600, T0_S + 3 * 3600]))
    assert list(means) == pytest.approx([100, 300])
    with pytest.raises(BadInputError, match="outside the trace"):
        tr.mean_over(T0_S, T0_S + 4 * 3600)


def test_trace_intensity_implements_the_contract() -> None:
    src = TraceIntensity(trace=hourly([100, 200, 400]))
    assert isinstance(src, IntensitySource) and src.name == "trace:hand.csv"
    got = src.intensity_over(T0 + timedelta(minutes=30), T0 + timedelta(minutes=90))
    assert isinstance(got, CarbonIntensity)
    assert got.intensity_g_per_kwh == pytest.approx(150.0)
    assert got.source == "trace:hand.csv" and got.region == "hand"
    with pytest.raises(BadInputError, match="timezone"):
        src.intensity_over(datetime(2020, 3, 1), datetime(2020, 3, 1, 1))
    gb = TraceIntensity(trace="gb_2020", region="GB")
    assert gb.intensity_over(T0, T0 + timedelta(hours=5)).region == "GB"


def test_resample_keeps_the_integral_and_upsamples_exactly() -> None:
    tr = hourly([100, 200, 400, 800])
    down = tr.resample(120)
    assert list(down.values_g_per_kwh) == [150.0, 600.0] and down.is_regular
    up = tr.resample(30)
    assert list(up.values_g_per_kwh) == [100, 100, 200, 200, 400, 400, 800, 800]
    gb = load_trace("gb_2020")  # mixed 15/30-min rows
    g30 = gb.resample(30)
    assert g30.is_regular and g30.step_s == 1800
    assert g30.values_g_per_kwh.mean() == pytest.approx(gb.mean_over(gb.start_s, gb.end_s))


def test_slice_cuts_exactly() -> None:
    tr = hourly([100, 200, 400])
    part = tr.slice(T0 + timedelta(minutes=30), T0 + timedelta(minutes=150))
    assert part.start_s == T0_S + 1800 and part.end_s == T0_S + 9000
    assert list(part.values_g_per_kwh) == [100, 200, 400]
    assert part.mean_over(part.start_s, part.end_s) == pytest.approx(
        tr.mean_over(T0_S + 1800, T0_S + 9000)
    )


def test_gaps_are_measured_and_checked() -> None:
    times = T0_S + 3600 * np.array([0, 1, 2, 6, 7])  # 3 h missing after 02:00
    tr = Trace(times_s=times, values_g_per_kwh=np.ones(5), name="gappy.csv")
    assert tr.max_gap_s == 3 * 3600
    tr.check_gaps(job_s=3 * 3600)
    with pytest.raises(BadInputError, match="3 h of missing data after 2020-03-01 02:00"):
        tr.check_gaps(job_s=2 * 3600)
