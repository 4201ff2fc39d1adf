"""A tabular benchmark run as an ordinary econas study: ``[search] benchmark = "table:DIR"``.

The search space is the table's parameters (:class:`TableSpace`); training is a lookup
(:class:`TableWorkload` on the :mod:`nas.workload` seam); the energy of every phase is the
table's (:class:`TableMeter`: ``energy_kind`` from the table, ``energy_source =
"table:<name>"``, the table's hardware). Everything else is the pipeline as it is: reuse
(two isomorphic encodings are one architecture, so one fingerprint), early stopping, the
carbon budget, workers, pareto, report and dashboard.

* An encoding the table does not list is not an architecture: the trial fails at sampling
  (``fail_reason = "invalid_arch"``) and costs nothing (every phase is 0 kWh).
* "Training to epoch k" gives the table's row at the next recorded epoch >= k of the repeat
  the trial's seed draws (:meth:`nas.tabular.Table.repeat_for`), its energy cumulative; a
  study trains to ``min(train.epochs, max_epochs)``.
* Each trial stores ``benchmark_arch``, ``benchmark_repeat`` and ``benchmark_epochs`` (the
  recorded epoch it was trained to).

:func:`load_benchmark` reads ``table:DIR`` (a folder) or ``table:NAME`` (a bundled table); a
malformed table is one :class:`~nas.tabular.TableError` line (exit 2).
:func:`table_context` is the run context of such a study (no data, no device work).
``econas tabulate`` (:mod:`nas.tabulate`) makes a table of a study's own space.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.config import BENCHMARK_PREFIX
from nas.table_study._meter import TableMeter
from nas.table_study._space import TableArchSpec, TableSpace
from nas.table_study._step import TableStep
from nas.table_study._workload import TableModel, TableWorkload, placeholder_splits
from nas.tabular import Table, TableError, bundled_tables, load_table

if TYPE_CHECKING:  # pragma: no cover
    from nas.carbon import IntensitySource
    from nas.config import Config

__all__ = [
    "TableArchSpec",
    "TableMeter",
    "TableModel",
    "TableSpace",
    "TableStep",
    "TableWorkload",
    "load_benchmark",
    "table_context",
]


def load_benchmark(text: str) -> Table:
    """The table ``table:DIR`` or ``table:NAME`` names: an existing folder first, then a
    bundled table of that name; :class:`TableError` (one line) otherwise."""
    if not text.startswith(BENCHMARK_PREFIX) or not text[len(BENCHMARK_PREFIX) :].strip():
        raise TableError(f"benchmark {text!r} must be 'table:DIR' or 'table:NAME'")
    rest = text[len(BENCHMARK_PREFIX) :].strip()
    path = Path(rest).expanduser()
    bundled = bundled_tables()
    if path.is_dir() or rest not in bundled:
        if not path.exists() and "/" not in rest and "\\" not in rest:
            raise TableError(
                f"benchmark {text!r}: no table folder {rest!r} and no bundled table of that "
                f"name (bundled: {', '.join(bundled) or 'none'})"
            )
        return load_table(path)
    return load_table(bundled[rest])


def table_context(
    config: Config,
    *,
    seed: int,
    intensity: IntensitySource | None = None,
    metered: bool = True,
    artifact_store: Any = None,
) -> dict[str, Any]:
    """The fields of a table study's :class:`~nas.context.RunContext` (``build_context``
    makes it): the table's workload and meter, placeholder data (a table holds no images),
    the CPU as device; the carbon source is the config's."""
    import torch

    from nas.config import config_intensity

    assert config.search.benchmark is not None
    table = load_benchmark(config.search.benchmark)  # malformed: one line, before any work
    source = config_intensity(config) if intensity is None else intensity
    splits = placeholder_splits(table)
    meter = TableMeter(table) if metered else None
    return {
        "config": config,
        "data": splits,
        "device": torch.device("cpu"),
        "meter": meter,
        "intensity": source,
        "seed": seed,
        "artifact_store": artifact_store,
        "workload": TableWorkload(table, meter=meter, splits=splits),
    }
