"""Reading files a user or another process named: regular files only, and bounded.

A data file, config, trace or progress file given by path is untrusted input: a symlink to
``/dev/zero`` would be read until the OOM killer ends the process, a FIFO blocks forever, a
directory is not "not found". :func:`regular_file` refuses anything but an existing regular
file (symlinks followed) without blocking; :func:`read_bytes` and :func:`read_text` also
refuse files larger than a stated bound before reading them whole.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from nas.errors import BadInputError

MiB = 1024 * 1024


def _fail(error: type[BadInputError], text: str) -> BadInputError:
    return error(text)


def _describe(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def regular_file(
    path: str | os.PathLike[str], what: str, *, error: type[BadInputError] = BadInputError
) -> Path:
    """``path`` when it is an existing regular file; ``error`` in one line otherwise."""
    p = Path(path)
    try:
        mode = p.stat().st_mode  # follows symlinks: a link to /dev/zero is a device
    except FileNotFoundError:
        raise _fail(error, f"{what} not found: {p}") from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise _fail(error, f"{what}: the path is too long ({len(str(p))} characters)") from None
        raise _fail(error, f"{what} {p}: cannot read ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise _fail(error, f"{what} {p} is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise _fail(error, f"{what} {p} is {_describe(mode)}, not a regular file")
    return p


def read_bytes(
    path: str | os.PathLike[str],
    what: str,
    *,
    max_bytes: int,
    error: type[BadInputError] = BadInputError,
) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; ``error`` otherwise.

    The file is opened without blocking and checked again once open (it may have been
    swapped for a FIFO meanwhile); at most ``max_bytes + 1`` bytes are ever read."""
    p = regular_file(path, what, error=error)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise _fail(error, f"{what} {p}: cannot read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise _fail(error, f"{what} {p} is {_describe(mode)}, not a regular file")
        try:
            data = fh.read(max_bytes + 1)
        except OSError as exc:
            raise _fail(error, f"{what} {p}: cannot read ({exc.strerror})") from None
    if len(data) > max_bytes:
        raise _fail(error, f"{what} {p} is larger than {_size(max_bytes)}; refusing to read it")
    return data


def read_text(
    path: str | os.PathLike[str],
    what: str,
    *,
    max_bytes: int,
    encoding: str = "utf-8",
    error: type[BadInputError] = BadInputError,
) -> str:
    """The text of a regular file of at most ``max_bytes``; ``error`` otherwise."""
    data = read_bytes(path, what, max_bytes=max_bytes, error=error)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        raise _fail(error, f"{what} {Path(path)}: not a UTF-8 text file") from None


def _size(n: int) -> str:
    return f"{n / MiB:g} MiB" if n >= MiB else f"{n} bytes"
