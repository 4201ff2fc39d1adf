"""What a meter window returns: :class:`Measurement`, and how windows are combined."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

J_PER_KWH = 3.6e6
KINDS = ("measured", "estimated")
# The estimate's stated constants, carried into attrs and through combine().
ESTIMATE_CONSTANTS = (
    "cpu_time_s",
    "watts_per_core",
    "watts_per_core_source",
    "dram_w_per_gb",
    "dram_w_per_gb_source",
)
# How details of several windows of one meter merge (see merge_details).
_SUMMED = frozenset({"cpu_time_s", "samples", "counter_wraps", "rss_samples", "total_energy_j"})
_MAXED = frozenset({"peers", "board_processes"})
_NOT_MERGED = frozenset({"combined_from", "windows", "window_count", "share"})


@dataclass(frozen=True)
class Measurement:
    """Energy drawn during one named window, with its provenance.

    ``energy_j`` maps each domain (``"gpu:0"``, ``"package-0"``, ``"dram"``, ``"cpu"``) to
    joules; the domains are disjoint, so ``total_energy_j`` is their sum. ``kind`` is
    ``"estimated"`` as soon as any domain is estimated (per-domain kinds are in
    ``details["domain_kinds"]``); ``details`` holds the constants and methods used, and for
    a composite meter each part's details under ``details["parts"]``.
    """

    name: str
    duration_s: float
    energy_j: dict[str, float]
    total_energy_j: float
    source: str
    kind: str
    hardware: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Measurement.kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def energy_kwh(self) -> float:
        return self.total_energy_j / J_PER_KWH

    @property
    def scope(self) -> str:
        """What was metered: ``process``/``children`` (estimate), ``system`` (RAPL),
        ``device`` (NVML), ``device+system`` for a composite; ``unknown`` when unstated."""
        return _scope(self.details)

    @property
    def share(self) -> float:
        """Fraction of the meter's reading charged to this process (1.0 when not shared)."""
        return _share(self.details, self.total_energy_j)

    def estimate_constants(self) -> dict[str, Any]:
        """The estimate's constants (cpu_time_s, watts_per_core, dram_w_per_gb and their
        sources), from ``details`` or a composite's parts; {} for measured-only meters."""
        return _find_constants(self.details)

    def to_attrs(self, prefix: str = "") -> dict[str, float | str]:
        """Flat JSON-able attributes with units in the names (e.g. for Optuna user attrs)."""
        attrs: dict[str, float | str] = {
            f"{prefix}energy_j": float(self.total_energy_j),
            f"{prefix}energy_kwh": float(self.energy_kwh),
            f"{prefix}duration_s": float(self.duration_s),
            f"{prefix}energy_source": self.source,
            f"{prefix}energy_kind": self.kind,
            f"{prefix}hardware": self.hardware,
            f"{prefix}energy_scope": self.scope,
            f"{prefix}energy_share": float(self.share),
        }
        for domain, joules in self.energy_j.items():
            attrs[f"{prefix}energy_j_{sanitize_domain(domain)}"] = float(joules)
        for key, value in self.estimate_constants().items():
            attrs[f"{prefix}{key}"] = value if isinstance(value, str) else float(value)
        return attrs

    @classmethod
    def combine(cls, measurements: Iterable[Measurement], name: str) -> Measurement:
        """Sum sequential windows of the same meter into one measurement called ``name``.

        Energies, durations and ``cpu_time_s`` are summed; constants equal in every window
        (the estimate's, the scope, the meter's method) are kept; a shared meter's ``share``
        becomes charged / unshared joules over all windows.
        """
        parts = list(measurements)
        if not parts:
            raise ValueError("combine() needs at least one measurement")
        sources = {m.source for m in parts}
        if len(sources) > 1:
            raise ValueError(f"combine() needs windows of one meter, got sources {sorted(sources)}")
        total = parts[0]
        for m in parts[1:]:
            total = add_measurements(total, m, name)
        details = {
            **total.details,
            "combined_from": [m.name for m in parts],
            "window_count": len(parts),
            "windows": [m.details for m in parts],
        }
        return cls(
            name=name,
            duration_s=total.duration_s,
            energy_j=total.energy_j,
            total_energy_j=total.total_energy_j,
            source=total.source,
            kind=total.kind,
            hardware=total.hardware,
            details=details,
        )


def energy_kind(kinds: Iterable[str]) -> str:
    """The kind of a total of figures of these ``kinds``: ``"measured"`` only if every one
    was measured, else ``"estimated"`` (nothing estimated is shown as measured)."""
    return "measured" if all(k == "measured" for k in kinds) else "estimated"


def add_measurements(a: Measurement, b: Measurement, name: str) -> Measurement:
    """``a`` and ``b`` summed into one measurement called ``name`` (details merged, no
    per-window list: usable as a running total over any number of windows)."""
    energy_j = dict(a.energy_j)
    for domain, joules in b.energy_j.items():
        energy_j[domain] = energy_j.get(domain, 0.0) + joules
    hardware = list(dict.fromkeys([*a.hardware.split(" / "), *b.hardware.split(" / ")]))
    return Measurement(
        name=name,
        duration_s=a.duration_s + b.duration_s,
        energy_j=energy_j,
        total_energy_j=a.total_energy_j + b.total_energy_j,
        source=a.source,
        kind=energy_kind((a.kind, b.kind)),
        hardware=" / ".join(hardware),
        details=merge_details(a.details, a.total_energy_j, b.details, b.total_energy_j),
    )


def merge_details(
    a: Mapping[str, Any], a_total_j: float, b: Mapping[str, Any], b_total_j: float
) -> dict[str, Any]:
    """Details of two windows of one meter (with their totals) as one window's details.

    Counts are summed, peer counts maxed, ``domain_kinds`` and ``subdomains_j`` merged,
    composite ``parts`` merged part by part; other values are kept only when equal.
    """
    out: dict[str, Any] = {}
    for key in dict.fromkeys([*a, *b]):
        if key in _NOT_MERGED or key == "energy_j_unshared":
            continue
        va, vb = a.get(key), b.get(key)
        if key in _SUMMED:
            out[key] = float(va or 0.0) + float(vb or 0.0)
        elif key in _MAXED:
            present = [v for v in (va, vb) if v is not None]
            out[key] = max(present) if present else None
        elif key == "domain_kinds":
            out[key] = {**(va or {}), **(vb or {})}
        elif key == "subdomains_j":
            sub = dict(va or {})
            for domain, joules in (vb or {}).items():
                sub[domain] = sub.get(domain, 0.0) + joules
            out[key] = sub
        elif key == "parts":
            out[key] = _merge_parts(va or {}, vb or {})
        elif key in a and key in b and va == vb:
            out[key] = va
    if "share" in a or "share" in b:
        unshared = _unshared(a, a_total_j) + _unshared(b, b_total_j)
        if "energy_j_unshared" in a or "energy_j_unshared" in b:
            out["energy_j_unshared"] = unshared
        charged = a_total_j + b_total_j
        if unshared > 0:
            out["share"] = charged / unshared
        else:
            out["share"] = (float(a.get("share", 1.0)) + float(b.get("share", 1.0))) / 2
    return out


def _merge_parts(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for src in dict.fromkeys([*a, *b]):
        if src in a and src in b:
            pa, pb = a[src], b[src]
            ta, tb = float(pa.get("total_energy_j", 0.0)), float(pb.get("total_energy_j", 0.0))
            merged[src] = merge_details(pa, ta, pb, tb)
        else:
            merged[src] = dict(a.get(src) or b[src])
    return merged


def _unshared(details: Mapping[str, Any], total_j: float) -> float:
    return float(details.get("energy_j_unshared", total_j))


def _scope(details: Mapping[str, Any]) -> str:
    if "scope" in details:
        return str(details["scope"])
    parts = details.get("parts")
    if parts:
        return "+".join(_scope(p) for p in parts.values())
    return "unknown"


def _share(details: Mapping[str, Any], total_j: float) -> float:
    """Charged / unshared joules; for a composite, over all its parts."""
    parts = details.get("parts")
    if parts and "share" not in details:
        charged = sum(float(p.get("total_energy_j", 0.0)) for p in parts.values())
        unshared = sum(_unshared(p, float(p.get("total_energy_j", 0.0))) for p in parts.values())
        if unshared > 0:
            return charged / unshared
        shares = [_share(p, 0.0) for p in parts.values()]
        return min(shares) if shares else 1.0
    share = details.get("share", 1.0)
    return float(share) if isinstance(share, int | float) and math.isfinite(share) else 1.0


def _find_constants(details: Mapping[str, Any]) -> dict[str, Any]:
    found = {k: details[k] for k in ESTIMATE_CONSTANTS if k in details}
    if found:
        return found
    for part in (details.get("parts") or {}).values():
        found = _find_constants(part)
        if found:
            return found
    return {}


def combine(measurements: Iterable[Measurement], name: str) -> Measurement:
    """Sum sequential windows of the same meter; see :meth:`Measurement.combine`."""
    return Measurement.combine(measurements, name)


def sanitize_domain(domain: str) -> str:
    """``"gpu:0"`` -> ``"gpu_0"``: a domain name usable inside an attribute key."""
    return re.sub(r"[^0-9A-Za-z_\-]", "_", domain)
