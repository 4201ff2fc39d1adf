"""SIGTERM handled as Ctrl-C: what schedulers, ``kill`` and ``docker stop`` send.

While :func:`sigterm_as_interrupt` is active (the CLI's ``search``, ``worker``, ``train`` and
``export``), SIGTERM raises :class:`Terminated`, a :class:`KeyboardInterrupt`: every cleanup
written for Ctrl-C runs (the running trial is failed with its energy, a final training keeps
its checkpoint and the interrupted epoch's energy, an export's staging folder is removed),
and the CLI exits 143 (128 + SIGTERM) with one line. A SIGTERM that the parent set to be
ignored stays ignored.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

TERMINATED_EXIT = 128 + signal.SIGTERM
INTERRUPTED_EXIT = 128 + signal.SIGINT


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (:func:`sigterm_as_interrupt`); handled as Ctrl-C, exit 143."""

    signal_name = "SIGTERM"


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` in the main thread while the block runs; the
    previous handler is restored after. Outside the main thread (where Python installs no
    handler) or with SIGTERM ignored, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block ends, then act as they would have.

    For a short write that must not be cut in half (a trial's record: an interrupt inside a
    database round trip loses the record and makes the driver log a traceback). A signal that
    arrives in the block is re-raised, with the handler in force before the block, as it ends.
    Outside the main thread nothing changes (Python delivers signals to the main thread only).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {  # an ignored signal stays ignored; None: a handler not set from Python
        s: h
        for s in (signal.SIGINT, signal.SIGTERM)
        if (h := signal.getsignal(s)) is not signal.SIG_IGN and h is not None
    }

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    for signum in previous:
        signal.signal(signum, hold)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(pending):
            signal.raise_signal(signum)


def interrupt_in(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C or SIGTERM behind ``exc``: itself, or one in its ``__context__``/``__cause__``
    chain (Optuna raises ``UnboundLocalError: updated_state`` when an interrupt lands while it
    tells a trial's state, and the interrupt is only its context); None when there is none."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def describe(exc: KeyboardInterrupt) -> tuple[str, int]:
    """The CLI's one line and exit code for an interrupt."""
    if isinstance(exc, Terminated):
        return "econas: terminated (SIGTERM)", TERMINATED_EXIT
    return "econas: interrupted", INTERRUPTED_EXIT
