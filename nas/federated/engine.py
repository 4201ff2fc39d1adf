"""The federated round loop, simulated in-process: clients train one after the other.

Each selected client starts from the global weights in a working copy of the model (one
copy, reloaded per client: equivalent to a copy per client when they run in turn), trains
``local_epochs`` over its own shard with a fresh optimizer at the round's learning rate
(:mod:`nas.federated.local`; the loss, precision, optimizer, batch size, weight decay and
seed of the run's :class:`~nas.train.TrainingPlan`), and returns its ``state_dict``; the
server averages them (FedAvg). Each
client's local training and each server step run in their own meter windows
(``federated_client``, ``federated_server``), which may nest inside the trial's ``train``
window (meters measure concurrent windows independently).

Epochs: the trial's ``epochs`` (centralised passes over the data) map to rounds. With
``rounds=None`` the run is compute-matched: ``rounds = ceil(epochs / (local_epochs · m / K))``
for ``m`` of ``K`` clients per round, so as many samples are processed as in centralised
training. Round ``r`` of ``R`` completes centralised-equivalent epoch ``floor((r+1)·E/R)``:
epoch callbacks fire at those boundaries and ``autocast_dtype`` gets that epoch index.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nas.energy import Meter, WindowAccumulator
from nas.federated.comm import CommLedger, state_bytes
from nas.federated.fedavg import STRATEGIES, clone_state, distance_to, fedavg, proximal_loss
from nas.federated.local import local_train, round_learning_rates
from nas.sections.federated import FederatedSection
from nas.train import TrainingPlan, TrainResult

CLIENT_WINDOW = "federated_client"
SERVER_WINDOW = "federated_server"


@dataclass(frozen=True, kw_only=True)
class FederatedSpec:
    """One federated run's settings (see the ``[federated]`` config section)."""

    strategy: str = "fedavg"
    clients: int = 4
    local_epochs: int = 1
    client_fraction: float = 1.0
    rounds: int | None = None  # None: compute-matched to the centralised epochs
    prox_mu: float = 0.0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; use one of {STRATEGIES}")
        if self.clients < 1 or self.local_epochs < 1 or not 0 < self.client_fraction <= 1:
            raise ValueError("need clients >= 1, local_epochs >= 1, client_fraction in (0, 1]")

    @property
    def clients_per_round(self) -> int:
        """``max(1, floor(fraction · K))`` as in McMahan et al. 2017."""
        return max(1, int(self.client_fraction * self.clients + 1e-9))

    @property
    def mu(self) -> float:
        return self.prox_mu if self.strategy == "fedprox" else 0.0

    @classmethod
    def from_section(cls, section: FederatedSection, strategy: str) -> FederatedSpec:
        """The settings of ``[federated]`` for one sampled ``strategy``."""
        return cls(
            strategy=strategy,
            clients=section.clients,
            local_epochs=section.local_epochs,
            client_fraction=section.client_fraction,
            rounds=section.rounds,
            prox_mu=section.prox_mu,
        )

    def rounds_for(self, epochs: int) -> int:
        if self.rounds is not None:
            return self.rounds
        per_round = self.local_epochs * self.clients_per_round / self.clients
        return max(1, math.ceil(epochs / per_round - 1e-9))


@dataclass
class FederatedResult:
    train: TrainResult
    rounds: int
    clients_per_round: int
    client_energy_kwh: list[float]
    client_duration_s: list[float]
    client_samples: list[int]  # samples processed per client over all rounds
    client_rounds: list[int]  # rounds each client took part in
    server_energy_kwh: float
    server_duration_s: float
    comm: CommLedger
    round_losses: list[float] = field(default_factory=list)
    client_drift_l2: list[float] = field(default_factory=list)  # one per participation
    energy_source: str = ""
    energy_kind: str = ""


def train_federated(
    model: nn.Module,
    data: TensorDataset,
    parts: list[np.ndarray],
    *,
    spec: FederatedSpec,
    plan: TrainingPlan,
    meter: Meter | None,
    on_round_end: Callable[[int, nn.Module, int], bool | None] | None = None,
) -> FederatedResult:
    """Train ``model`` in place by ``spec``'s strategy over the client shards ``parts``, with
    ``plan``'s recipe (its ``epochs`` map to rounds, its ``seed`` picks the clients, its
    epoch callbacks run at the epoch boundaries the rounds cross).

    ``on_round_end(round, model, samples)`` runs after each aggregation (``samples``: client
    samples processed so far), outside every meter window (e.g. to evaluate); returning True
    stops the run after that round.
    """
    if len(parts) != spec.clients:
        raise ValueError(f"{len(parts)} shards for {spec.clients} clients")
    epochs, seed = plan.epochs, plan.seed
    rounds = spec.rounds_for(epochs)
    m = spec.clients_per_round
    autocast = plan.autocast_dtype
    device = plan.device
    lrs = round_learning_rates(float(plan.lr), rounds)
    clients = WindowAccumulator(meter, CLIENT_WINDOW)  # keyed by client index
    server = WindowAccumulator(meter, SERVER_WINDOW)

    with server.window():
        x, y = data.tensors[0], data.tensors[1]
        shards = [TensorDataset(x[torch.as_tensor(p)], y[torch.as_tensor(p)]) for p in parts]
        model.to(device)
        worker = copy.deepcopy(model)  # the clients' working copy, reloaded per client
        ledger = CommLedger(model_bytes=state_bytes(model))
    rng = np.random.default_rng(seed)
    result = TrainResult(epochs=0, steps=0, samples=0, final_loss=float("nan"))
    client_samples, client_rounds = [0] * spec.clients, [0] * spec.clients
    round_losses: list[float] = []
    completed = 0
    drifts: list[float] = []  # L2 distance client -> global after local training
    for r in range(rounds):
        chosen = sorted(rng.choice(spec.clients, size=m, replace=False).tolist())
        epoch_now = min(epochs - 1, r * epochs // rounds)
        dtype = autocast(epoch_now) if autocast is not None else None
        global_state = clone_state(model)
        states, weights, losses = [], [], []
        for k in chosen:
            with clients.window(k):
                worker.load_state_dict(global_state)
                frozen = [p.detach().clone() for p in worker.parameters() if p.requires_grad]
                local = plan.replace(
                    epochs=spec.local_epochs,
                    lr=lrs[r],
                    seed=seed + 7919 * (r + 1) + k,
                    loss_fn=proximal_loss(plan.loss_fn, frozen, spec.mu),
                    autocast_dtype=_constant(dtype),
                )
                res = local_train(worker, shards[k], local)
                states.append(clone_state(worker))
            drifts.append(distance_to(worker, frozen))
            weights.append(len(shards[k]))
            losses.append(res.final_loss)
            result.steps += res.steps
            result.samples += res.samples
            client_samples[k] += res.samples
            client_rounds[k] += 1
        ledger.round_trip(len(chosen))
        with server.window():
            model.load_state_dict(fedavg(states, weights))
            del states
        round_loss = float(np.average(losses, weights=weights))
        round_losses.append(round_loss)
        result.final_loss = round_loss
        completed = r + 1
        crossed = range(r * epochs // rounds, (r + 1) * epochs // rounds)  # epoch boundaries
        for epoch in crossed:
            result.epochs = epoch + 1
            result.epoch_losses.append(round_loss)
        stop = bool(on_round_end(r, model, result.samples)) if on_round_end is not None else False
        for epoch in crossed:
            plan.on_epoch_end(epoch, round_loss)
        if stop:
            break
    return FederatedResult(
        train=result,
        rounds=completed,
        clients_per_round=m,
        client_energy_kwh=[_kwh(clients, k) for k in range(spec.clients)],
        client_duration_s=[clients.totals(k).duration_s for k in range(spec.clients)],
        client_samples=client_samples,
        client_rounds=client_rounds,
        server_energy_kwh=server.energy_kwh,
        server_duration_s=server.duration_s,
        comm=ledger,
        round_losses=round_losses,
        client_drift_l2=drifts,
        energy_source=clients.source,
        energy_kind=clients.kind,
    )


def _constant(dtype: torch.dtype | None) -> Callable[[int], torch.dtype | None] | None:
    """The round's autocast dtype for every local epoch (None: FP32)."""
    return None if dtype is None else (lambda _epoch: dtype)


def _kwh(clients: WindowAccumulator, key: int) -> float:
    """A client's kWh over its rounds (NaN without a meter); 0.0 if it never took part."""
    totals = clients.totals(key)
    return totals.energy_kwh if totals.count else 0.0
