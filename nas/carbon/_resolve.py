"""``[carbon] source`` strings, the live source they name, and the fallback a study charges.

Accepted strings (also in ``--carbon-source``)::

    live:uk-carbon-intensity            Great Britain, national (no token)
    live:uk-carbon-intensity:13         one region by id (1-17) ...
    live:uk-carbon-intensity:RG10       ... or by outward postcode
    live:electricitymaps:ZONE           token in ELECTRICITYMAPS_TOKEN, e.g. ZONE = DE, US-CAL-CISO
    live:watttime:REGION                WATTTIME_USER / WATTTIME_PASSWORD, e.g. CAISO_NORTH
    trace:NAME_OR_CSV                   a trace (as [carbon] region = "trace:..." always was)

:func:`parse_source` checks the string's form without the network (unknown provider, a zone
whose country code is unknown: bad input, exit 2); :func:`create_live_source` also needs the
credentials (missing: exit 2). :class:`FallbackIntensity` wraps a live source for a study: when
the provider cannot answer, the trial is charged codecarbon's yearly average of the matching
country, the reason is logged once and kept in the source label and ``fallback_reason``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from nas.carbon._base import CarbonIntensity, IntensitySource
from nas.carbon._live import CarbonSourceUnavailableError, LiveIntensitySource
from nas.carbon._static import WorldAverageIntensity, resolve_intensity_source
from nas.errors import BadInputError

__all__ = [
    "PROVIDERS",
    "region_specs",
    "FallbackIntensity",
    "LiveSpec",
    "create_live_source",
    "parse_source",
    "resolve_carbon_source",
]

log = logging.getLogger(__name__)

PROVIDERS = ("uk-carbon-intensity", "electricitymaps", "watttime")
_EM_ZONE = re.compile(r"^[A-Z]{2}(-[A-Z0-9]+)*$")
_WT_REGION = re.compile(r"^[A-Z][A-Z0-9_]*$")
_UK_POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?$")


@dataclass(frozen=True)
class LiveSpec:
    """A parsed ``live:PROVIDER[:REGION]`` string."""

    provider: str
    region: str | None

    @property
    def text(self) -> str:
        return f"live:{self.provider}" + (f":{self.region}" if self.region else "")

    def with_region(self, region: str) -> LiveSpec:
        return parse_source(f"live:{self.provider}:{region}")  # type: ignore[return-value]

    @property
    def fallback_country(self) -> str | None:
        """ISO code whose codecarbon yearly average stands in when the provider can't answer."""
        if self.provider == "uk-carbon-intensity":
            return "GBR"
        region = self.region or ""
        if self.provider == "watttime" and len(region) != 2:
            return "USA"  # WattTime's balancing areas (CAISO_NORTH, PJM_DC, ...) are American
        return region[:2] or None


def parse_source(text: str) -> LiveSpec | str:
    """A :class:`LiveSpec` for ``live:...``; a ``trace:...`` string back as it is."""
    if not isinstance(text, str) or not text.strip():
        raise BadInputError(
            "carbon source must be a non-empty string, e.g. live:uk-carbon-intensity"
        )
    s = text.strip()
    if s.startswith("trace:"):
        if not s.removeprefix("trace:").strip():
            raise BadInputError("carbon source 'trace:' needs a shipped name or a CSV path")
        return s
    if not s.startswith("live:"):
        raise BadInputError(
            f"carbon source {s!r} is unknown; use live:{{{','.join(PROVIDERS)}}}[:REGION] "
            "or trace:NAME"
        )
    provider, _, region = s.removeprefix("live:").partition(":")
    if provider not in PROVIDERS:
        raise BadInputError(
            f"unknown carbon provider {provider!r}; use one of {', '.join(PROVIDERS)}"
        )
    region = region.strip() or None
    if provider == "uk-carbon-intensity":
        if region is not None:
            code = region.upper()
            ok = (code.isdigit() and 1 <= int(code) <= 17) or bool(_UK_POSTCODE.match(code))
            if not ok:
                raise BadInputError(
                    f"unknown UK region {region!r}; use a region id 1-17 or an outward "
                    "postcode such as RG10"
                )
            region = code
        return LiveSpec(provider, region)
    if region is None:
        what = "ZONE (e.g. DE)" if provider == "electricitymaps" else "REGION (e.g. CAISO_NORTH)"
        raise BadInputError(f"carbon source live:{provider} needs a {what}: live:{provider}:{what}")
    if provider == "electricitymaps":
        if not _EM_ZONE.match(region) or not _known_country(region[:2]):
            raise BadInputError(
                f"unknown Electricity Maps zone {region!r}; zones start with an ISO country "
                "code, e.g. DE, FR, US-CAL-CISO"
            )
    elif not _WT_REGION.match(region):
        raise BadInputError(
            f"unknown WattTime region {region!r}; use its code, e.g. CAISO_NORTH, PJM_DC"
        )
    return LiveSpec(provider, region)


def region_specs(source: str, regions: tuple[str, ...] | list[str]) -> list[LiveSpec]:
    """``--regions A,B`` of a live ``source``: each a zone/region of its provider, or a full
    ``live:...`` string of any provider."""
    home = parse_source(source)
    if not isinstance(home, LiveSpec):
        raise BadInputError("--regions needs a live carbon source (live:PROVIDER:REGION)")
    out: list[LiveSpec] = []
    for r in regions:
        r = r.strip()
        spec = parse_source(r) if r.startswith("live:") else home.with_region(r)
        if not isinstance(spec, LiveSpec):
            raise BadInputError(f"--regions: {r!r} is not a live source")
        out.append(spec)
    if len({s.text for s in out}) != len(out) or len(out) < 2:
        raise BadInputError("--regions needs at least two different regions")
    return out


def _known_country(alpha2: str) -> bool:
    try:
        import pycountry  # a codecarbon dependency
    except ImportError:  # pragma: no cover
        return True
    return pycountry.countries.get(alpha_2=alpha2) is not None or alpha2 == "UK"


def create_live_source(
    spec: LiveSpec,
    *,
    base_url: str | None = None,
    timeout_s: float = 10.0,
    retries: int = 3,
    backoff_s: float = 1.0,
    cache_dir: str | Path | None = None,
) -> LiveIntensitySource:
    """The client for ``spec`` (credentials from the environment; missing: bad input)."""
    from nas.carbon._live_sources import (
        ElectricityMapsIntensity,
        UKCarbonIntensity,
        WattTimeIntensity,
    )

    http: dict[str, Any] = dict(
        timeout_s=timeout_s, retries=retries, backoff_s=backoff_s, cache_dir=cache_dir
    )
    if base_url:
        http["base_url"] = base_url
    if spec.provider == "uk-carbon-intensity":
        return UKCarbonIntensity(region=spec.region, **http)
    if spec.provider == "electricitymaps":
        return ElectricityMapsIntensity(zone=str(spec.region), **http)
    return WattTimeIntensity(region=str(spec.region), **http)


class FallbackIntensity(IntensitySource):
    """A live source that never fails a trial: on an outage, the country's yearly average."""

    def __init__(self, *, live: LiveIntensitySource, country: str | None) -> None:
        self.live = live
        self.country = country
        self._warned: set[str] = set()

    @property
    def name(self) -> str:
        return self.live.name

    def __repr__(self) -> str:
        return f"FallbackIntensity({self.live!r}, country={self.country!r})"

    def fallback(self, reason: str) -> CarbonIntensity:
        static = resolve_intensity_source(region=self.country) if self.country else None
        if static is None:
            static = WorldAverageIntensity()
        value = static.intensity_over(datetime.now(), datetime.now())  # constant
        if reason not in self._warned:
            self._warned.add(reason)
            log.warning(
                "%s; charging %s (%.0f gCO2e/kWh) instead",
                reason,
                value.source,
                value.intensity_g_per_kwh,
            )
        return CarbonIntensity(
            value.intensity_g_per_kwh,
            f"{value.source} (fallback: {reason})",
            value.region,
            fallback_reason=reason,
        )

    def intensity_over(self, start: datetime, end: datetime) -> CarbonIntensity:
        try:
            return self.live.intensity_over(start, end)
        except CarbonSourceUnavailableError as exc:
            return self.fallback(str(exc))


def resolve_carbon_source(
    *,
    source: str | None = None,
    region: str | None = None,
    intensity_g_per_kwh: float | None = None,
    base_url: str | None = None,
    timeout_s: float = 10.0,
    retries: int = 3,
    cache_dir: str | Path | None = None,
) -> IntensitySource:
    """The intensity source of ``[carbon]`` (or the verbs' flags); at most one of
    ``source``, ``region``, ``intensity_g_per_kwh``. A live source comes wrapped in
    :class:`FallbackIntensity`."""
    if source is None:
        if base_url:
            raise BadInputError("--carbon-base-url / carbon.base_url needs a live carbon source")
        return resolve_intensity_source(region=region, intensity_g_per_kwh=intensity_g_per_kwh)
    if region is not None or intensity_g_per_kwh is not None:
        raise BadInputError("carbon: give only one of source, region, intensity_g_per_kwh")
    spec = parse_source(source)
    if isinstance(spec, str):
        if base_url:
            raise BadInputError("--carbon-base-url / carbon.base_url needs a live carbon source")
        return resolve_intensity_source(region=spec)
    live = create_live_source(
        spec, base_url=base_url, timeout_s=timeout_s, retries=retries, cache_dir=cache_dir
    )
    return FallbackIntensity(live=live, country=spec.fallback_country)
