"""``[efficiency]``: reuse of duplicate configurations, zero-cost screening, early stopping."""

from __future__ import annotations

from dataclasses import dataclass

from nas.errors import ConfigError

# the zero-cost proxies of nas.efficiency.proxies, "params" (the baseline) and "auto" (per
# family, the proxy that ranks its finished trials best; see choose_proxy)
SCREENS = ("synflow", "naswot", "grad_norm", "params", "auto")


@dataclass(frozen=True)
class EfficiencySection:
    reuse: bool = True  # a duplicate configuration reuses the stored result
    reuse_across_studies: bool = False  # also look in the other studies of the storage
    screen: str = "none"  # none | synflow | naswot | grad_norm | params | auto
    screen_quantile: float = 0.5  # prune candidates scoring below this quantile
    screen_warmup: int = 6  # candidates of a family scored before screening starts
    screen_batch_size: int = 64
    early_stop: bool = False  # successive halving on the non-dominated rank at each rung
    early_stop_keep: float = 0.5  # fraction of trials kept at a rung
    early_stop_min_trials: int = 4  # trials that must have reached a rung before stopping
    early_stop_val_size: int = 200  # validation samples evaluated at a rung

    def check(self) -> None:
        if self.screen != "none" and self.screen not in SCREENS:
            raise ConfigError(
                f"efficiency.screen {self.screen!r} is unknown; use none or one of {list(SCREENS)}"
            )
        if not 0.0 < self.screen_quantile < 1.0 or not 0.0 < self.early_stop_keep < 1.0:
            raise ConfigError("efficiency.screen_quantile and early_stop_keep must be in (0, 1)")
        if min(self.screen_warmup, self.early_stop_min_trials) < 1:
            raise ConfigError("efficiency.screen_warmup and early_stop_min_trials must be >= 1")
        if min(self.screen_batch_size, self.early_stop_val_size) < 2:
            raise ConfigError("efficiency.screen_batch_size and early_stop_val_size must be >= 2")
