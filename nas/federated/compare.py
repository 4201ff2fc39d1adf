"""Centralised versus federated training of one model to an accuracy target, energy per part.

Each run trains inside sequential meter windows; after every epoch (centralised) or round
(federated) the training window closes, the validation accuracy is checked in its own window
(reported apart, as ``check_energy_kwh``), and the run stops at the first check reaching
``target_accuracy`` or when ``max_epochs`` centralised-equivalent epochs of compute are spent
(``target_accuracy=None``: always the full budget, i.e. matched compute).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.data import DataSplits
from nas.energy import Measurement, Meter, combine
from nas.federated.comm import CommLedger
from nas.federated.engine import FederatedSpec, train_federated
from nas.train import TrainingPlan, evaluate, train_model


@dataclass
class TargetRun:
    label: str
    target_accuracy: float | None
    reached: bool
    val_accuracy: float  # at the last check
    epochs_equivalent: float  # samples processed / training-set size
    compute: Measurement  # the training windows (clients + server for federated)
    check_energy_kwh: float  # validation checks, not in compute
    comm: CommLedger | None = None
    comm_energy_kwh: float = 0.0
    client_energy_kwh: float | None = None
    client_energy_kwh_max: float | None = None
    server_energy_kwh: float | None = None
    rounds: int | None = None
    curve: list[dict[str, float]] = field(default_factory=list)

    @property
    def total_energy_kwh(self) -> float:
        return self.compute.energy_kwh + self.comm_energy_kwh

    def to_dict(self) -> dict[str, Any]:
        out = {
            k: v
            for k, v in dataclasses.asdict(self).items()
            if k not in ("compute", "comm", "curve")
        }
        out.update(
            compute_energy_kwh=self.compute.energy_kwh,
            compute_duration_s=self.compute.duration_s,
            energy_source=self.compute.source,
            energy_kind=self.compute.kind,
            hardware=self.compute.hardware,
            total_energy_kwh=self.total_energy_kwh,
            curve=self.curve,
        )
        if self.comm is not None:
            out.update(
                comm_bytes_up=self.comm.bytes_up,
                comm_bytes_down=self.comm.bytes_down,
                model_bytes=self.comm.model_bytes,
            )
        return out


class _Windows:
    """Sequential windows of one name; the open one is closed by :meth:`close`."""

    def __init__(self, meter: Meter, name: str) -> None:
        self.meter, self.name = meter, name
        self.parts: list[Measurement] = []
        self.open = False

    def start(self) -> None:
        self.meter.begin_window(self.name)
        self.open = True

    def stop(self) -> None:
        if self.open:
            self.open = False
            self.parts.append(self.meter.end_window(self.name))

    def combined(self) -> Measurement:
        return combine(self.parts, self.name)


class _Checker:
    def __init__(self, meter: Meter, data: DataSplits, device: torch.device, target: float | None):
        self.windows = _Windows(meter, "target_check")
        self.data, self.device, self.target = data, device, target
        self.curve: list[dict[str, float]] = []
        self.accuracy = float("nan")

    def __call__(self, model: nn.Module, epochs_eq: float, compute_kwh: float) -> bool:
        self.windows.start()
        try:
            self.accuracy = evaluate(model, self.data.val, device=self.device)
        finally:
            self.windows.stop()
        model.train()
        self.curve.append(
            {
                "epochs_equivalent": epochs_eq,
                "val_accuracy": self.accuracy,
                "compute_kwh": compute_kwh,
            }
        )
        return self.target is not None and self.accuracy >= self.target

    @property
    def energy_kwh(self) -> float:
        return float(sum(m.energy_kwh for m in self.windows.parts))


class _Reached(Exception):
    pass


def centralised_to_target(
    model: nn.Module,
    data: DataSplits,
    *,
    plan: TrainingPlan,
    meter: Meter,
    target_accuracy: float | None,
    max_epochs: int,
    label: str = "centralised",
) -> TargetRun:
    """Train ``model`` centrally by ``plan`` (``nas.train.train_model``; its one-cycle spans
    ``max_epochs``) until the target or ``max_epochs``."""
    win = _Windows(meter, "train")
    check = _Checker(meter, data, plan.device, target_accuracy)
    done = {"epochs": 0}

    def on_epoch_end(epoch: int, _loss: float) -> None:
        win.stop()
        done["epochs"] = epoch + 1
        kwh = float(sum(m.energy_kwh for m in win.parts))
        if check(model, float(epoch + 1), kwh):
            raise _Reached
        if epoch + 1 < max_epochs:
            win.start()

    win.start()
    try:
        train_model(
            model, data.train, plan.replace(epochs=max_epochs, epoch_callbacks=(on_epoch_end,))
        )
    except _Reached:
        pass
    finally:
        win.stop()
    return TargetRun(
        label=label,
        target_accuracy=target_accuracy,
        reached=target_accuracy is not None and check.accuracy >= target_accuracy,
        val_accuracy=check.accuracy,
        epochs_equivalent=float(done["epochs"]),
        compute=win.combined(),
        check_energy_kwh=check.energy_kwh,
        curve=check.curve,
    )


def federated_to_target(
    model: nn.Module,
    data: DataSplits,
    parts: list[np.ndarray],
    *,
    spec: FederatedSpec,
    plan: TrainingPlan,
    meter: Meter,
    target_accuracy: float | None,
    max_epochs: int,
    kwh_per_gb: float,
    network_source: str,
    label: str | None = None,
) -> TargetRun:
    """Train ``model`` federated until the target or ``max_epochs`` epochs of compute."""
    capped = dataclasses.replace(spec, rounds=spec.rounds_for(max_epochs))
    win = _Windows(meter, "train")
    check = _Checker(meter, data, plan.device, target_accuracy)
    n = len(data.train)

    def on_round_end(r: int, net: nn.Module, samples: int) -> bool:
        win.stop()
        kwh = float(sum(m.energy_kwh for m in win.parts))
        if check(net, samples / n, kwh):
            return True
        if r + 1 < capped.rounds_for(max_epochs):
            win.start()
        return False

    win.start()
    try:
        res = train_federated(
            model,
            data.train,
            parts,
            spec=capped,
            plan=plan.replace(epochs=max_epochs),
            meter=meter,
            on_round_end=on_round_end,
        )
    finally:
        win.stop()
    comm = res.comm.measurement(kwh_per_gb=kwh_per_gb, source=network_source)
    return TargetRun(
        label=label or spec.strategy,
        target_accuracy=target_accuracy,
        reached=target_accuracy is not None and check.accuracy >= target_accuracy,
        val_accuracy=check.accuracy,
        epochs_equivalent=res.train.samples / n,
        compute=win.combined(),
        check_energy_kwh=check.energy_kwh,
        comm=res.comm,
        comm_energy_kwh=comm.energy_kwh,
        client_energy_kwh=float(sum(res.client_energy_kwh)),
        client_energy_kwh_max=float(max(res.client_energy_kwh)),
        server_energy_kwh=res.server_energy_kwh,
        rounds=res.rounds,
        curve=check.curve,
    )
