"""A tabular benchmark in memory: encodings -> architecture ids, and "train to epoch k" lookups."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.tabular._format import (
    ARCHS,
    RESULTS,
    Row,
    TableError,
    read_archs,
    read_meta,
    read_results,
)


@dataclass(frozen=True, kw_only=True)
class Lookup:
    """What training an architecture (one repeat) to ``requested_epochs`` gives: the table's
    evaluation at ``epochs``, the next recorded epoch at or above the request. ``energy_kwh``
    and ``duration_s`` are cumulative from the start of training."""

    arch: str
    repeat: int
    requested_epochs: int
    epochs: int
    val_accuracy: float
    test_accuracy: float
    energy_kwh: float
    duration_s: float
    params: int


class Table:
    """One table directory, validated as a whole (see :func:`load_table`)."""

    def __init__(
        self,
        *,
        directory: Path,
        meta: dict[str, Any],
        names: list[str],
        encodings: list[tuple[tuple[Any, ...], str]],
        rows: list[Row],
    ) -> None:
        self.directory = directory
        self.meta = meta
        self.name: str = meta["name"]
        self.max_epochs: int = meta["max_epochs"]
        self.objective: str = meta["objective"]
        self.energy_kind: str = meta["energy_kind"]
        self.hardware: str = meta["hardware"]
        self.param_names: tuple[str, ...] = tuple(names)
        self._by_key = {tuple(str(v) for v in enc): arch for enc, arch in encodings}
        self._encodings: dict[str, list[tuple[Any, ...]]] = {}
        for enc, arch in encodings:
            self._encodings.setdefault(arch, []).append(enc)
        self.choices: dict[str, tuple[Any, ...]] = {
            n: tuple(sorted({enc[i] for enc, _ in encodings})) for i, n in enumerate(names)
        }
        self._rows: dict[str, dict[int, list[Row]]] = {}
        self._params: dict[str, int] = {}
        self._index(rows, directory)
        self.archs: tuple[str, ...] = tuple(sorted(self._encodings))

    def _index(self, rows: list[Row], directory: Path) -> None:
        results = directory / RESULTS
        seen: set[tuple[str, int, int]] = set()
        for row in rows:
            if row.arch not in self._encodings:
                raise TableError(f"{results}: arch {row.arch[:64]!r} is not listed in {ARCHS}")
            key = (row.arch, row.repeat, row.epochs)
            if key in seen:
                raise TableError(
                    f"{results}: arch {row.arch!r} repeat {row.repeat} epochs {row.epochs} "
                    "is listed twice"
                )
            seen.add(key)
            if self._params.setdefault(row.arch, row.params) != row.params:
                raise TableError(f"{results}: arch {row.arch!r} has two different params counts")
            self._rows.setdefault(row.arch, {}).setdefault(row.repeat, []).append(row)
        for arch in self._encodings:
            if arch not in self._rows:
                raise TableError(f"{directory / ARCHS}: arch {arch!r} has no rows in {RESULTS}")
        for arch, repeats in self._rows.items():
            for repeat, series in repeats.items():
                series.sort(key=lambda r: r.epochs)
                if series[-1].epochs != self.max_epochs:
                    raise TableError(
                        f"{results}: arch {arch!r} repeat {repeat} ends at epoch "
                        f"{series[-1].epochs}, not at max_epochs {self.max_epochs} (meta.json)"
                    )
                for a, b in zip(series, series[1:], strict=False):
                    if b.energy_kwh < a.energy_kwh or b.duration_s < a.duration_s:
                        raise TableError(
                            f"{results}: arch {arch!r} repeat {repeat}: energy_kwh and "
                            f"duration_s must not decrease from epoch {a.epochs} to {b.epochs} "
                            "(they are cumulative)"
                        )

    # -- encodings ------------------------------------------------------------------------
    def arch_of(self, encoding: Mapping[str, Any]) -> str | None:
        """The architecture id an encoding names; None for an encoding the table does not list
        (an invalid architecture). Isomorphic encodings give the same id."""
        try:
            key = tuple(str(encoding[n]) for n in self.param_names)
        except KeyError:
            return None
        return self._by_key.get(key)

    def encodings_of(self, arch: str) -> list[dict[str, Any]]:
        return [dict(zip(self.param_names, enc, strict=True)) for enc in self._encodings[arch]]

    @property
    def n_encodings(self) -> int:
        return len(self._by_key)

    # -- results --------------------------------------------------------------------------
    def params(self, arch: str) -> int:
        """The architecture's parameter count (known before training)."""
        return self._params[arch]

    def repeats(self, arch: str) -> tuple[int, ...]:
        return tuple(sorted(self._rows[arch]))

    def epochs(self, arch: str, repeat: int) -> tuple[int, ...]:
        """The recorded epochs of one repeat, ascending (the last is ``max_epochs``)."""
        return tuple(r.epochs for r in self._rows[arch][repeat])

    def repeat_for(self, arch: str, seed: int) -> int:
        """The repeat a trial with ``seed`` draws (uniform over the recorded repeats)."""
        reps = self.repeats(arch)
        return reps[random.Random(f"{seed}:{arch}").randrange(len(reps))]

    def lookup(self, arch: str, *, epochs: int, repeat: int) -> Lookup:
        """Train ``arch`` (repeat ``repeat``) to ``epochs``: the next recorded epoch >= it."""
        if arch not in self._rows:
            raise KeyError(f"table {self.name}: no architecture {arch!r}")
        series = self._rows[arch].get(repeat)
        if series is None:
            raise KeyError(f"table {self.name}: arch {arch!r} has no repeat {repeat}")
        if epochs < 0 or epochs > self.max_epochs:
            raise ValueError(f"table {self.name}: epochs must be in 0..{self.max_epochs}")
        row = next(r for r in series if r.epochs >= epochs)
        return Lookup(
            arch=arch,
            repeat=repeat,
            requested_epochs=epochs,
            epochs=row.epochs,
            val_accuracy=row.val_accuracy,
            test_accuracy=row.test_accuracy,
            energy_kwh=row.energy_kwh,
            duration_s=row.duration_s,
            params=row.params,
        )

    def objective_value(self, hit: Lookup) -> float:
        """The accuracy the table's ``objective`` names (``val_accuracy`` or ``test_accuracy``)."""
        return hit.val_accuracy if self.objective == "val_accuracy" else hit.test_accuracy

    def mean_point(self, arch: str) -> tuple[float, float]:
        """``(accuracy, energy_kwh)`` at ``max_epochs``, each the mean over the repeats: where
        the architecture stands on the table's front, whatever repeat a search drew."""
        finals = [series[-1] for series in self._rows[arch].values()]
        key = "val_accuracy" if self.objective == "val_accuracy" else "test_accuracy"
        acc = sum(getattr(r, key) for r in finals) / len(finals)
        return acc, sum(r.energy_kwh for r in finals) / len(finals)


def load_table(directory: str | Path) -> Table:
    """Read and validate a table directory; :class:`TableError` names the file and problem."""
    path = Path(directory)
    if not path.is_dir():
        raise TableError(f"{path}: not a directory (a table is a folder with meta.json)")
    meta = read_meta(path)
    names, encodings = read_archs(path)
    rows = read_results(path)
    return Table(directory=path, meta=meta, names=names, encodings=encodings, rows=rows)
