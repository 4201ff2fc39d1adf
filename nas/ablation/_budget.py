"""The budget the rows train at, from ``[ablate] budget`` or the flags of ``econas ablate``.

``proxy``: the run context of a search ([data]'s subsets; the rows train by ``[train]``).
``final``: ``econas train``'s run context (:func:`nas.final.final_context`: the whole training
split less a validation split of ``[ablate] select_val_size`` images, the ``[final]`` test
split) and its recipe (:func:`nas.final.final_plan`); the combined row's candidates train on
the first ``[data] train_size`` images by ``[train]``.
"""

from __future__ import annotations

import functools
from typing import Any

from nas.compression.techniques import RowBudget
from nas.config import Config
from nas.context import RunContext
from nas.errors import BadInputError
from nas.runs import build_context


def ablation_context(config: Config, *, seed: int) -> tuple[RunContext, RowBudget]:
    """The run context of the table at ``[ablate] budget`` and how its rows train there."""
    if config.ablate.budget == "proxy":
        return build_context(config, seed=seed), RowBudget()
    from nas.final import FinalOptions, final_context, final_plan

    options = FinalOptions.of(config)
    run = final_context(config, options, val_size=config.ablate.select_val_size, seed=seed)
    budget = RowBudget(
        name="final",
        final_plan=functools.partial(_plan, final_plan, options),
        select_train_size=config.data.train_size,
    )
    return run, budget


def _plan(final_plan: Any, options: Any, run: RunContext, seed: int) -> Any:
    return final_plan(run, options, seed=seed)


def ablation_config(
    config: Config,
    *,
    budget: str | None = None,
    epochs: int | None = None,
    train_size: int | str | None = None,
    val_size: int | None = None,
    trace: str | None = None,
    window_hours: float | None = None,
    inference_predictions: int | None = None,
) -> Config:
    """``config`` with ``econas ablate``'s flags applied (None: unchanged). ``epochs``,
    ``train_size`` (``"all"``: the whole split less validation, final budget only) and
    ``val_size`` are the chosen budget's: ``[train]``/``[data]`` at the proxy budget,
    ``[final]`` and ``[ablate] select_val_size`` at the final one."""
    ablate: dict[str, Any] = {
        k: v
        for k, v in {
            "budget": budget,
            "trace": trace,
            "window_hours": window_hours,
            "inference_predictions": inference_predictions,
        }.items()
        if v is not None
    }
    if ablate:
        config = config.replace("ablate", **ablate)
    final = config.ablate.budget == "final"
    if epochs is not None:
        if epochs < 1:
            raise BadInputError(f"--epochs must be >= 1, got {epochs}")
        config = config.replace("final" if final else "train", epochs=epochs)
    if train_size is not None:
        if train_size == "all" and not final:
            raise BadInputError("--train-size all is for --budget final")
        size = None if train_size == "all" else int(train_size)
        if size is not None and size < 1:
            raise BadInputError(f"--train-size must be 'all' or >= 1, got {train_size}")
        config = config.replace("final" if final else "data", train_size=size)
    if val_size is not None:
        if val_size < 1:
            raise BadInputError(f"--val-size must be >= 1, got {val_size}")
        config = (
            config.replace("ablate", select_val_size=val_size)
            if final
            else config.replace("data", val_size=val_size)
        )
    return config
