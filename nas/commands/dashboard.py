"""`econas dashboard`: optuna-dashboard on a study's storage, bound to 127.0.0.1 by default.

optuna-dashboard's HTTP API can create, rename and delete studies and tell trials; it has no
read-only switch of its own. econas serves it read-only unless ``--writable`` is given: every
request other than GET/HEAD/OPTIONS is answered 403 before it reaches the dashboard.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Callable, Iterable
from typing import Any

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="launch optuna-dashboard for a study's storage")
    p.add_argument("config", nargs="?", help="study config (TOML); or give --storage")
    p.add_argument("--storage", help="Optuna storage URL")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--artifacts", help="artifact directory, to show trials' weights")
    p.add_argument(
        "--writable",
        action="store_true",
        help="allow the dashboard's write API (create/delete studies, notes, tell trials); "
        "read-only by default",
    )
    p.set_defaults(func=run)


def is_loopback(host: str) -> bool:
    """True when ``host`` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_only(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """A WSGI app that answers every non-read request with 403 instead of passing it on."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET").upper() not in READ_METHODS:
            body = b'{"reason": "econas dashboard is read-only (start it with --writable)"}'
            start_response(
                "403 Forbidden",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return app(environ, start_response)

    return wrapped


def run(args: argparse.Namespace) -> int:
    import optuna
    from optuna_dashboard import wsgi

    from nas.commands._common import config_from_args
    from nas.errors import BadInputError
    from nas.study import open_storage, redact_url

    if args.config:
        cfg = config_from_args(argparse.Namespace(config=args.config, storage=args.storage))
        url, artifacts = cfg.storage_url, args.artifacts or str(cfg.artifact_dir)
    elif args.storage:
        url, artifacts = args.storage, args.artifacts
    else:
        raise BadInputError("give a study CONFIG or --storage URL")
    if not 0 < args.port < 65536:
        raise BadInputError(f"--port must be in 1..65535, got {args.port}")
    storage = open_storage(url, heartbeat=False, create=False)
    store = optuna.artifacts.FileSystemArtifactStore(artifacts) if artifacts else None
    if not is_loopback(args.host):
        print(
            f"econas: warning: binding to {args.host} exposes the dashboard (study attrs, "
            "trial results) to every host that can reach this one; it has no authentication",
            file=sys.stderr,
        )
    app = wsgi(storage, artifact_store=store)
    mode = "writable" if args.writable else "read-only"
    if not args.writable:
        app = read_only(app)
    server = _bind(app, args.host, args.port)  # the URL is printed once it is really served
    print(
        f"econas: optuna-dashboard ({mode}) for {redact_url(url)} on "
        f"http://{args.host}:{args.port}/",
        file=sys.stderr,
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def _bind(app: Callable[..., Iterable[bytes]], host: str, port: int) -> Any:
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass

    try:
        return make_server(host, port, app, handler_class=_Quiet)
    except OSError as exc:
        from nas.errors import BadInputError

        raise BadInputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
