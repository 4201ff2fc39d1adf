"""Federated proxy training (FedAvg, FedProx) with client, server and network energy accounted.

Clients are simulated in-process, one after the other, so that the meter that measures the
trial also measures every client, each in its own window. Flower's simulation engine was
considered and not used: ``flwr[simulation]`` adds 62 packages (a 528 MB environment, Ray
220 MB of it), ``ray.init`` takes ~4 s on a 2-core machine, and Ray runs clients in worker
processes that the process-scoped CPU estimate cannot see; the aggregation FedAvg/FedProx
need is a weighted mean (``fedavg.py``). Enable it per study with a ``[federated]`` section
(:class:`nas.sections.FederatedSection`, run by ``step.FederatedStep``)::

    [federated]
    enabled = true
    strategies = ["fedavg", "fedprox"]
    clients = 8
    split = "dirichlet"
    dirichlet_alpha = 0.3
"""

from __future__ import annotations

from nas.federated.comm import (
    DEFAULT_NETWORK_KWH_PER_GB,
    DEFAULT_NETWORK_SOURCE,
    CommLedger,
    network_energy_kwh,
    state_bytes,
)
from nas.federated.engine import FederatedResult, FederatedSpec, train_federated
from nas.federated.fedavg import STRATEGIES, clone_state, distance_to, fedavg, proximal_loss
from nas.federated.local import local_train, round_learning_rates
from nas.federated.split import (
    SPLITS,
    dirichlet_split,
    iid_split,
    label_distributions,
    label_skew,
    split_indices,
)
from nas.federated.step import FederatedStep

__all__ = [
    "DEFAULT_NETWORK_KWH_PER_GB",
    "DEFAULT_NETWORK_SOURCE",
    "SPLITS",
    "STRATEGIES",
    "CommLedger",
    "FederatedResult",
    "FederatedSpec",
    "FederatedStep",
    "clone_state",
    "dirichlet_split",
    "distance_to",
    "fedavg",
    "iid_split",
    "label_distributions",
    "label_skew",
    "local_train",
    "network_energy_kwh",
    "proximal_loss",
    "round_learning_rates",
    "split_indices",
    "state_bytes",
    "train_federated",
]
