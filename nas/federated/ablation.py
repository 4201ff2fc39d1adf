"""The ``federated`` row of ``econas ablate``: the baseline architecture trained by federated
learning until it reaches the centralised baseline's validation accuracy.

Registered in :mod:`nas.ablation` with ``register_technique("federated", federated_technique)``;
it runs after ``baseline`` and reads ``ctx.baseline``. Settings come from the config's
``[federated]`` section (its first strategy; ``enabled`` is not needed for the row). The
federated run stops at the first round whose validation accuracy reaches the baseline's, or
after ``MAX_COMPUTE_FACTOR`` × the baseline's epochs of compute (``details["reached"]`` says
which). The row's training energy is the clients' and server's metered compute plus the
communication energy (bytes × kWh/GB, estimated), folded into one measurement whose
``network`` domain and source (``...+network-estimate``) show the estimated part.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from nas.federated.comm import with_network
from nas.federated.compare import federated_to_target
from nas.federated.engine import FederatedSpec
from nas.federated.split import label_skew, split_indices
from nas.sections.federated import FederatedSection
from nas.train import evaluate
from nas.trial import Deployed

if TYPE_CHECKING:  # pragma: no cover
    from nas.compression.techniques import AblationContext

MAX_COMPUTE_FACTOR = 2  # federated may spend up to 2x the baseline's epochs to reach its accuracy


def federated_technique(ctx: AblationContext) -> Deployed:
    """Train ``ctx.spec`` federated to the baseline's validation accuracy; the row's Deployed."""
    from search_spaces import build_model

    sec: FederatedSection = ctx.config.federated
    t = ctx.config.train
    target = None
    if ctx.baseline is not None:
        target = evaluate(ctx.baseline.float_model, ctx.data.val, device=ctx.device)
    labels = ctx.data.train.tensors[1].numpy()
    parts = split_indices(
        labels, clients=sec.clients, split=sec.split, alpha=sec.dirichlet_alpha, seed=ctx.seed
    )
    strategy = sec.strategies[0]
    kwh_per_gb, source = sec.network
    torch.manual_seed(ctx.seed)
    model = build_model(ctx.spec)
    run = federated_to_target(
        model,
        ctx.data,
        parts,
        spec=FederatedSpec.from_section(sec, strategy),
        plan=ctx.run.plan(),  # the config's recipe: batch size, lr, optimizer, loss
        meter=ctx.meter,
        target_accuracy=target,
        max_epochs=MAX_COMPUTE_FACTOR * t.epochs,
        kwh_per_gb=kwh_per_gb,
        network_source=source,
        label="federated",
    )
    assert run.comm is not None  # federated runs always count their bytes
    comm = run.comm.measurement(kwh_per_gb=kwh_per_gb, source=source)
    details = {
        "strategy": strategy,
        "split": sec.split,
        "dirichlet_alpha": sec.dirichlet_alpha if sec.split == "dirichlet" else None,
        "label_skew": label_skew(labels, parts, ctx.data.num_classes),
        "clients": sec.clients,
        "clients_per_round": FederatedSpec.from_section(sec, strategy).clients_per_round,
        "local_epochs": sec.local_epochs,
        "prox_mu": sec.prox_mu if strategy == "fedprox" else 0.0,
        "max_epochs_equivalent": MAX_COMPUTE_FACTOR * t.epochs,
        "network_kwh_per_gb": kwh_per_gb,
        "network_kwh_per_gb_source": source,
        "target": "validation accuracy of the baseline row",
        **{k: v for k, v in run.to_dict().items() if k != "label"},
    }
    train = with_network(run.compute, comm, name="train")
    return Deployed(model=model.eval(), device=ctx.target, train=[train], details=details)
