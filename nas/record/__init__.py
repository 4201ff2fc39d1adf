"""The trial record: the schema of everything a trial stores, its phases, its reader.

Every user attr a trial (or a study) stores is named here (:mod:`nas.record._fields`), with
its unit, type and meaning; no other module spells an attr name. A trial's work runs in
phases (:data:`PHASES`) measured by a :class:`PhaseLog`, whose :meth:`PhaseLog.accounting`
is the one place the trial's energy totals are computed. :class:`TrialRecord` reads a stored
trial for ``pareto``, ``report``, ``export``, the carbon label, lifecycle, reuse and the carbon
budget, migrating records of earlier releases (``record_version``) on read.

    rec = TrialRecord.of(frozen_trial)
    rec.accuracy, rec.kgco2e, rec.search_energy_kwh, rec.phases, rec.metered_fraction
    rec.get(Compression.quantization)
"""

from __future__ import annotations

from nas.record._fields import (
    PHASE_SUFFIXES,
    RECORD_VERSION,
    TRIAL_GROUPS,
    Compression,
    Efficiency,
    Federated,
    Field,
    Final,
    Inference,
    Lifecycle,
    Provenance,
    Schedule,
    StudyAttrs,
    TrialAttrs,
    domain_key,
    fields,
    final_key,
    is_proxy_key,
    phase_key,
    proxy_key,
    rung_key,
)
from nas.record._phases import (
    METERED_FRACTION_FLAG,
    MODEL_COST_PHASES,
    PHASE_NAMES,
    PHASES,
    PhaseLog,
    PhaseSpec,
    phase_attrs,
)
from nas.record._reader import (
    PhaseEnergy,
    TrialRecord,
    below_chance,
    final_of,
    finite,
    num_classes,
    records,
)
from nas.record._store import store_attrs

__all__ = [
    "METERED_FRACTION_FLAG",
    "MODEL_COST_PHASES",
    "PHASES",
    "PHASE_NAMES",
    "PHASE_SUFFIXES",
    "RECORD_VERSION",
    "TRIAL_GROUPS",
    "Compression",
    "Efficiency",
    "Federated",
    "Field",
    "Final",
    "Inference",
    "Lifecycle",
    "PhaseEnergy",
    "PhaseLog",
    "PhaseSpec",
    "Provenance",
    "Schedule",
    "StudyAttrs",
    "TrialAttrs",
    "TrialRecord",
    "below_chance",
    "domain_key",
    "fields",
    "final_key",
    "final_of",
    "finite",
    "is_proxy_key",
    "num_classes",
    "phase_attrs",
    "phase_key",
    "proxy_key",
    "records",
    "rung_key",
    "store_attrs",
]
