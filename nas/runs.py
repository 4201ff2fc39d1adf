"""Building a run's :class:`~nas.context.RunContext` from its config: the device, meter,
carbon source and data of a training run, or a tabular benchmark's lookups
(:mod:`nas.table_study`). Above both, so that neither imports the other."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas.context import RunContext, data_budget
from nas.workload import TorchWorkload, Workload

if TYPE_CHECKING:  # pragma: no cover
    from nas.carbon import IntensitySource
    from nas.config import Config
    from nas.data import DataBudget


def build_context(
    config: Config,
    *,
    seed: int | None = None,
    intensity: IntensitySource | None = None,
    budget: DataBudget | None = None,
    device: str | None = None,
    meter: str | None = None,
    metered: bool = True,
    artifact_store: Any = None,
    workload: Workload | None = None,
) -> RunContext:
    """Resolve the config's device, meter, carbon intensity source and data, in that order
    (bad input: :class:`~nas.errors.BadInputError`, exit 2, before any work).

    ``seed`` (default ``study.seed``) draws the data; ``budget`` replaces ``[data]``'s sizes;
    ``device`` and ``meter`` replace ``[hardware]``'s names; ``metered=False`` makes no meter.
    With ``[search] benchmark`` set, the context is the table's
    (:func:`nas.table_study.table_context`: ``device``, ``meter`` and ``budget`` do not apply).
    """
    from nas._malloc import keep_freed_memory
    from nas.config import config_intensity
    from nas.data import load_data
    from nas.energy import create_meter
    from nas.hardware import resolve_device

    keep_freed_memory()  # evaluation batches reuse their memory, not re-fault it (issue 27)
    run_seed = config.study.seed if seed is None else seed
    if config.search.benchmark is not None and workload is None:  # a tabular benchmark:
        from nas.table_study import table_context  # its lookups, meter and no data

        return RunContext(
            **table_context(
                config,
                seed=run_seed,
                intensity=intensity,
                metered=metered,
                artifact_store=artifact_store,
            )
        )
    dev = resolve_device(device or config.hardware.device)
    m = create_meter(meter or config.hardware.meter, device=str(dev)) if metered else None
    try:
        source = config_intensity(config) if intensity is None else intensity
        data = load_data(
            config.data.dataset,
            budget=budget or data_budget(config),
            seed=run_seed,
            memory_budget_gb=config.hardware.memory_budget_gb,
        )
    except BaseException:
        if m is not None:  # nothing was measured with it: release its threads
            m.close()
        raise
    return RunContext(
        config=config,
        data=data,
        device=dev,
        meter=m,
        intensity=source,
        seed=run_seed,
        artifact_store=artifact_store,
        workload=workload or TorchWorkload(),
    )
