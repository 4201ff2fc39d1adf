"""The memory guard of a trial's ``build`` phase: the pipeline's adapter from a
:class:`~nas.trial.TrialState` to :mod:`nas.memory`'s training estimate and check."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from nas.memory import check_training, estimate_training

if TYPE_CHECKING:  # pragma: no cover
    from nas.trial import RunningTrial

__all__ = ["check_trial"]

log = logging.getLogger("nas.memory")  # the logger these warnings always had


def check_trial(t: RunningTrial) -> None:
    """The pipeline's guard in phase ``build``, before the model is allocated: the sampled
    model's training at the study's batch size must fit (TrialFailure("out_of_memory")).
    An estimate that cannot be made (an operator without a meta kernel) is logged and skipped:
    training then fails on its own if it runs out, as before."""
    cfg = t.config
    space, spec = t.space, t.spec
    assert space is not None and spec is not None  # sampled before the build phase
    try:
        estimate = estimate_training(
            lambda: space.build(spec),
            input_shape=t.input_shape,
            batch_size=min(cfg.data.batch_size, len(t.data.train)),  # a batch is at most all
            optimizer=cfg.train.optimizer,
        )
    except (NotImplementedError, RuntimeError) as exc:
        log.warning("trial %d: no memory estimate (%s); not checked", t.number, exc)
        return
    check_training(
        estimate,
        device=t.device,
        memory_budget_gb=cfg.hardware.memory_budget_gb,
        held_bytes=int(getattr(t.data, "resident_bytes", 0)),
        what=f"trial {t.number}'s model",
    )
