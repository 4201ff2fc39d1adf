"""Federated training as a step of every trial (``[federated]``): FedAvg/FedProx rounds.

With ``enabled = true`` every trial trains its model federated instead of centrally, inside
the ``train`` phase (so the trial's train energy is the whole federated compute, clients and
server). Inside it each client's local training and each server step run in windows of their
own (details: ``federated_client_*`` / ``federated_server_*``, never added again).
Communication is not drawn by this process: its energy is estimated as bytes x a stated
network intensity (kWh/GB) and recorded as phase ``comm`` (kind ``estimated``, source
``network-estimate``) after the train phase, so it counts in ``energy_kwh``/``kgco2e`` and
makes the trial's ``energy_kind`` ``estimated``. A trial stopped during training keeps the
comm bytes of its finished rounds as attrs only (``federated_comm_in_energy_total=false``):
in the simulation nothing was sent, so the search itself paid no network energy.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.federated.comm import network_energy_kwh, state_bytes
from nas.federated.engine import FederatedSpec, train_federated
from nas.federated.split import label_skew, split_indices
from nas.record import Federated
from nas.sections.federated import FederatedSection
from nas.text import plural
from nas.train import TrainingPlan, TrainResult
from nas.trial import RunningTrial, Step

if TYPE_CHECKING:  # pragma: no cover
    from nas.context import RunContext

log = logging.getLogger(__name__)


class FederatedStep(Step):
    name = "federated"

    def __init__(self, context: RunContext) -> None:
        sec: FederatedSection = context.config.federated
        labels = context.data.train.tensors[1].numpy()
        self.section = sec
        self.parts: list[np.ndarray] = split_indices(
            labels,
            clients=sec.clients,
            split=sec.split,
            alpha=sec.dirichlet_alpha,
            seed=context.config.study.seed,
        )
        self.skew = label_skew(labels, self.parts, context.data.num_classes)
        self._comm: Any = None  # the estimated comm phase of the trial being trained
        log.info(
            "federated: %d clients (%s split, label skew %.3f), sizes %s",
            sec.clients,
            sec.split,
            self.skew,
            [len(p) for p in self.parts],
        )

    def sample(self, t: RunningTrial) -> dict[str, str]:
        strategies = list(self.section.strategies)
        strategy = (
            t.trial.suggest_categorical("federated.strategy", strategies)
            if len(strategies) > 1
            else strategies[0]
        )
        t.record({Federated.strategy: strategy})
        return {"strategy": strategy}

    def train(self, t: RunningTrial, plan: TrainingPlan) -> TrainResult | None:
        sec = self.section
        spec = FederatedSpec.from_section(sec, t.settings[self.name]["strategy"])
        kwh_per_gb, source = sec.network
        epochs = plan.epochs
        model_bytes = state_bytes(t.model)
        rounds = spec.rounds_for(epochs)
        t.record(
            {
                Federated.split: sec.split,
                Federated.label_skew: self.skew,
                Federated.clients: spec.clients,
                Federated.clients_per_round: spec.clients_per_round,
                Federated.client_fraction: spec.client_fraction,
                Federated.local_epochs: spec.local_epochs,
                Federated.rounds: rounds,
                Federated.prox_mu: spec.mu,
                Federated.epochs_mapping: (
                    f"{plural(epochs, 'centralised epoch')} -> {plural(rounds, 'round')} x "
                    f"{plural(spec.local_epochs, 'local epoch')} on {spec.clients_per_round}/{spec.clients} "
                    "clients" + (" (compute-matched)" if spec.rounds is None else " (rounds fixed)")
                ),
                Federated.model_bytes: model_bytes,
                Federated.network_kwh_per_gb: kwh_per_gb,
                Federated.network_kwh_per_gb_source: source,
                Federated.comm_in_energy_total: False,
            }
        )
        if sec.split == "dirichlet":
            t.record({Federated.dirichlet_alpha: sec.dirichlet_alpha})

        def on_round_end(r: int, _model: Any, _samples: int) -> None:
            sent = model_bytes * spec.clients_per_round * (r + 1)  # kept if a later round fails
            t.record(
                {
                    Federated.rounds_completed: r + 1,
                    Federated.comm_bytes_up: sent,
                    Federated.comm_bytes_down: sent,
                    Federated.comm_energy_kwh: network_energy_kwh(2 * sent, kwh_per_gb),
                }
            )

        res = train_federated(
            t.model,
            t.data.train,
            self.parts,
            spec=spec,
            plan=plan,
            meter=t.meter,
            on_round_end=on_round_end,
        )
        self._comm = res.comm.measurement(kwh_per_gb=kwh_per_gb, source=source)
        client_kwh = res.client_energy_kwh
        t.record(
            {
                Federated.rounds: res.rounds,
                Federated.client_energy_kwh: float(sum(client_kwh)),
                Federated.client_energy_kwh_max: float(max(client_kwh)),
                Federated.client_energy_kwh_by_client: json.dumps(client_kwh),  # full precision
                Federated.client_duration_s: float(sum(res.client_duration_s)),
                Federated.client_samples: json.dumps(res.client_samples),
                Federated.client_rounds: json.dumps(res.client_rounds),
                Federated.server_energy_kwh: res.server_energy_kwh,
                Federated.server_duration_s: res.server_duration_s,
                Federated.energy_source: res.energy_source,
                Federated.energy_kind: res.energy_kind,
                Federated.comm_bytes_up: res.comm.bytes_up,
                Federated.comm_bytes_down: res.comm.bytes_down,
                Federated.comm_energy_kwh: self._comm.energy_kwh,
                Federated.client_drift_l2_mean: float(np.mean(res.client_drift_l2)),
                Federated.round_losses: json.dumps([round(v, 6) for v in res.round_losses]),
            }
        )
        return res.train

    def after_train(self, t: RunningTrial) -> None:
        comm, self._comm = self._comm, None
        if comm is None:  # another step trained this trial
            return
        t.log.add(comm)
        t.record(
            {
                Federated.comm_in_energy_total: True,
                Federated.comm_note: (
                    "comm energy = (bytes up + down) / 1e9 x network_kwh_per_gb; estimated, "
                    "not measured; recorded as phase 'comm' and included in energy_kwh and kgco2e"
                ),
            }
        )
