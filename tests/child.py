"""Starting econas in a child process the way a terminal does, whatever started the tests.

A shell that runs the suite as a background job (``bash -c 'make test &'``) starts it with
SIGINT ignored, every child inherits that, and Python then installs no KeyboardInterrupt
handler: a test's Ctrl-C would be dropped and the child would finish normally. Children that
tests signal start with SIGINT and SIGTERM at their defaults (``preexec_fn=default_signals``).
"""

from __future__ import annotations

import signal


def default_signals() -> None:
    """In the child, before exec: SIGINT and SIGTERM as a foreground terminal has them."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
