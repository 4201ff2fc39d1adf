"""The ``econas`` command line.

Each verb lives in ``nas/commands/<verb>.py`` and exposes ``add_parser(subparsers)``, which
registers the sub-parser and sets ``func`` to a ``run(args) -> int`` callable. Heavy imports
(torch, optuna) happen inside ``run`` so ``econas --help`` stays fast.

Exit codes: 0 success; 2 bad input, a corrupt or read-only storage (one line on stderr, no
traceback); 1 a fault of the machine (a full disk: one line) or an unexpected failure (a
traceback); 130 Ctrl-C; 143 SIGTERM (``search``, ``worker``, ``train``, ``export``: handled as
Ctrl-C, nas.signals).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from contextlib import nullcontext
from typing import NoReturn, TextIO

from nas.credentials import remember_environment, remember_strings, scrub
from nas.errors import BadInputError, EconasError
from nas.text import for_terminal, one_line

# OpenBLAS threads spinning next to torch's own intra-op threads cost CPU time, and a figure
# measured under one setting does not project to another: every econas run uses one OpenBLAS
# thread unless told otherwise (as `make` always did); set before numpy and torch load it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

COMMANDS = (
    "search",
    "worker",
    "pareto",
    "export",
    "report",
    "dashboard",
    "measure",
    "ablate",
    "schedule",
    "train",
    "tabulate",
    "init",
    "studies",
)

# verbs that handle SIGTERM as Ctrl-C (nas.signals): the running trial is failed with its
# energy, a training keeps its checkpoint, an export leaves nothing; exit 143
SIGTERM_VERBS = frozenset({"search", "worker", "train", "export"})


class _CleanStream:
    """A text stream that masks credentials (:func:`nas.credentials.scrub`) in what is
    written and, with ``controls=False``, drops control characters (escape sequences,
    carriage returns): what econas prints comes in part from a study's storage, which is
    untrusted input, and in part from drivers and libraries, which quote the URLs they were
    given. Newlines and tabs pass."""

    def __init__(self, stream: TextIO, *, controls: bool = False) -> None:
        self._stream = stream
        self._controls = controls

    def write(self, text: str) -> int:
        text = scrub(text)
        return self._stream.write(text if self._controls else for_terminal(text))

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


class _ScrubFilter(logging.Filter):
    """Masks credentials in a log record's message (drivers' texts are logged too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = scrub(text)
        return True


class _InterruptNoiseFilter(logging.Filter):
    """Drops a database driver's traceback of the Ctrl-C or SIGTERM that cut its round trip
    short (SQLAlchemy logs "Exception during reset" before re-raising it, and the error closing
    the cursor the interrupt left): the interrupt is handled, and the CLI says so in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        from nas.signals import interrupt_in

        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or not record.name.startswith("sqlalchemy"):
            return True
        return interrupt_in(exc) is None  # the interrupt itself, or an error it caused


class _Parser(argparse.ArgumentParser):
    """ArgumentParser that reports errors in one line and exits with 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def versions() -> dict[str, str]:
    """Installed versions of econas, torch and optuna, read from package metadata (importing
    neither torch nor optuna); ``"not installed"`` where a package is missing."""
    from importlib import metadata

    out = {}
    for name in ("econas", "torch", "optuna"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


class _VersionAction(argparse.Action):
    """``econas --version``: one ``name version`` line per package, then exit 0."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=str(kwargs.get("help"))
        )

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        sys.stdout.write("".join(f"{k} {v}\n" for k, v in versions().items()))
        parser.exit(0)


class LogFormatter(logging.Formatter):
    """``econas: warning: <message>``, as the CLI's own messages read; the logger's module
    name (``nas.carbon._static``) only with ``-vv``, where it helps to debug."""

    def __init__(self, *, names: bool = False) -> None:
        super().__init__()
        self.names = names

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        where = f"{record.name}: " if self.names else ""
        return f"econas: {record.levelname.lower()}: {where}{text}"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="econas",
        description="Energy-aware neural architecture search: accuracy versus kgCO2e.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument(
        "--version", action=_VersionAction, help="print the econas, torch and optuna versions"
    )
    # dest "verb": a verb may have an argument named "command" (`econas measure -- COMMAND`)
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"nas.commands.{name}")
        except ModuleNotFoundError as exc:  # a verb not built yet
            if exc.name == f"nas.commands.{name}":
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    remember_environment()
    remember_strings(sys.argv[1:] if argv is None else argv)
    stdout, stderr = sys.stdout, sys.stderr
    if not isinstance(stdout, _CleanStream):
        sys.stdout = _CleanStream(stdout)  # type: ignore[assignment]
    if not isinstance(stderr, _CleanStream):  # progress lines keep their carriage returns
        sys.stderr = _CleanStream(stderr, controls=True)  # type: ignore[assignment]
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = stdout, stderr


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # a usage error exits 2 here (its line is scrubbed too)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    root = logging.getLogger()
    if not root.handlers:  # as logging.basicConfig: leave a host's own logging alone
        handler = logging.StreamHandler()
        handler.setFormatter(LogFormatter(names=args.verbose >= 2))
        root.addHandler(handler)
        root.setLevel(level)
    for handler in root.handlers:  # a log file gets no credential either
        if not any(isinstance(f, _ScrubFilter) for f in handler.filters):
            handler.addFilter(_ScrubFilter())
        if not any(isinstance(f, _InterruptNoiseFilter) for f in handler.filters):
            handler.addFilter(_InterruptNoiseFilter())
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    from nas.signals import describe, interrupt_in, sigterm_as_interrupt
    from nas.storage_faults import fault_of

    try:
        with sigterm_as_interrupt() if args.verb in SIGTERM_VERBS else nullcontext():
            return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:  # Ctrl-C (130) or SIGTERM (143)
        line, code = describe(exc)
        print(line, file=sys.stderr)
        return code
    except BrokenPipeError:  # the reader left (`econas studies | head`): stop quietly
        _silence_stdout()
        return 141  # 128 + SIGPIPE, as a shell reports a writer the pipe stopped
    except Exception as exc:  # noqa: BLE001 - each kind below gets its one line
        interrupt = interrupt_in(exc)  # an interrupt a library masked (optuna's tell)
        if interrupt is not None:
            line, code = describe(interrupt)
            print(line, file=sys.stderr)
            return code
        error = exc if isinstance(exc, EconasError) else fault_of(exc)  # storage, full disk
        if isinstance(error, BadInputError):
            print(f"econas: error: {one_line(scrub(error))}", file=sys.stderr)
            return 2
        if isinstance(error, EconasError):
            print(f"econas: failed: {one_line(scrub(error))}", file=sys.stderr)
            return 1
        traceback.print_exc()  # unexpected: keep the traceback, exit 1
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush raises nothing either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno())
    except (OSError, AttributeError, ValueError):  # no real stdout: nothing to flush
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
