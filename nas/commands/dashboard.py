"""`econas dashboard`: optuna-dashboard on a study's storage, bound to 127.0.0.1 by default."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="launch optuna-dashboard for a study's storage")
    p.add_argument("config", nargs="?", help="study config (TOML); or give --storage")
    p.add_argument("--storage", help="Optuna storage URL")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--artifacts", help="artifact directory, to show trials' weights")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import optuna
    from optuna_dashboard import run_server

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
    storage = open_storage(url, heartbeat=False)
    store = optuna.artifacts.FileSystemArtifactStore(artifacts) if artifacts else None
    print(
        f"econas: optuna-dashboard for {redact_url(url)} on http://{args.host}:{args.port}/",
        file=sys.stderr,
    )
    run_server(storage, host=args.host, port=args.port, artifact_store=store)
    return 0
