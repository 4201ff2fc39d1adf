"""Static carbon intensities: a fixed value, or a region's yearly average from codecarbon's data.

Data read from the installed codecarbon package (``codecarbon/data/private_infra/``), never
from the network, once per process:

- countries (ISO 3166 alpha-3): ``global_energy_mix.json``, field ``carbon_intensity``
  (gCO2e/kWh) and ``year`` per country (2023 for most in codecarbon 3.3);
- US states ``USA:<state>``: ``<year>/usa_emissions.json`` (EPA eGRID, lbs/MWh, converted);
- Canadian provinces ``CAN:<province>``: ``<year>/canada_energy_mix.json`` (generation shares
  in percent), weighted as codecarbon does: coal, petroleum and natural-gas shares times their
  factors from ``carbon_intensity_per_source.json``, other sources counted as zero;
- Chinese provinces ``CHN:<province>``: ``<year>/china_provincial_emissions.json`` (CO2 only);
- Swedish/Norwegian bidding zones ``SWE:SE1`` ... ``NOR:NO5``: ``nordic_emissions.json``.

The newest ``<year>`` folder holding a file is used. The world average (no region given) is
``world_average`` from ``carbon_intensity_per_source.json``.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import math
import numbers
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from nas.carbon._base import CarbonIntensity, IntensitySource
from nas.errors import BadInputError, UnknownRegionError

__all__ = [
    "FixedIntensity",
    "RegionIntensity",
    "WorldAverageIntensity",
    "list_regions",
    "resolve_intensity_source",
]

log = logging.getLogger(__name__)

_G_PER_KWH_PER_LBS_PER_MWH = 0.45359237  # 1 lb/MWh = 453.59237 g / 1000 kWh
_ALIASES = {"UK": "GBR"}  # common, though not ISO 3166 (GB)
_FOSSIL_FACTORS = {"coal": "coal", "petroleum": "petroleum", "naturalGas": "natural_gas"}


@dataclass(frozen=True)
class _Entry:
    intensity_g_per_kwh: float
    source: str
    region: str


class _ConstantIntensity(IntensitySource):
    """Same intensity whatever the time; ``intensity_over`` ignores ``start``/``end``."""

    def __init__(self, *, value: CarbonIntensity, name: str) -> None:
        self._value = value
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def intensity_g_per_kwh(self) -> float:
        return self._value.intensity_g_per_kwh

    @property
    def source(self) -> str:
        return self._value.source

    @property
    def region(self) -> str | None:
        return self._value.region

    def intensity_over(self, start: datetime, end: datetime) -> CarbonIntensity:
        return self._value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._value.intensity_g_per_kwh:g} g/kWh, {self.source!r})"


class FixedIntensity(_ConstantIntensity):
    """A user-given intensity in gCO2e/kWh (source ``"fixed"``)."""

    def __init__(self, *, intensity_g_per_kwh: float) -> None:
        value = intensity_g_per_kwh
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise BadInputError(f"intensity_g_per_kwh must be a number, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise BadInputError(f"intensity_g_per_kwh must be finite and >= 0, got {value!r}")
        super().__init__(value=CarbonIntensity(float(value), "fixed"), name="fixed")


class RegionIntensity(_ConstantIntensity):
    """Yearly average of a country (ISO-3 ``FRA``, ISO-2 ``FR``, or its English name) or of a
    sub-national region (``USA:california``, ``CAN:quebec``, ``CHN:beijing``, ``SWE:SE3``).

    Case-insensitive. An unknown code raises :class:`~nas.errors.UnknownRegionError`.
    """

    def __init__(self, *, region: str) -> None:
        entry = _lookup(region)
        value = CarbonIntensity(entry.intensity_g_per_kwh, entry.source, entry.region)
        super().__init__(value=value, name=f"region:{entry.region}")


class WorldAverageIntensity(_ConstantIntensity):
    """codecarbon's world average, used only when no region nor value was given."""

    def __init__(self) -> None:
        value = float(_read_json("carbon_intensity_per_source.json")["world_average"])
        source = "codecarbon:world_average (no region given)"
        super().__init__(value=CarbonIntensity(value, source, "WORLD"), name="world_average")


def list_regions() -> list[str]:
    """Canonical region codes: ISO-3 countries, then ``COUNTRY:region`` sub-national codes."""
    countries, subregions = _tables()
    return sorted(countries) + sorted({e.region for e in subregions.values()})


def resolve_intensity_source(
    *, region: str | None = None, intensity_g_per_kwh: float | None = None
) -> IntensitySource:
    """The intensity source for the given option; at most one may be given.

    ``region="trace:gb_2020"`` (or ``"trace:path/to.csv"``) gives the trace's intensity over
    the interval the work ran (:class:`nas.scheduling.TraceIntensity`). With none,
    codecarbon's world average, labelled as such, and a logged warning. To add an option,
    add a keyword and an entry to ``given``.
    """
    given: dict[str, tuple[Any, Any]] = {
        "region": (region, _region_or_trace),
        "intensity_g_per_kwh": (
            intensity_g_per_kwh,
            lambda v: FixedIntensity(intensity_g_per_kwh=v),
        ),
    }
    chosen = [(k, v, make) for k, (v, make) in given.items() if v is not None]
    if len(chosen) > 1:
        names = " and ".join(k for k, _, _ in chosen)
        raise BadInputError(f"carbon intensity: give only one of {names}, not both")
    if chosen:
        _, value, make = chosen[0]
        return make(value)
    source = WorldAverageIntensity()
    log.warning(
        "no carbon region or intensity given: using codecarbon's world average %.0f gCO2e/kWh; "
        "set a region (e.g. FRA) for meaningful kgCO2e",
        source.intensity_g_per_kwh,
    )
    return source


def _region_or_trace(region: str) -> IntensitySource:
    """``trace:<shipped name or CSV path>`` is a time-varying trace; anything else a region."""
    if isinstance(region, str) and region.startswith("trace:"):
        from nas.carbon._trace_source import TraceIntensity  # lazy: numpy, the trace readers

        return TraceIntensity(trace=region.removeprefix("trace:"))
    return RegionIntensity(region=region)


def _unknown(region: str, hint: str = "") -> UnknownRegionError:
    return UnknownRegionError(
        f"unknown carbon region {region!r}{hint}; use an ISO-3166 country code like FRA or GBR, "
        "see list_regions()"
    )


def _lookup(region: str) -> _Entry:
    if not isinstance(region, str) or not region.strip():
        raise UnknownRegionError(f"carbon region must be a non-empty code, got {region!r}")
    countries, subregions = _tables()
    country_part, sep, sub_part = region.strip().partition(":")
    iso3 = _country_iso3(country_part.strip(), countries)
    if iso3 is None:
        raise _unknown(region)
    if not sep:
        if iso3 not in countries:
            raise _unknown(region, f" (no data for {iso3})")
        return countries[iso3]
    entry = subregions.get(f"{iso3}:{sub_part.strip().lower()}")
    if entry is None:
        has = any(k.startswith(f"{iso3}:") for k in subregions)
        hint = f" (no such region of {iso3})" if has else f" ({iso3} has no sub-national data)"
        raise _unknown(region, hint)
    return entry


def _country_iso3(code: str, countries: dict[str, _Entry]) -> str | None:
    """ISO-3 code for an ISO-3/ISO-2 code or an English country name (None if unknown)."""
    upper = _ALIASES.get(code.upper(), code.upper())
    if upper in countries:
        return upper
    if len(upper) in (2, 3):
        try:
            import pycountry  # a codecarbon dependency
        except ImportError:
            return None
        found = pycountry.countries.get(**{f"alpha_{len(upper)}": upper})
        return None if found is None else str(found.alpha_3)
    return _country_names().get(code.lower())


@functools.lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    mix = _read_json("global_energy_mix.json")
    return {str(v["country_name"]).lower(): iso for iso, v in mix.items() if v.get("country_name")}


@functools.lru_cache(maxsize=1)
def _data_dir() -> Path:
    spec = importlib.util.find_spec("codecarbon")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("carbon regions need codecarbon's data: pip install codecarbon")
    return Path(spec.origin).parent / "data" / "private_infra"


@functools.cache
def _read_json(relative: str) -> dict[str, Any]:
    with open(_data_dir() / relative, encoding="utf-8") as fh:
        return json.load(fh)


def _newest(filename: str) -> tuple[str, str] | None:
    """(relative path, year) of the newest ``<year>/filename`` in codecarbon's data."""
    years = sorted(
        p.parent.name for p in _data_dir().glob(f"*/{filename}") if p.parent.name.isdigit()
    )
    return (f"{years[-1]}/{filename}", years[-1]) if years else None


@functools.lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, _Entry], dict[str, _Entry]]:
    """(countries by ISO-3, sub-national entries by every ``ISO3:lowercase-alias``)."""
    countries = {
        iso: _Entry(
            float(v["carbon_intensity"]),
            f"codecarbon:global_energy_mix:{iso} (year {v.get('year', '?')})",
            iso,
        )
        for iso, v in _read_json("global_energy_mix.json").items()
        if v.get("carbon_intensity") is not None
    }
    subs: dict[str, _Entry] = {}
    for country, name, aliases, value, file, note in _sub_national():
        key = f"{country}:{name}"
        entry = _Entry(value, f"codecarbon:{file}:{key} ({note})", key)
        for alias in {name, *aliases}:
            subs[f"{country}:{alias.lower()}"] = entry
    return countries, subs


def _sub_national() -> list[tuple[str, str, list[str], float, str, str]]:
    """(country, name, aliases, gCO2e/kWh, file, note) from each sub-national file present."""
    rows: list[tuple[str, str, list[str], float, str, str]] = []
    if (usa := _newest("usa_emissions.json")) is not None:
        for state, v in _read_json(usa[0]).items():
            if not state.startswith("_") and state != "usa":  # national value: see global mix
                g = float(v["emissions"]) * _G_PER_KWH_PER_LBS_PER_MWH
                rows.append(
                    ("USA", state, [v["regionCode"]], g, "usa_emissions", f"eGRID year {usa[1]}")
                )
    if (can := _newest("canada_energy_mix.json")) is not None:
        factors = _read_json("carbon_intensity_per_source.json")
        note = f"year {can[1]}, fossil share x factor"
        for province, mix in _read_json(can[0]).items():
            g = sum(mix.get(k, 0.0) * factors[f] for k, f in _FOSSIL_FACTORS.items()) / mix["total"]
            rows.append(("CAN", province, [], g, "canada_energy_mix", note))
    if (chn := _newest("china_provincial_emissions.json")) is not None:
        for code, v in _read_json(chn[0])["data"].items():
            names = v.get("names") or [code]
            note = f"year {v.get('year', chn[1])}, CO2 only"
            rows.append(
                (
                    "CHN",
                    names[0],
                    [*names, code],
                    float(v["emission_factor"]),
                    "china_provincial_emissions",
                    note,
                )
            )
    if (_data_dir() / "nordic_emissions.json").is_file():
        for zone, v in _read_json("nordic_emissions.json")["data"].items():
            country = {"SE": "SWE", "NO": "NOR"}.get(zone[:2])
            if country is not None and zone[2:].isdigit():  # bidding zones; FI is the country
                note = f"year {v.get('year', '?')}"
                rows.append(
                    (country, zone, [], float(v["emission_factor"]), "nordic_emissions", note)
                )
    return rows
