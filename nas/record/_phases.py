"""A trial's phases: the named meter windows its work runs in, and the one place they are summed.

Every step of a trial after it starts runs inside exactly one phase (:data:`PHASES`); phases
never overlap, so a trial's search energy is the plain sum of its phases' energies
(:meth:`PhaseLog.accounting`). Windows a step opens inside a phase (teacher passes, federated
clients, early-stopping rungs) are details of that phase and are never added again.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from nas.record._fields import Provenance, TrialAttrs, domain_key, phase_key

if TYPE_CHECKING:  # pragma: no cover
    from nas.energy import Measurement, Meter


@dataclass(frozen=True)
class PhaseSpec:
    name: str
    model_cost: bool  # counts in energy_kwh / kgco2e: producing the model, not searching
    doc: str


PHASES: tuple[PhaseSpec, ...] = (
    PhaseSpec("sample", False, "carbon-budget check, sampling the architecture and settings"),
    PhaseSpec("reuse", False, "fingerprint and the search for a finished duplicate"),
    PhaseSpec("build", False, "build the model, static cost (params, FLOPs), training plan"),
    PhaseSpec("screen", False, "zero-cost proxy score"),
    PhaseSpec("train", True, "training, with teacher passes and rung checks inside"),
    PhaseSpec("comm", True, "federated communication (estimated: bytes x kWh/GB)"),
    PhaseSpec("finetune", True, "structured pruning and the fine-tune after it"),
    PhaseSpec("quantize", True, "quantization of the deployed model"),
    PhaseSpec("eval", True, "validation accuracy (the objective)"),
    PhaseSpec("test", False, "test accuracy (reporting only)"),
    PhaseSpec("inference", False, "latency and energy per prediction, warm-up included"),
    PhaseSpec("lifecycle", False, "inference measured on the deployment target"),
    PhaseSpec("upload", False, "the deployed weights to the artifact store"),
    PhaseSpec("store", False, "the trial record to the storage"),
    # econas train only (a trial never has these):
    PhaseSpec("checkpoint", False, "final training: writing a checkpoint"),
    PhaseSpec("lost", False, "final training: an interrupted epoch's work, redone on resume"),
)
PHASE_NAMES = tuple(p.name for p in PHASES)
MODEL_COST_PHASES = frozenset(p.name for p in PHASES if p.model_cost)
METERED_FRACTION_FLAG = 0.95  # pareto and report flag trials below this


def phase_attrs(m: Measurement) -> dict[str, Any]:
    """The flat attrs of one phase: energy (kWh, J, per domain), duration, kind, source."""
    from nas.energy import sanitize_domain

    attrs: dict[str, Any] = {
        phase_key(m.name, "energy_kwh"): float(m.energy_kwh),
        phase_key(m.name, "energy_j"): float(m.total_energy_j),
        phase_key(m.name, "duration_s"): float(m.duration_s),
        phase_key(m.name, "energy_kind"): m.kind,
        phase_key(m.name, "energy_source"): m.source,
        phase_key(m.name, "hardware"): m.hardware,
    }
    for domain, joules in m.energy_j.items():
        attrs[domain_key(m.name, sanitize_domain(domain))] = float(joules)
    return attrs


class PhaseLog:
    """The phases of one trial, measured on ``meter``, in the order they ran.

    ``phase(name)`` is a context manager: a window opened with ``restart=True`` (a window left
    open by a failure elsewhere cannot block it), always ended, even when the work fails (the
    trial paid for it). Phases may not nest. ``wait()`` brackets time spent idle (a green
    window): it is excluded from the trial's wall time, and nothing is metered.
    """

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.measurements: list[Measurement] = []
        self.started_at = datetime.now(UTC)
        self._t0 = time.perf_counter()
        self._last_end = self._t0
        self._waits_s = 0.0
        self._open: str | None = None

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if name not in PHASE_NAMES:
            raise ValueError(f"unknown phase {name!r}; add it to nas.record.PHASES")
        if self._open is not None:
            raise RuntimeError(f"phase {name!r} opened inside phase {self._open!r}")
        window = f"phase:{name}"  # never collides with a step's own window of the same name
        self.meter.begin_window(window, restart=True)
        self._open = name
        try:
            yield
        finally:
            self._open = None
            m = self.meter.end_window(window)
            self._last_end = time.perf_counter()
            if m is not None:
                self.measurements.append(dataclasses.replace(m, name=name))

    def add(self, m: Measurement) -> None:
        """A phase measured elsewhere, e.g. the estimated network energy of federated rounds."""
        if m.name not in PHASE_NAMES:
            raise ValueError(f"unknown phase {m.name!r}; add it to nas.record.PHASES")
        self.measurements.append(m)

    @contextmanager
    def wait(self) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._waits_s += time.perf_counter() - t0
            self._last_end = time.perf_counter()

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(m.name for m in self.measurements))

    def merged(self) -> list[Measurement]:
        """One measurement per phase name (a phase that ran twice is summed)."""
        from nas.energy import combine

        out = []
        for name in self.names:
            parts = [m for m in self.measurements if m.name == name]
            out.append(parts[0] if len(parts) == 1 else combine(parts, name))
        return out

    @property
    def wall_s(self) -> float:
        return max(self._last_end - self._t0 - self._waits_s, 0.0)

    def energy_kwh(self, *, model_cost_only: bool = False) -> float:
        return float(
            sum(
                m.energy_kwh
                for m in self.measurements
                if not model_cost_only or m.name in MODEL_COST_PHASES
            )
        )

    def attrs(self) -> dict[str, Any]:
        """Per-phase attrs of every phase so far and the phase list."""
        out: dict[str, Any] = {}
        for m in self.merged():
            out.update(phase_attrs(m))
        out[TrialAttrs.phases] = ",".join(self.names)
        return out

    def accounting(self, intensity_g_per_kwh: float | None) -> dict[str, Any]:
        """The trial's energy totals, written here and only here.

        ``energy_kwh`` (and ``kgco2e``) is what producing the model cost (the model-cost
        phases); ``search_energy_kwh`` is every phase, so the search's cost is the sum of its
        trials'. ``metered_fraction`` is the summed phase time over the trial's wall time.
        """
        from nas.carbon import kgco2e
        from nas.energy import energy_kind

        phases = self.merged()
        model_kwh = self.energy_kwh(model_cost_only=True)
        search_kwh = self.energy_kwh()
        metered_s = sum(m.duration_s for m in phases)
        wall_s = self.wall_s
        out = self.attrs()
        out.update(
            {
                TrialAttrs.energy_kwh: model_kwh,
                TrialAttrs.energy_j: model_kwh * 3.6e6,
                TrialAttrs.search_energy_kwh: search_kwh,
                TrialAttrs.wall_s: wall_s,
                TrialAttrs.duration_s: wall_s,
                TrialAttrs.metered_fraction: min(metered_s / wall_s, 1.0) if wall_s > 0 else 1.0,
                TrialAttrs.started_at: self.started_at.isoformat(),
            }
        )
        if intensity_g_per_kwh is not None:
            out[TrialAttrs.kgco2e] = kgco2e(model_kwh, intensity_g_per_kwh)
            out[TrialAttrs.search_kgco2e] = kgco2e(search_kwh, intensity_g_per_kwh)
        if phases:
            measured = [m for m in phases if m.source != "network-estimate"] or phases
            out[TrialAttrs.energy_source] = measured[0].source
            out[TrialAttrs.hardware] = measured[0].hardware
            out[TrialAttrs.energy_kind] = energy_kind(m.kind for m in phases)
            out.update(_provenance_of(measured))
        return out


def _provenance_of(phases: list[Measurement]) -> dict[str, Any]:
    """The estimate's constants (with sources), CPU time, and the meter's scope and share."""
    out: dict[str, Any] = {}
    cpu_s = 0.0
    for m in phases:
        constants = m.estimate_constants()
        if constants:
            cpu_s += float(constants.get("cpu_time_s") or 0.0)
            out.setdefault(Provenance.watts_per_core, constants.get("watts_per_core"))
            out.setdefault(Provenance.watts_per_core_source, constants.get("watts_per_core_source"))
            out.setdefault(Provenance.dram_w_per_gb, constants.get("dram_w_per_gb"))
            out.setdefault(Provenance.dram_w_per_gb_source, constants.get("dram_w_per_gb_source"))
    if out:
        out[Provenance.cpu_time_s] = cpu_s
    out[Provenance.energy_scope] = phases[0].scope
    charged = sum(m.total_energy_j for m in phases)
    unshared = sum(m.total_energy_j / m.share for m in phases if m.share > 0)
    out[Provenance.energy_share] = charged / unshared if unshared > 0 else 1.0
    return {k: v for k, v in out.items() if v is not None}
