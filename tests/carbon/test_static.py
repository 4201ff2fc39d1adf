"""nas.carbon static sources: fixed value, codecarbon regions, resolution of the options."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta

import pytest

from nas.carbon import (
    CarbonIntensity,
    FixedIntensity,
    IntensitySource,
    RegionIntensity,
    kgco2e,
    list_regions,
    resolve_intensity_source,
)
from nas.errors import BadInputError, UnknownRegionError

T0 = datetime(2024, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)


def _g(region: str) -> float:
    return RegionIntensity(region=region).intensity_over(T0, T1).intensity_g_per_kwh


def test_kgco2e() -> None:
    assert kgco2e(1.0, 500.0) == pytest.approx(0.5)
    assert kgco2e(0.002, 250.0) == pytest.approx(0.0005)


def test_country_levels() -> None:
    assert 0 < _g("FRA") < 150  # nuclear and hydro
    assert _g("POL") > 500  # coal
    assert _g("FRA") < _g("GBR") < _g("POL")


def test_iso2_iso3_name_and_case_agree() -> None:
    fra = RegionIntensity(region="FRA").intensity_over(T0, T1)
    for alias in ("FR", "fr", "fra", " Fra ", "France"):
        assert RegionIntensity(region=alias).intensity_over(T0, T1) == fra
    assert fra.region == "FRA"
    assert fra.source.startswith("codecarbon:global_energy_mix:FRA (year ")
    assert _g("GB") == _g("GBR") == _g("uk")


def test_static_source_ignores_time() -> None:
    src = RegionIntensity(region="DEU")
    assert isinstance(src, IntensitySource)
    a = src.intensity_over(T0, T1)
    b = src.intensity_over(T0 + timedelta(days=180), T1 + timedelta(days=181))
    assert a == b and isinstance(a, CarbonIntensity)
    assert src.name == "region:DEU"


def test_sub_national_regions() -> None:
    ca = RegionIntensity(region="USA:california").intensity_over(T0, T1)
    assert ca.region == "USA:california"
    assert "usa_emissions" in ca.source and "year" in ca.source
    assert _g("usa:CA") == _g("US:California") == ca.intensity_g_per_kwh
    # eGRID lbs/MWh converted to g/kWh: West Virginia (coal) far above Washington (hydro)
    assert _g("USA:west virginia") > 800 > 150 > _g("USA:washington")
    assert _g("CAN:quebec") < _g("CAN:alberta")
    assert "USA:california" in list_regions() and "CAN:quebec" in list_regions()


@pytest.mark.parametrize("code", ["XYZ", "ZZ", "Atlantis", "FRA:paris", "USA:atlantis", "  "])
def test_unknown_region(code: str) -> None:
    with pytest.raises(UnknownRegionError, match="region"):
        RegionIntensity(region=code)


def test_unknown_region_message_is_one_clear_line() -> None:
    with pytest.raises(UnknownRegionError) as info:
        RegionIntensity(region="XYZ")
    msg = str(info.value)
    assert "\n" not in msg and "'XYZ'" in msg and "list_regions()" in msg
    assert isinstance(info.value, BadInputError)  # exit code 2


def test_list_regions() -> None:
    regions = list_regions()
    assert {"FRA", "POL", "GBR", "USA", "DEU"} <= set(regions)
    assert len(regions) == len(set(regions)) > 150
    for code in regions[::25]:  # every listed code resolves to itself
        assert RegionIntensity(region=code).region == code


def test_fixed_round_trip() -> None:
    src = FixedIntensity(intensity_g_per_kwh=123.5)
    ci = src.intensity_over(T0, T1)
    assert ci == CarbonIntensity(123.5, "fixed", None)
    assert ci.to_dict() == {"intensity_g_per_kwh": 123.5, "source": "fixed", "region": None}
    assert FixedIntensity(intensity_g_per_kwh=0).intensity_g_per_kwh == 0.0


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, "300", True])
def test_fixed_rejects_bad_values(bad: object) -> None:
    with pytest.raises(BadInputError, match="intensity_g_per_kwh"):
        FixedIntensity(intensity_g_per_kwh=bad)  # type: ignore[arg-type]


def test_resolve_one_option() -> None:
    region = resolve_intensity_source(region="POL")
    assert isinstance(region, RegionIntensity) and region.region == "POL"
    fixed = resolve_intensity_source(intensity_g_per_kwh=42.0)
    assert fixed.intensity_over(T0, T1) == CarbonIntensity(42.0, "fixed", None)
    with pytest.raises(UnknownRegionError):
        resolve_intensity_source(region="NOPE")


def test_resolve_both_is_an_error() -> None:
    with pytest.raises(BadInputError, match="region and intensity_g_per_kwh"):
        resolve_intensity_source(region="FRA", intensity_g_per_kwh=50.0)


def test_resolve_neither_is_labelled_world_average(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="nas.carbon"):
        src = resolve_intensity_source()
    ci = src.intensity_over(T0, T1)
    assert ci.source == "codecarbon:world_average (no region given)"
    assert 300 < ci.intensity_g_per_kwh < 700
    assert any("world average" in r.getMessage() for r in caplog.records)
