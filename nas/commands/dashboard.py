"""`econas dashboard`: optuna-dashboard on a study's storage, bound to 127.0.0.1 by default.

optuna-dashboard's HTTP API can create, rename and delete studies and tell trials; it has no
read-only switch of its own. econas serves it read-only unless ``--writable`` is given: every
request other than GET/HEAD/OPTIONS is answered 403 before it reaches the dashboard.

What econas can make read well in the stock dashboard, it does: objectives carry their names
(``study.set_metric_names``), trials' attrs are flat and named with their units, the study's
stored config is shown as a one-line summary (the whole JSON stays in the storage), and the
warnings optuna raises on every page view are filtered. The dashboard's own plots (axes in
raw kgCO2e, no "estimated" label, importances over few trials) are not econas's to change:
``econas report`` draws the study's figures.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import sys
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from nas.text import plural

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="launch optuna-dashboard for a study's storage")
    p.add_argument("config", nargs="?", help="study config (TOML); or give --storage")
    p.add_argument("--storage", help="Optuna storage URL")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
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


# optuna's PED-ANOVA importance warns once per parameter and page view when a regime has
# fewer than 2 trials (every conditional parameter of a small study): dozens of lines a view.
NOISY_WARNINGS = (r"Some regimes for parameter .* have less than",)
LONG_ATTR_CHARS = 200  # a study attr longer than this is summarised on the page
_STUDY_API = re.compile(r"/api/studies(/\d+)?/?")


def quiet_warnings() -> None:
    """Filter the warnings optuna raises on every dashboard page view (see NOISY_WARNINGS)."""
    for message in NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=UserWarning)


def config_summary(raw: str) -> str:
    """One line naming what the stored config (``econas_config``) sets; the whole JSON stays
    in the storage (``optuna.load_study(...).user_attrs["econas_config"]``)."""
    try:
        cfg = json.loads(raw)
    except ValueError:
        return raw[:LONG_ATTR_CHARS] + "..."
    if not isinstance(cfg, dict):
        return raw[:LONG_ATTR_CHARS] + "..."

    def get(section: str, key: str) -> Any:
        table = cfg.get(section)
        return table.get(key) if isinstance(table, dict) else None

    carbon = next(
        (
            f"{k} {get('carbon', k)}"
            for k in ("region", "source", "intensity_g_per_kwh")
            if get("carbon", k) is not None
        ),
        "carbon: default",
    )
    objectives = "+".join(map(str, get("study", "objectives") or []))
    spaces = "+".join(map(str, get("search", "spaces") or []))
    parts = [
        f"sampler {get('study', 'sampler')}",
        f"objectives {objectives}",
        f"spaces {spaces}",
        f"data {get('data', 'dataset')} (train {get('data', 'train_size')}, val "
        f"{get('data', 'val_size')}, test {get('data', 'test_size')})",
        plural(get("train", "epochs"), "epoch")
        if isinstance(get("train", "epochs"), int)
        else "epochs ?",
        f"meter {get('hardware', 'meter')}",
        carbon,
    ]
    enabled = [s for s in ("compression", "federated") if get(s, "enabled")]
    if get("schedule", "trace"):
        enabled.append(f"schedule {get('schedule', 'trace')}")
    if get("lifecycle", "requests_per_day") is not None:
        enabled.append("lifecycle")
    if enabled:
        parts.append("with " + ", ".join(enabled))
    return (
        "; ".join(parts)
        + f" (summary of {len(raw):,} characters of JSON: the whole config is in the storage, "
        "optuna.load_study(...).user_attrs['econas_config'])"
    )


def _readable_attrs(attrs: Any) -> Any:
    from nas.record import StudyAttrs

    if not isinstance(attrs, list):
        return attrs
    out = []
    for item in attrs:
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            out.append(item)
            continue
        key, value = str(item.get("key")), item["value"]
        if key == StudyAttrs.config:
            value = config_summary(value)
        elif len(value) > LONG_ATTR_CHARS:
            value = (
                f"{value[:LONG_ATTR_CHARS]}... ({len(value):,} characters; the whole value is in "
                f"the storage: optuna.load_study(...).user_attrs[{key!r}])"
            )
        out.append({**item, "value": value})
    return out


def readable_study_attrs(payload: Any) -> Any:
    """A study API response with long study attrs (the stored config above all) summarised."""
    if not isinstance(payload, dict):
        return payload
    if "user_attrs" in payload:
        payload = {**payload, "user_attrs": _readable_attrs(payload["user_attrs"])}
    if isinstance(payload.get("study_summaries"), list):
        payload = {
            **payload,
            "study_summaries": [
                {**s, "user_attrs": _readable_attrs(s.get("user_attrs"))}
                if isinstance(s, dict)
                else s
                for s in payload["study_summaries"]
            ],
        }
    return payload


def readable(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """A WSGI app whose study API answers (``/api/studies``, ``/api/studies/<id>``) carry
    :func:`readable_study_attrs` instead of the raw, multi-kilobyte config attr."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if method != "GET" or not _STUDY_API.fullmatch(environ.get("PATH_INFO", "")):
            return app(environ, start_response)
        captured: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured[:] = [status, headers]
            return lambda data: None  # bottle never writes through this

        chunks = app(environ, capture)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        status, headers = captured
        kinds = {k.lower(): v for k, v in headers}
        if (
            status.startswith("200")
            and "json" in kinds.get("content-type", "")
            and ("content-encoding" not in kinds)
        ):
            try:
                body = json.dumps(readable_study_attrs(json.loads(body))).encode()
            except ValueError:
                pass  # not JSON after all: passed on as it came
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]

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
    quiet_warnings()
    app = readable(wsgi(storage, artifact_store=store))
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
