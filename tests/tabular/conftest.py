"""A tiny hand-made table whose front, hypervolume and oracle are worked out by hand.

Parameters ``x`` in {0, 1, 2} and ``op`` in {a, b, c}; (0, a) and (1, a) are isomorphic (arch A);
(2, b) and (2, c) are not listed (invalid cells). Means at max_epochs 3 (accuracy, kWh):
A (0.5, 1.0), B (0.7, 2.0), C (0.6, 3.0: dominated by B), D (0.9, 4.0), E (0.2, 0.5),
F (0.3, 5.0: dominated). Reference (nadir): (0.2, 5.0). Front: E, A, B, D.
Hypervolume: 0.3 * (2 - 1) + 0.5 * (4 - 2) + 0.7 * (5 - 4) = 2.0.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

META: dict[str, Any] = {
    "name": "tiny",
    "source": "hand-made for the tests",
    "licence": "CC0",
    "task": "none",
    "hardware": "none",
    "energy_kind": "measured",
    "meter": "none",
    "energy_covers": "training, cumulative",
    "objective": "val_accuracy",
    "max_epochs": 3,
}
ARCHS = [
    ["A", "0", "a"],
    ["A", "1", "a"],
    ["B", "0", "b"],
    ["C", "1", "b"],
    ["D", "2", "a"],
]
# final (accuracy, kWh) per repeat; the means are in the module docstring
FINALS = {
    "A": [(0.4, 0.9), (0.6, 1.1)],
    "B": [(0.7, 2.0), (0.7, 2.0)],
    "C": [(0.5, 3.0), (0.7, 3.0)],
    "D": [(0.9, 4.0), (0.9, 4.0)],
    "E": [(0.2, 0.5), (0.2, 0.5)],
    "F": [(0.3, 5.0), (0.3, 5.0)],
}
PARAMS = {"A": 10, "B": 20, "C": 30, "D": 40, "E": 5, "F": 50}


def results_rows() -> list[list[Any]]:
    rows = []
    for arch, finals in FINALS.items():
        for repeat, (acc, kwh) in enumerate(finals, start=1):
            rows.append([arch, repeat, 1, acc / 2, acc / 2, kwh / 3, 10.0, PARAMS[arch]])
            rows.append([arch, repeat, 3, acc, acc - 0.01, kwh, 30.0, PARAMS[arch]])
    return rows


def archs_rows() -> list[list[Any]]:
    return [*ARCHS, ["E", "0", "c"], ["F", "1", "c"]]


def _gz(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    path.write_bytes(gzip.compress(buf.getvalue().encode()))


MakeTable = Callable[..., Path]


@pytest.fixture
def make_table(tmp_path: Path) -> MakeTable:
    """``make_table(meta=..., archs=..., results=...)``: the tiny table, parts replaced."""

    def make(
        *,
        meta: dict[str, Any] | None = None,
        archs: list[list[Any]] | None = None,
        results: list[list[Any]] | None = None,
        archs_header: list[str] | None = None,
        name: str = "tiny",
    ) -> Path:
        d = tmp_path / name
        d.mkdir()
        (d / "meta.json").write_text(json.dumps(META if meta is None else meta))
        _gz(d / "archs.csv.gz", archs_header or ["arch", "x", "op"], archs or archs_rows())
        header = "arch,repeat,epochs,val_accuracy,test_accuracy,energy_kwh,duration_s,params"
        _gz(d / "results.csv.gz", header.split(","), results or results_rows())
        return d

    return make
