"""One ``econas train`` per trial at a time: an exclusive ``flock`` on ``train.lock`` in the
trial's run folder (``runs/<study>/final/trial-N/``).

Two runs of one trial would both train, both upload weights and both store a record, and the
study would keep only the last writer's. The second run is refused with one line (exit 2)
naming the holder's pid; the lock goes with the holder's process, however it ends (the kernel
drops a ``flock`` when its file is closed, SIGKILL included), so a killed run never leaves a
stale lock. The file itself stays (removing it would let a third run lock a new file while
the second still holds the old one).
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nas.errors import BadInputError

LOCK = "train.lock"


class TrialBusyError(BadInputError):
    """Another process is training this trial now (exit 2)."""


@contextmanager
def trial_lock(folder: Path, *, what: str) -> Iterator[None]:
    """Hold the exclusive lock of ``folder`` (made if missing) while the block runs;
    :class:`TrialBusyError` when another process holds it. ``what`` names the trial."""
    path = folder / LOCK
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:  # a read-only folder, a symlink planted as the lock file...
        raise BadInputError(f"cannot lock {path}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = _holder(fd)
            raise TrialBusyError(
                f"{what} is being trained by another econas train{holder} (lock {path}); "
                "wait for it to finish, then rerun this command: it resumes from the "
                "checkpoint or reports the trial trained"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _holder(fd: int) -> str:
    """`` (pid N)`` from the lock file, or nothing when it cannot be read."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""
