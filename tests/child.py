"""Starting econas in a child process the way a terminal does, whatever started the tests.

A shell that runs the suite as a background job (``bash -c 'make test &'``) starts it with
SIGINT ignored, every child inherits that, and Python then installs no KeyboardInterrupt
handler: a test's Ctrl-C would be dropped and the child would finish normally. Children that
tests signal start with SIGINT and SIGTERM at their defaults (``preexec_fn=default_signals``);
tests that signal their own process use the ``ctrl_c_raises`` fixture.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest


def default_signals() -> None:
    """In the child, before exec: SIGINT and SIGTERM as a foreground terminal has them."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """In this process: Ctrl-C raises KeyboardInterrupt, as in a foreground terminal, even when
    the suite was started with SIGINT ignored; the disposition is restored afterwards."""
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before if before is not None else signal.SIG_DFL)
