"""Reading and validating a table directory: ``meta.json``, ``archs.csv.gz``, ``results.csv.gz``.

The format (``shared/benchmarks/README.md``): ``archs.csv.gz`` has ``arch`` plus one column per
search parameter, one row per encoding a sampler can draw (several encodings may name one
``arch``); ``results.csv.gz`` has ``arch, repeat, epochs, val_accuracy, test_accuracy,
energy_kwh, duration_s, params`` with energy and duration cumulative from the start of training.

Every problem raises one :class:`TableError` naming the file (and line) and what is wrong.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.errors import DataError

META = "meta.json"
ARCHS = "archs.csv.gz"
RESULTS = "results.csv.gz"
META_KEYS = (
    "name",
    "source",
    "licence",
    "task",
    "hardware",
    "energy_kind",
    "meter",
    "energy_covers",
    "objective",
    "max_epochs",
)
RESULT_COLUMNS = (
    "arch",
    "repeat",
    "epochs",
    "val_accuracy",
    "test_accuracy",
    "energy_kwh",
    "duration_s",
    "params",
)
ENERGY_KINDS = ("measured", "estimated")
OBJECTIVES = ("val_accuracy", "test_accuracy")
MAX_FILE_BYTES = 256 * 1024 * 1024  # a decompressed table larger than this is refused


class TableError(DataError):
    """A tabular benchmark directory is missing a file or holds a malformed one."""


@dataclass(frozen=True, kw_only=True)
class Row:
    """One recorded evaluation: ``arch`` trained (repeat ``repeat``) to ``epochs``."""

    arch: str
    repeat: int
    epochs: int
    val_accuracy: float
    test_accuracy: float
    energy_kwh: float
    duration_s: float
    params: int


def read_meta(directory: Path) -> dict[str, Any]:
    path = directory / META
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TableError(f"{path}: missing (a table directory needs {META})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TableError(f"{path}: not readable JSON ({_one_line(exc)})") from None
    if not isinstance(raw, dict):
        raise TableError(f"{path}: must be a JSON object")
    missing = [k for k in META_KEYS if k not in raw]
    if missing:
        raise TableError(f"{path}: missing key(s) {', '.join(missing)}")
    for key in META_KEYS:
        if key != "max_epochs" and not (isinstance(raw[key], str) and raw[key].strip()):
            raise TableError(f"{path}: {key} must be a non-empty string")
    if raw["energy_kind"] not in ENERGY_KINDS:
        raise TableError(f"{path}: energy_kind must be one of {', '.join(ENERGY_KINDS)}")
    if raw["objective"] not in OBJECTIVES:
        raise TableError(f"{path}: objective must be one of {', '.join(OBJECTIVES)}")
    max_epochs = raw["max_epochs"]
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
        raise TableError(f"{path}: max_epochs must be a positive integer")
    if any(c in raw["name"] for c in "/\\:\n") or raw["name"] in (".", ".."):
        raise TableError(f"{path}: name must not contain '/', '\\\\', ':' or a newline")
    return raw


def _csv_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and ``(line number, fields)`` rows of a gzip'd CSV; blank lines skipped."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise TableError(f"{path}: missing") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise TableError(f"{path}: not a readable gzip file ({_one_line(exc)})") from None
    if len(data) > MAX_FILE_BYTES:
        raise TableError(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MiB decompressed")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TableError(f"{path}: not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise TableError(f"{path}: empty (no header line)") from None
    except csv.Error as exc:
        raise TableError(f"{path}: line 1: {_one_line(exc)}") from None
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        raise TableError(f"{path}: duplicate column names in the header")
    rows: list[tuple[int, list[str]]] = []
    try:
        for fields in reader:
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise TableError(
                    f"{path}: line {reader.line_num}: {len(fields)} fields, "
                    f"the header has {len(header)}"
                )
            rows.append((reader.line_num, [f.strip() for f in fields]))
    except csv.Error as exc:
        raise TableError(f"{path}: line {reader.line_num}: {_one_line(exc)}") from None
    if not rows:
        raise TableError(f"{path}: no data rows")
    return header, rows


def read_archs(directory: Path) -> tuple[list[str], list[tuple[tuple[Any, ...], str]]]:
    """Parameter names and ``(encoding, arch)`` rows; integer-looking columns become ints."""
    path = directory / ARCHS
    header, rows = _csv_rows(path)
    if "arch" not in header:
        raise TableError(f"{path}: no 'arch' column")
    names = [h for h in header if h != "arch"]
    if not names:
        raise TableError(f"{path}: no parameter columns besides 'arch'")
    if any(not n for n in names):
        raise TableError(f"{path}: a parameter column has an empty name")
    arch_col = header.index("arch")
    cols = [header.index(n) for n in names]
    as_int = [all(_is_int(fields[c]) for _, fields in rows) for c in cols]
    out: list[tuple[tuple[Any, ...], str]] = []
    seen: dict[tuple[Any, ...], int] = {}
    for line, fields in rows:
        arch = fields[arch_col]
        if not arch:
            raise TableError(f"{path}: line {line}: empty arch id")
        enc = tuple(
            int(fields[c]) if integer else fields[c]
            for c, integer in zip(cols, as_int, strict=True)
        )
        if any(v == "" for v in enc):
            raise TableError(f"{path}: line {line}: an empty parameter value")
        if enc in seen:
            raise TableError(f"{path}: line {line}: the encoding of line {seen[enc]} again")
        seen[enc] = line
        out.append((enc, arch))
    return names, out


def read_results(directory: Path) -> list[Row]:
    path = directory / RESULTS
    header, rows = _csv_rows(path)
    missing = [c for c in RESULT_COLUMNS if c not in header]
    if missing:
        raise TableError(f"{path}: missing column(s) {', '.join(missing)}")
    idx = {c: header.index(c) for c in RESULT_COLUMNS}
    out: list[Row] = []
    for line, fields in rows:

        def get(col: str, kind: type, _line: int = line, _fields: list[str] = fields) -> Any:
            text = _fields[idx[col]]
            try:
                value = kind(text)
            except ValueError:
                raise TableError(
                    f"{path}: line {_line}: {col} {text[:40]!r} is not a number"
                ) from None
            if kind is float and not math.isfinite(value):
                raise TableError(f"{path}: line {_line}: {col} must be finite")
            return value

        row = Row(
            arch=fields[idx["arch"]],
            repeat=get("repeat", int),
            epochs=get("epochs", int),
            val_accuracy=get("val_accuracy", float),
            test_accuracy=get("test_accuracy", float),
            energy_kwh=get("energy_kwh", float),
            duration_s=get("duration_s", float),
            params=get("params", int),
        )
        if not row.arch:
            raise TableError(f"{path}: line {line}: empty arch id")
        if row.epochs < 0 or row.params < 0:
            raise TableError(f"{path}: line {line}: epochs and params must be >= 0")
        if not (0.0 <= row.val_accuracy <= 1.0 and 0.0 <= row.test_accuracy <= 1.0):
            raise TableError(f"{path}: line {line}: accuracies must be fractions in [0, 1]")
        if row.energy_kwh < 0 or row.duration_s < 0:
            raise TableError(f"{path}: line {line}: energy_kwh and duration_s must be >= 0")
        out.append(row)
    return out


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
