"""Where an export is written: a new or empty directory, filled in a staging directory next
to it and moved into place only when complete (a failed export leaves nothing behind)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from nas.errors import BadInputError


def check_out_dir(out: Path, *, force: bool) -> None:
    """``out`` must be a new or empty directory (any directory with ``force``)."""
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out {str(out)!r} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise BadInputError(
            f"--out {str(out)!r} is not empty; choose a new directory or pass --force to "
            "replace the export's files in it"
        )


@contextlib.contextmanager
def staging_dir(out: Path) -> Iterator[Path]:
    """A temporary directory next to ``out`` (same file system), removed unless published.
    Made with ``mkdir``'s default mode, so the published directory has the mode the user's
    umask gives any new directory (``tempfile.mkdtemp`` would make it 0700)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = out.parent / f".{out.name}.{secrets.token_hex(6)}.partial"
        try:
            tmp.mkdir()
            break
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish(tmp: Path, out: Path) -> None:
    """Move the finished export into place: a rename when ``out`` is new or empty, else file
    by file (``--force``), each replaced atomically."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        tmp.rename(out)
        tmp.mkdir()  # staging_dir removes it
        return
    for path in sorted(tmp.rglob("*")):
        target = out / path.relative_to(tmp)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            os.replace(path, target)
