"""``[federated]``: train every candidate by FedAvg/FedProx over simulated clients."""

from __future__ import annotations

import math
from dataclasses import dataclass

from nas.errors import ConfigError

STRATEGIES = ("fedavg", "fedprox")
SPLITS = ("iid", "dirichlet")

# Aslan, Mayers, Koomey & France (2018), "Electricity Intensity of Internet Data
# Transmission: Untangling the Estimates", Journal of Industrial Ecology 22(4):785-798,
# doi:10.1111/jiec.12630: 0.06 kWh/GB for 2015 (core + fixed access networks, end devices and
# data centres excluded), halving about every 2 years over 2000-2015. Extrapolated by us to
# 2025 with that halving: 0.06 / 2**((2025 - 2015) / 2) = 0.001875 kWh/GB. The trend's
# continuation is an assumption; mobile access networks use considerably more per GB.
NETWORK_BASE_KWH_PER_GB = 0.06
NETWORK_BASE_YEAR = 2015
NETWORK_HALVING_YEARS = 2.0
NETWORK_YEAR = 2025
DEFAULT_NETWORK_KWH_PER_GB = NETWORK_BASE_KWH_PER_GB * 0.5 ** (
    (NETWORK_YEAR - NETWORK_BASE_YEAR) / NETWORK_HALVING_YEARS
)
DEFAULT_NETWORK_SOURCE = (
    "Aslan et al. 2018, J. Ind. Ecol. 22(4) doi:10.1111/jiec.12630: 0.06 kWh/GB in 2015, "
    "halving every 2 years, extrapolated to 2025 (0.001875 kWh/GB; fixed-line core+access, "
    "end devices excluded)"
)


@dataclass(frozen=True)
class FederatedSection:
    enabled: bool = False
    strategies: tuple[str, ...] = ("fedavg",)  # several: sampled per trial (federated.strategy)
    clients: int = 4  # K simulated clients
    rounds: int | None = None  # unset: compute-matched, ceil(epochs / (local_epochs * m / K))
    local_epochs: int = 1
    client_fraction: float = 1.0  # m = max(1, floor(fraction * K)) clients per round
    split: str = "iid"  # iid | dirichlet (label skew, Hsu et al. 2019)
    dirichlet_alpha: float = 0.3
    prox_mu: float = 0.01  # FedProx proximal weight (used by "fedprox" only)
    network_kwh_per_gb: float | None = None  # unset: DEFAULT_NETWORK_KWH_PER_GB (cited)
    network_kwh_per_gb_source: str | None = None  # where a given intensity comes from

    def check(self) -> None:
        if not self.strategies:
            raise ConfigError("federated.strategies must name at least one strategy")
        for s in self.strategies:
            if s not in STRATEGIES:
                raise ConfigError(f"federated.strategies: unknown {s!r}; use {list(STRATEGIES)}")
        if len(set(self.strategies)) != len(self.strategies):
            raise ConfigError("federated.strategies lists a strategy twice")
        if self.clients < 1:
            raise ConfigError(f"federated.clients must be >= 1, got {self.clients}")
        if self.rounds is not None and self.rounds < 1:
            raise ConfigError(f"federated.rounds must be >= 1, got {self.rounds}")
        if self.local_epochs < 1:
            raise ConfigError(f"federated.local_epochs must be >= 1, got {self.local_epochs}")
        if not 0.0 < self.client_fraction <= 1.0:
            raise ConfigError(
                f"federated.client_fraction must be in (0, 1], got {self.client_fraction}"
            )
        if self.split not in SPLITS:
            raise ConfigError(f"federated.split {self.split!r} is unknown; use {list(SPLITS)}")
        if not (self.dirichlet_alpha > 0 and math.isfinite(self.dirichlet_alpha)):
            raise ConfigError(f"federated.dirichlet_alpha must be > 0, got {self.dirichlet_alpha}")
        if not (self.prox_mu >= 0 and math.isfinite(self.prox_mu)):
            raise ConfigError(f"federated.prox_mu must be >= 0, got {self.prox_mu}")
        kwh = self.network_kwh_per_gb
        if kwh is not None and not (kwh >= 0 and math.isfinite(kwh)):
            raise ConfigError(f"federated.network_kwh_per_gb must be >= 0, got {kwh}")
        if self.network_kwh_per_gb_source is not None and kwh is None:
            raise ConfigError(
                "federated.network_kwh_per_gb_source given without network_kwh_per_gb"
            )

    @property
    def network(self) -> tuple[float, str]:
        """(kWh/GB, its source) used for communication energy."""
        if self.network_kwh_per_gb is None:
            return DEFAULT_NETWORK_KWH_PER_GB, DEFAULT_NETWORK_SOURCE
        return self.network_kwh_per_gb, self.network_kwh_per_gb_source or "given in the config"
