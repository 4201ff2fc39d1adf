"""The ``[federated]`` section and its trial plugin: train each candidate by FedAvg/FedProx.

With ``enabled = true`` every trial trains its model federated instead of centrally, inside
the objective's ``train`` window (so the trial's train energy is the whole federated compute,
clients and server). Inside that window each client's local training and each server step
have their own meter windows, stored as ``federated_client_*`` / ``federated_server_*``
attrs. Communication is not drawn by this process: its energy is estimated as bytes × a
stated network intensity (kWh/GB) and recorded as phase ``comm`` (kind ``estimated``, source
``network-estimate``) after the train phase, so it counts in ``energy_kwh``/``kgco2e`` and
makes the trial's ``energy_kind`` ``estimated``. A trial stopped during training keeps the
comm bytes of its finished rounds as attrs only (``federated_comm_in_energy_total=false``):
in the simulation nothing was sent, so the search itself paid no network energy.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.errors import ConfigError
from nas.federated.comm import (
    DEFAULT_NETWORK_KWH_PER_GB,
    DEFAULT_NETWORK_SOURCE,
    network_energy_kwh,
    state_bytes,
)
from nas.federated.engine import FederatedSpec, train_federated
from nas.federated.fedavg import STRATEGIES
from nas.federated.split import SPLITS, label_skew, split_indices
from nas.plugins import TrialContext, TrialPlugin
from nas.train import TrainResult

log = logging.getLogger(__name__)


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

    def spec(self, strategy: str) -> FederatedSpec:
        return FederatedSpec(
            strategy=strategy,
            clients=self.clients,
            local_epochs=self.local_epochs,
            client_fraction=self.client_fraction,
            rounds=self.rounds,
            prox_mu=self.prox_mu,
        )


SECTIONS: dict[str, type] = {"federated": FederatedSection}


class FederatedPlugin(TrialPlugin):
    name = "federated"

    def __init__(self, *, section: FederatedSection, parts: list[np.ndarray], skew: float) -> None:
        self.section = section
        self.parts = parts
        self.skew = skew

    def sample(self, ctx: TrialContext) -> None:
        strategies = list(self.section.strategies)
        strategy = (
            ctx.trial.suggest_categorical("federated.strategy", strategies)
            if len(strategies) > 1
            else strategies[0]
        )
        ctx.settings["federated"] = {"strategy": strategy}
        ctx.attrs["federated_strategy"] = strategy

    def train(self, ctx: TrialContext) -> TrainResult | None:
        sec = self.section
        spec = sec.spec(ctx.settings["federated"]["strategy"])
        kwh_per_gb, source = sec.network
        epochs = int(ctx.train_kwargs.get("epochs", 1))
        model_bytes = state_bytes(ctx.model)
        attrs = ctx.attrs
        attrs.update(
            federated_split=sec.split,
            federated_label_skew=self.skew,
            federated_clients=spec.clients,
            federated_clients_per_round=spec.clients_per_round,
            federated_client_fraction=spec.client_fraction,
            federated_local_epochs=spec.local_epochs,
            federated_rounds=spec.rounds_for(epochs),
            federated_prox_mu=spec.mu,
            federated_epochs_mapping=(
                f"{epochs} centralised epochs -> {spec.rounds_for(epochs)} rounds x "
                f"{spec.local_epochs} local epochs on {spec.clients_per_round}/{spec.clients} "
                "clients" + (" (compute-matched)" if spec.rounds is None else " (rounds fixed)")
            ),
            federated_model_bytes=model_bytes,
            network_kwh_per_gb=kwh_per_gb,
            network_kwh_per_gb_source=source,
            federated_comm_in_energy_total=False,
        )
        if sec.split == "dirichlet":
            attrs["federated_dirichlet_alpha"] = sec.dirichlet_alpha

        def on_round_end(
            r: int, _model: Any, _samples: int
        ) -> None:  # comm so far, kept if a later round fails
            sent = model_bytes * spec.clients_per_round * (r + 1)
            attrs.update(
                federated_rounds_completed=r + 1,
                federated_comm_bytes_up=sent,
                federated_comm_bytes_down=sent,
                federated_comm_energy_kwh=network_energy_kwh(2 * sent, kwh_per_gb),
            )

        callbacks = list(ctx.epoch_callbacks)

        def on_epoch_end(epoch: int, loss: float) -> None:
            for cb in callbacks:
                cb(epoch, loss)

        res = train_federated(
            ctx.model,
            ctx.data.train,
            self.parts,
            spec=spec,
            train_kwargs=ctx.train_kwargs,
            meter=ctx.meter,
            seed=int(ctx.train_kwargs.get("seed", 0)),
            on_epoch_end=on_epoch_end,
            on_round_end=on_round_end,
        )
        comm = res.comm.measurement(kwh_per_gb=kwh_per_gb, source=source)
        ctx.settings["federated"]["comm"] = comm
        client_kwh = res.client_energy_kwh
        attrs.update(
            federated_rounds=res.rounds,
            federated_client_energy_kwh=float(sum(client_kwh)),
            federated_client_energy_kwh_max=float(max(client_kwh)),
            federated_client_energy_kwh_by_client=json.dumps([round(v, 12) for v in client_kwh]),
            federated_client_duration_s=float(sum(res.client_duration_s)),
            federated_client_samples=json.dumps(res.client_samples),
            federated_client_rounds=json.dumps(res.client_rounds),
            federated_server_energy_kwh=res.server_energy_kwh,
            federated_server_duration_s=res.server_duration_s,
            federated_energy_source=res.energy_source,
            federated_energy_kind=res.energy_kind,
            federated_comm_bytes_up=res.comm.bytes_up,
            federated_comm_bytes_down=res.comm.bytes_down,
            federated_comm_energy_kwh=comm.energy_kwh,
            federated_client_drift_l2_mean=float(np.mean(res.client_drift_l2)),
            federated_round_losses=json.dumps([round(v, 6) for v in res.round_losses]),
        )
        return res.train

    def after_train(self, ctx: TrialContext) -> None:
        comm = ctx.settings.get("federated", {}).pop("comm", None)
        if comm is None:  # another plugin trained this trial
            return
        ctx.record(comm)
        ctx.attrs["federated_comm_in_energy_total"] = True
        ctx.attrs["federated_comm_note"] = (
            "comm energy = (bytes up + down) / 1e9 x network_kwh_per_gb; estimated, not "
            "measured; recorded as phase 'comm' and included in energy_kwh and kgco2e"
        )


def make_trial_plugins(objective: Any) -> list[TrialPlugin]:
    sec: FederatedSection = objective.config.federated
    if not sec.enabled:
        return []
    labels = objective.data.train.tensors[1].numpy()
    parts = split_indices(
        labels,
        clients=sec.clients,
        split=sec.split,
        alpha=sec.dirichlet_alpha,
        seed=objective.config.study.seed,
    )
    skew = label_skew(labels, parts, objective.data.num_classes)
    log.info(
        "federated: %d clients (%s split, label skew %.3f), sizes %s",
        sec.clients,
        sec.split,
        skew,
        [len(p) for p in parts],
    )
    return [FederatedPlugin(section=sec, parts=parts, skew=skew)]
