"""A storage that fails under econas: a corrupt page, a read-only file, a full disk.

Optuna and SQLAlchemy raise ``StorageInternalError``, ``OperationalError``,
``UnboundLocalError`` (a failed commit inside Optuna) or a bare ``OSError``; :func:`storage_fault`
turns any of them into one line that names the storage (credentials masked) and what is
wrong: :class:`~nas.errors.BadInputError` (exit 2) when the storage itself is unusable
(corrupt, not a database, read-only), :class:`StorageFault` (exit 1) for a fault of the
machine (disk full, I/O error). A file econas writes itself (an artifact, a checkpoint, an
export) that fails the same way is named instead of the storage.

:func:`fault_of` is what the CLI and the search ask: is this exception (or one in its
``__context__``/``__cause__`` chain: Optuna masks a failed commit as ``UnboundLocalError`` or
``AssertionError: Should not reach.``) a storage or disk fault, and if so, its one line. The
storage it names is the one :func:`nas.study.open_storage` opened last.
"""

from __future__ import annotations

import errno

from nas.credentials import scrub
from nas.errors import BadInputError, EconasError

# (what the driver says, what econas says, is it the user's storage rather than the machine)
_KNOWN: tuple[tuple[str, str, bool], ...] = (
    ("database disk image is malformed", "is corrupt (a damaged page)", True),
    ("file is not a database", "is not a SQLite database", True),
    ("readonly database", "is read-only (cannot write to it)", True),
    ("read-only", "is read-only (cannot write to it)", True),
    ("unable to open database file", "cannot be opened (missing folder or no permission)", True),
    ("database or disk is full", "cannot be written: the disk is full", False),
    ("disk i/o error", "cannot be written: disk I/O error", False),
    ("no space left on device", "cannot be written: the disk is full", False),
    ("database is locked", "is locked by another process (try again)", False),
)


class StorageFault(EconasError):
    """The machine failed the storage (disk full, I/O error): exit 1, one line."""


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return seen


# errnos of a machine that cannot store what econas writes (not a bad path or permission)
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})
_opened: list[str] = []


def note_storage(where: str) -> None:
    """Remember the storage just opened (masked), for :func:`fault_of`'s line."""
    _opened[:] = [where]


def is_fault(exc: BaseException) -> bool:
    """A storage error or a disk that cannot be written (full, read-only, I/O error), anywhere
    in ``exc``'s chain: the machine or the storage failed, not the trial."""
    if is_storage_error(exc):
        return True
    return any(isinstance(e, OSError) and e.errno in DISK_ERRNOS for e in _chain(exc))


def fault_of(exc: BaseException, where: str | None = None) -> EconasError | None:
    """:func:`storage_fault` of ``exc`` when :func:`is_fault`, else None; ``where`` defaults
    to the storage opened last."""
    if not is_fault(exc):
        return None
    return storage_fault(exc, where or (_opened[0] if _opened else "(unknown)"))


def _file_fault(chain: list[BaseException]) -> EconasError | None:
    """A file econas itself writes that the disk refused: named by its path."""
    for e in chain:
        if not isinstance(e, OSError) or not e.filename or e.errno not in DISK_ERRNOS:
            continue
        name = scrub(str(e.filename))[:300]
        if e.errno == errno.EROFS:
            return BadInputError(f"cannot write {name}: read-only file system")
        said = "the disk is full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else "disk I/O error"
        return StorageFault(f"cannot write {name}: {said}")
    return None


def storage_fault(exc: BaseException, where: str) -> EconasError:
    """One line for a storage failure; ``where`` names the storage (already masked)."""
    chain = _chain(exc)
    named = _file_fault(chain)
    if named is not None:
        return named
    text = " ".join(str(e) for e in chain).lower()
    for needle, said, users in _KNOWN:
        if needle in text:
            error = BadInputError if users else StorageFault
            return error(f"storage {where} {said}")
    for e in chain:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return StorageFault(f"storage {where} cannot be written: the disk is full")
        if isinstance(e, OSError) and e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return BadInputError(f"storage {where} is read-only (cannot write to it)")
    root = chain[-1]
    reason = scrub(" ".join(str(root).split()))[:200] or type(root).__name__
    return StorageFault(f"storage {where} failed: {type(root).__name__}: {reason}")


def is_storage_error(exc: BaseException) -> bool:
    """Whether ``exc`` came from the storage layer (Optuna's storage, SQLAlchemy, sqlite3)."""
    for e in _chain(exc):
        module = type(e).__module__ or ""
        if module.startswith(("sqlalchemy", "sqlite3", "psycopg", "pymysql")):
            return True
        if type(e).__name__ in ("StorageInternalError", "DatabaseError", "OperationalError"):
            return True
    return False
