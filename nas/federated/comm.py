"""Communication of a federated run: bytes on the wire and their (estimated) network energy.

Nothing is transmitted in the simulation, so this is a model, never a measurement: bytes
follow from the protocol, energy = GB × a stated network electricity intensity. The result
is a :class:`~nas.energy.Measurement` of kind ``estimated`` and source ``network-estimate``.

Protocol counted (plain FedAvg/FedProx, no compression): each round the server sends the
full global ``state_dict`` (parameters and buffers, at their stored dtype) to each selected
client (down) and each selected client sends its full updated ``state_dict`` back (up), so
``bytes_up = bytes_down = state_bytes × clients_per_round × rounds``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nas.energy import J_PER_KWH, Measurement
from nas.sections.federated import (  # the default intensity and its citation
    DEFAULT_NETWORK_KWH_PER_GB,
    DEFAULT_NETWORK_SOURCE,
)

BYTES_PER_GB = 1e9  # decimal gigabytes, as in the network-intensity literature

__all__ = [
    "BYTES_PER_GB",
    "DEFAULT_NETWORK_KWH_PER_GB",
    "DEFAULT_NETWORK_SOURCE",
    "CommLedger",
    "network_energy_kwh",
    "state_bytes",
]


def state_bytes(model: torch.nn.Module) -> int:
    """Bytes of the model's full ``state_dict`` (parameters and buffers) as stored."""
    return int(sum(t.numel() * t.element_size() for t in model.state_dict().values()))


def network_energy_kwh(n_bytes: float, kwh_per_gb: float) -> float:
    return float(n_bytes) / BYTES_PER_GB * kwh_per_gb


@dataclass
class CommLedger:
    """Bytes moved by the protocol above, counted as rounds happen."""

    model_bytes: int
    bytes_up: int = 0
    bytes_down: int = 0
    transfers: int = 0  # client-round participations

    def round_trip(self, clients: int) -> None:
        """One round: the global model down to ``clients`` clients and their updates up."""
        self.bytes_down += self.model_bytes * clients
        self.bytes_up += self.model_bytes * clients
        self.transfers += clients

    @property
    def total_bytes(self) -> int:
        return self.bytes_up + self.bytes_down

    def measurement(self, *, kwh_per_gb: float, source: str, name: str = "comm") -> Measurement:
        """The network energy of the bytes counted so far, as an estimated measurement."""
        kwh = network_energy_kwh(self.total_bytes, kwh_per_gb)
        return Measurement(
            name=name,
            duration_s=0.0,  # simulated: no wall-clock time was spent transmitting
            energy_j={"network": kwh * J_PER_KWH},
            total_energy_j=kwh * J_PER_KWH,
            source="network-estimate",
            kind="estimated",
            hardware="network (bytes x kWh/GB)",
            details={
                "domain_kinds": {"network": "estimated"},
                "bytes_up": self.bytes_up,
                "bytes_down": self.bytes_down,
                "model_bytes": self.model_bytes,
                "network_kwh_per_gb": kwh_per_gb,
                "network_kwh_per_gb_source": source,
                "method": "bytes of full state_dict per client per round, up and down",
            },
        )


def with_network(
    compute: Measurement, comm: Measurement, *, name: str | None = None
) -> Measurement:
    """One measurement: the meter's ``compute`` windows plus the estimated ``network`` domain.

    For tables that take a single training measurement per row (``econas ablate``): the
    network domain stays visible in ``energy_j``/``details["domain_kinds"]`` and the source
    says both (``"estimate+network-estimate"``); kind is ``estimated``.
    """
    energy_j = dict(compute.energy_j)
    energy_j["network"] = energy_j.get("network", 0.0) + comm.total_energy_j
    kinds = dict(compute.details.get("domain_kinds", {}))
    kinds["network"] = "estimated"
    return Measurement(
        name=name or compute.name,
        duration_s=compute.duration_s,
        energy_j=energy_j,
        total_energy_j=compute.total_energy_j + comm.total_energy_j,
        source=f"{compute.source}+{comm.source}",
        kind="estimated",
        hardware=f"{compute.hardware} + {comm.hardware}",
        details={**compute.details, "domain_kinds": kinds, "network": comm.details},
    )
