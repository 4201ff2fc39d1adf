"""Writing a table in the format :func:`load_table` reads, from a callable that trains.

Resumable: a repeat of an architecture is written whole (all its epochs at once, the files
replaced atomically), and a re-run skips every (architecture, repeat) already complete. After
each repeat the directory is a valid table of the architectures done so far.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.tabular._format import (
    ARCHS,
    META,
    RESULT_COLUMNS,
    RESULTS,
    TableError,
    read_archs,
    read_meta,
    read_results,
)
from nas.tabular._table import Table, load_table


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """One evaluation during a training run; energy and duration cumulative from its start."""

    epochs: int
    val_accuracy: float
    test_accuracy: float
    energy_kwh: float
    duration_s: float
    params: int


Train = Callable[[Mapping[str, Any], int, Sequence[int]], Sequence[Evaluation]]
"""``train(encoding, repeat, epochs)``: train the encoding from scratch (seeded by ``repeat``),
evaluating at each of ``epochs`` (ascending); one :class:`Evaluation` per epoch."""


def write_table(
    directory: str | Path,
    *,
    meta: Mapping[str, Any],
    encodings: Sequence[tuple[str, Mapping[str, Any]]],
    train: Train,
    epochs: Sequence[int],
    repeats: int = 1,
    progress: Callable[[str], None] | None = None,
) -> Table:
    """Train every architecture named in ``encodings`` (``(arch id, parameters)`` pairs; several
    encodings may share an id and are trained once) for ``repeats`` repeats at ``epochs``, and
    write the table to ``directory``. ``meta`` holds the ``meta.json`` keys except
    ``max_epochs`` (``max(epochs)``)."""
    out = Path(directory)
    wanted = sorted(set(epochs))
    if not wanted or wanted[0] < 0:
        raise TableError(f"{out}: epochs must be non-negative integers, at least one")
    if repeats < 1:
        raise TableError(f"{out}: repeats must be >= 1")
    full_meta = {**meta, "max_epochs": wanted[-1]}
    names = sorted({k for _, enc in encodings for k in enc})
    if not names or any(set(enc) != set(names) for _, enc in encodings):
        raise TableError(f"{out}: every encoding needs the same, non-empty parameter names")
    out.mkdir(parents=True, exist_ok=True)
    rows, arch_rows = _resume(out, full_meta, names, wanted)
    _write_json(out / META, full_meta)
    by_arch: dict[str, list[Mapping[str, Any]]] = {}
    for arch, enc in encodings:
        by_arch.setdefault(arch, []).append(enc)
    for arch, encs in by_arch.items():
        for enc in encs:
            key = tuple(str(enc[n]) for n in names)
            arch_rows.setdefault(key, arch)
        for repeat in range(1, repeats + 1):
            done = {r["epochs"] for r in rows if r["arch"] == arch and r["repeat"] == repeat}
            if set(wanted) <= done:
                continue
            rows = [r for r in rows if not (r["arch"] == arch and r["repeat"] == repeat)]
            evals = list(train(encs[0], repeat, wanted))
            got = [e.epochs for e in evals]
            if got != wanted:
                raise TableError(f"{out}: train returned epochs {got} for {wanted}")
            rows += [_row(arch, repeat, e) for e in evals]
            table_rows = [[r[c] for c in RESULT_COLUMNS] for r in rows]
            _write_csv(out / RESULTS, list(RESULT_COLUMNS), table_rows)
            done_archs = {r["arch"] for r in rows}
            _write_csv(
                out / ARCHS,
                ["arch", *names],
                [[a, *k] for k, a in arch_rows.items() if a in done_archs],
            )
            if progress:
                progress(f"{arch} repeat {repeat}: epochs {wanted} written")
    return load_table(out)


def _resume(
    out: Path, meta: Mapping[str, Any], names: list[str], wanted: list[int]
) -> tuple[list[dict[str, Any]], dict[tuple[str, ...], str]]:
    """The rows and encodings already written, after checking they belong to this table."""
    if not (out / META).exists():
        if any((out / f).exists() for f in (ARCHS, RESULTS)):
            raise TableError(f"{out}: has table files but no {META}; not resuming into it")
        return [], {}
    old = read_meta(out)
    for key in ("name", "max_epochs", "objective", "energy_kind"):
        if old.get(key) != meta.get(key):
            raise TableError(
                f"{out / META}: {key} is {old.get(key)!r}, this run's is {meta.get(key)!r}; "
                "write to a new directory"
            )
    if not (out / RESULTS).exists():
        return [], {}
    old_names, encs = read_archs(out)
    if sorted(old_names) != names:
        raise TableError(f"{out / ARCHS}: parameters {old_names}, this run's are {names}")
    order = [old_names.index(n) for n in names]
    arch_rows = {tuple(str(enc[i]) for i in order): arch for enc, arch in encs}
    rows = [dict(vars(r)) for r in read_results(out) if r.epochs in wanted]
    return rows, arch_rows


def _row(arch: str, repeat: int, e: Evaluation) -> dict[str, Any]:
    return {
        "arch": arch,
        "repeat": repeat,
        "epochs": e.epochs,
        "val_accuracy": repr(float(e.val_accuracy)),
        "test_accuracy": repr(float(e.test_accuracy)),
        "energy_kwh": repr(float(e.energy_kwh)),
        "duration_s": repr(float(e.duration_s)),
        "params": int(e.params),
    }


def _atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # as open() would make it (mkstemp's is 0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    _atomic(path, gzip.compress(buf.getvalue().encode("utf-8"), mtime=0))


def _write_json(path: Path, obj: Mapping[str, Any]) -> None:
    _atomic(path, (json.dumps(dict(obj), indent=1) + "\n").encode("utf-8"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
