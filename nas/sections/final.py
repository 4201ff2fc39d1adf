"""``[final]``: training a chosen trial's architecture at full budget (``econas train``).

::

    [final]
    epochs = 5              # full-budget epochs
    train_size = 60000      # training images; unset: the whole training split (less validation)
    lr = 0.003              # unset: train.lr
    schedule = "one_cycle"  # one_cycle | constant
    batch_size = 128        # unset: data.batch_size
    test_size = 10000       # test images evaluated once at the end; unset: the whole test split
    max_kgco2e = 0.05       # refuse to start above this projection; stop at a checkpoint at it

``econas train`` flags override these. None of it changes what a search trial means, so it
is not part of the study's fingerprint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nas.errors import ConfigError

SCHEDULES = ("one_cycle", "constant")


@dataclass(frozen=True)
class FinalSection:
    epochs: int = 5
    train_size: int | None = None
    lr: float | None = None
    schedule: str = "one_cycle"
    batch_size: int | None = None
    test_size: int | None = None
    max_kgco2e: float | None = None

    def check(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"final.epochs must be >= 1, got {self.epochs}")
        for key in ("train_size", "batch_size", "test_size"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"final.{key} must be >= 1, got {value}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"final.lr must be a positive number, got {self.lr}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"final.schedule {self.schedule!r} is unknown; use {list(SCHEDULES)}")
        if self.max_kgco2e is not None and not (
            self.max_kgco2e > 0 and math.isfinite(self.max_kgco2e)
        ):
            raise ConfigError(f"final.max_kgco2e must be a positive number, got {self.max_kgco2e}")
