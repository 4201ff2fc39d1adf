"""The optional config sections of a study, one module each; pure dataclasses with ``check()``.

They are typed fields of :class:`nas.config.Config` (``config.compression``...). Nothing here
imports torch, optuna or the features themselves, so reading a config stays cheap.
"""

from __future__ import annotations

from nas.sections.compression import (
    PRECISIONS,
    PRUNE_CRITERIA,
    QUANTIZATIONS,
    AblateSection,
    CompressionSection,
)
from nas.sections.efficiency import SCREENS, EfficiencySection
from nas.sections.federated import (
    DEFAULT_NETWORK_KWH_PER_GB,
    DEFAULT_NETWORK_SOURCE,
    SPLITS,
    STRATEGIES,
    FederatedSection,
)
from nas.sections.final import SCHEDULES, FinalSection
from nas.sections.lifecycle import LIFECYCLE_OBJECTIVE, SEARCH_SHARES, TARGETS, LifecycleSection
from nas.sections.schedule import STUDY_POLICIES, ScheduleSection, parse_utc
from nas.sections.tracking import TrackingSection

__all__ = [
    "DEFAULT_NETWORK_KWH_PER_GB",
    "DEFAULT_NETWORK_SOURCE",
    "LIFECYCLE_OBJECTIVE",
    "PRECISIONS",
    "PRUNE_CRITERIA",
    "QUANTIZATIONS",
    "SCREENS",
    "SCHEDULES",
    "SEARCH_SHARES",
    "SPLITS",
    "STRATEGIES",
    "STUDY_POLICIES",
    "TARGETS",
    "AblateSection",
    "CompressionSection",
    "EfficiencySection",
    "FederatedSection",
    "FinalSection",
    "LifecycleSection",
    "ScheduleSection",
    "TrackingSection",
    "parse_utc",
]
