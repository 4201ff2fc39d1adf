"""``[lifecycle]``: the deployment a model's lifecycle carbon is projected for.

::

    [lifecycle]
    requests_per_day = 1_000_000   # predictions served per day (one request = one sample)
    days_deployed = 365
    batch_size = 1                 # how requests are batched when served
    target_device = "cpu"          # cpu | cuda | onnx-cpu (ONNX Runtime on the CPU: edge stand-in)
    retrain_every_days = 90        # optional: retrain (cost: the trial's training) this often
    search_share = "planned"       # planned | spent | none: the search's cost charged to the model
    models_deployed = 1            # models the search's cost is shared between
    # region = "FRA" | intensity_g_per_kwh = 50: the deployment grid (default: the trial's)
    schedulable_inference_share = 0.0  # share of inference run as shiftable batch jobs
                                   # (econas ablate: scheduled with the training job)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nas.errors import ConfigError

TARGETS = ("cpu", "cuda", "onnx-cpu")
SEARCH_SHARES = ("planned", "spent", "none")
LIFECYCLE_OBJECTIVE = "lifecycle_kgco2e"


@dataclass(frozen=True)
class LifecycleSection:
    requests_per_day: float | None = None  # None: no lifecycle projection
    days_deployed: float = 365.0
    batch_size: int = 1
    target_device: str = "cpu"
    retrain_every_days: float | None = None
    search_share: str = "planned"
    models_deployed: int = 1
    region: str | None = None
    intensity_g_per_kwh: float | None = None
    schedulable_inference_share: float = 0.0

    @property
    def active(self) -> bool:
        return self.requests_per_day is not None

    def check(self) -> None:
        if self.requests_per_day is not None and not (
            math.isfinite(self.requests_per_day) and self.requests_per_day >= 0
        ):
            raise ConfigError("lifecycle.requests_per_day must be a number >= 0")
        if not (math.isfinite(self.days_deployed) and self.days_deployed > 0):
            raise ConfigError("lifecycle.days_deployed must be > 0")
        if self.batch_size < 1 or self.models_deployed < 1:
            raise ConfigError("lifecycle.batch_size and lifecycle.models_deployed must be >= 1")
        if self.target_device not in TARGETS:
            raise ConfigError(
                f"lifecycle.target_device {self.target_device!r} is unknown; use {list(TARGETS)}"
            )
        if self.retrain_every_days is not None and not self.retrain_every_days > 0:
            raise ConfigError("lifecycle.retrain_every_days must be > 0")
        if self.search_share not in SEARCH_SHARES:
            raise ConfigError(
                f"lifecycle.search_share {self.search_share!r} is unknown; use {list(SEARCH_SHARES)}"
            )
        if self.region is not None and self.intensity_g_per_kwh is not None:
            raise ConfigError("lifecycle: give either region or intensity_g_per_kwh, not both")
        if self.intensity_g_per_kwh is not None and not self.intensity_g_per_kwh >= 0:
            raise ConfigError("lifecycle.intensity_g_per_kwh must be >= 0")
        if not 0.0 <= self.schedulable_inference_share <= 1.0:
            raise ConfigError("lifecycle.schedulable_inference_share must be in [0, 1]")
