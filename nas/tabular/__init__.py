"""Tabular benchmarks: every architecture's accuracy and energy at several epochs, looked up
instead of trained, so a search strategy is judged on many seeds in seconds.

A leaf package (stdlib only): it knows nothing of Optuna, torch or the pipeline.

- :func:`load_table` reads and validates a table directory (``meta.json``, ``archs.csv.gz``,
  ``results.csv.gz``; the format is in ``TABLES.md`` beside this file); a malformed one raises
  one :class:`TableError` naming the file and the problem.
- :class:`Table`: ``arch_of(encoding)`` (isomorphic encodings -> one id, ``None`` for an
  encoding the table does not list), ``lookup(arch, epochs=k, repeat=r)`` (the next recorded
  epoch >= k; cumulative energy and duration), ``params``, ``repeat_for(arch, seed)``,
  ``mean_point``.
- :func:`exact_front`, :func:`reference_point`, :func:`hypervolume_fraction`, :func:`oracle`:
  the definitions a search is scored by (see ``nas.tabular._front``).
- :func:`bundled_tables` / :func:`bundled_table`: the tables shipped with econas
  (``ecnas-4v``: EC-NAS-Bench's 4-vertex cells, MIT; attribution in ``data/ecnas-4v/SOURCE.md``).
- :func:`write_table`: make a table in the same format from a callable that trains an
  architecture to given epochs (resumable).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from nas.tabular._format import TableError
from nas.tabular._front import (
    Front,
    Oracle,
    exact_front,
    hypervolume_fraction,
    oracle,
    reference_point,
)
from nas.tabular._table import Lookup, Table, load_table
from nas.tabular._write import Evaluation, write_table

__all__ = [
    "Evaluation",
    "Front",
    "Lookup",
    "Oracle",
    "Table",
    "TableError",
    "bundled_table",
    "bundled_tables",
    "exact_front",
    "hypervolume_fraction",
    "load_table",
    "oracle",
    "reference_point",
    "write_table",
]


def _data_dir() -> Path:
    return Path(str(resources.files("nas.tabular") / "data"))


def bundled_tables() -> dict[str, Path]:
    """Name -> directory of every table shipped in the package."""
    root = _data_dir()
    return {p.name: p for p in sorted(root.iterdir()) if (p / "meta.json").is_file()}


def bundled_table(name: str) -> Table:
    tables = bundled_tables()
    if name not in tables:
        raise TableError(f"no bundled table {name!r} (bundled: {', '.join(tables) or 'none'})")
    return load_table(tables[name])
