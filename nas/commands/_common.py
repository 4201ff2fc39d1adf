"""Argument groups and loaders shared by the verbs."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from nas.errors import BadInputError, ConfigError
from nas.sections.schedule import STUDY_POLICIES


def add_run_args(p: argparse.ArgumentParser) -> None:
    """Flags of `search` and `worker` that override the config."""
    p.add_argument(
        "config",
        help="study config (TOML file), or a bundled study by name (econas studies), e.g. quickstart",
    )
    p.add_argument("--trials", type=int, help="number of finished trials to reach (worker: to run)")
    p.add_argument(
        "--storage", help="Optuna storage URL (sqlite:///..., postgresql://..., journal:PATH)"
    )
    p.add_argument("--study-name", help="study name (overrides study.name)")
    p.add_argument(
        "--seed",
        type=int,
        metavar="S",
        help="study seed (overrides study.seed): sampler and trials",
    )
    p.add_argument("--dataset", help="fashion-mnist | cifar10 | npz:PATH")
    p.add_argument(
        "--benchmark",
        metavar="table:DIR",
        help="search a tabular benchmark instead of training: table:DIR (a table folder) or "
        "table:NAME (bundled, e.g. table:ecnas-4v); overrides [search] benchmark",
    )
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--meter", help="auto | nvml | rapl | estimate")
    p.add_argument("--json", action="store_true", help="print the Pareto front as JSON on stdout")
    p.add_argument(
        "--schedule",
        choices=STUDY_POLICIES,
        metavar="POLICY",
        help="run trials in green windows of [schedule] trace: run-now | flexible-start | "
        "pause-resume",
    )
    p.add_argument(
        "--max-kgco2e",
        type=float,
        metavar="KG",
        help="carbon budget: stop the study once the search has emitted this much",
    )
    p.add_argument(
        "--mlflow",
        metavar="URI",
        help="log each finished trial as an MLflow run (tracking URI, e.g. sqlite:///mlflow.db; "
        "needs pip install 'econas[mlflow]'); overrides [tracking] mlflow",
    )
    add_carbon_source_args(p)
    p.add_argument(
        "--regions",
        metavar="A,B,...",
        help="spatial: before each trial run in the region (of --carbon-source's provider, or "
        "full live:... strings) whose forecast is greenest; recorded and charged per trial",
    )


def add_carbon_source_args(p: argparse.ArgumentParser) -> None:
    """``--carbon-source`` and ``--carbon-base-url`` (search, worker, measure, train)."""
    p.add_argument(
        "--carbon-source",
        metavar="SOURCE",
        help="live:uk-carbon-intensity[:REGION] | live:electricitymaps:ZONE | "
        "live:watttime:REGION | trace:NAME (overrides [carbon])",
    )
    p.add_argument(
        "--carbon-base-url", metavar="URL", help="the live source's API at this URL (proxy, test)"
    )


def apply_carbon_flags(cfg: Any, args: argparse.Namespace) -> Any:
    """``cfg`` with ``--carbon-source``, ``--carbon-base-url`` and ``--regions`` applied."""
    carbon: dict[str, Any] = {}
    if getattr(args, "carbon_source", None):
        carbon.update(source=args.carbon_source, region=None, intensity_g_per_kwh=None)
    if getattr(args, "carbon_base_url", None):
        carbon["base_url"] = args.carbon_base_url
    if getattr(args, "regions", None):
        regions = tuple(r.strip() for r in args.regions.split(",") if r.strip())
        carbon["regions"] = regions
    return cfg.replace("carbon", **carbon) if carbon else cfg


def config_from_args(args: argparse.Namespace):  # noqa: ANN201 - nas.config.Config
    from nas.config import load_config

    return apply_run_flags(load_config(args.config), args)


def apply_run_flags(cfg: Any, args: argparse.Namespace) -> Any:
    """``cfg`` (a :class:`nas.config.Config`) with the flags of :func:`add_run_args` applied."""
    study: dict[str, Any] = {}
    if getattr(args, "trials", None) is not None:
        if args.trials < 1:
            raise BadInputError("--trials must be >= 1")
        study["trials"] = args.trials
    if getattr(args, "storage", None):
        study["storage"] = args.storage
    if getattr(args, "study_name", None):
        study["name"] = args.study_name
    if getattr(args, "seed", None) is not None:
        study["seed"] = args.seed
    if study:
        cfg = cfg.replace("study", **study)
    if getattr(args, "dataset", None):
        cfg = cfg.replace("data", dataset=args.dataset)
    if getattr(args, "benchmark", None):
        cfg = cfg.replace("search", benchmark=args.benchmark)
    hw: dict[str, Any] = {}
    if getattr(args, "device", None):
        hw["device"] = args.device
    if getattr(args, "meter", None):
        hw["meter"] = args.meter
    if hw:
        cfg = cfg.replace("hardware", **hw)
    if getattr(args, "mlflow", None) is not None:
        cfg = cfg.replace("tracking", mlflow=args.mlflow)
    schedule: dict[str, Any] = {}
    if getattr(args, "schedule", None) is not None:
        if cfg.schedule.trace is None:
            raise ConfigError("--schedule needs a trace: set [schedule] trace = 'gb_2020' or a CSV")
        schedule["policy"] = args.schedule
    if getattr(args, "max_kgco2e", None) is not None:
        schedule["max_kgco2e"] = args.max_kgco2e
    cfg = apply_carbon_flags(cfg, args)
    return cfg.replace("schedule", **schedule) if schedule else cfg


def add_study_source_args(p: argparse.ArgumentParser) -> None:
    """CONFIG | --storage URL --study NAME, for verbs that read a study."""
    p.add_argument(
        "config",
        nargs="?",
        help="study config (TOML file or bundled name); or give --storage/--study",
    )
    p.add_argument("--storage", help="Optuna storage URL")
    p.add_argument("--study", help="study name in the storage")


def study_from_args(args: argparse.Namespace):  # noqa: ANN201 - optuna.Study
    from nas.study import load_existing_study

    if args.config:
        cfg = config_from_args(argparse.Namespace(config=args.config, storage=args.storage))
        return load_existing_study(cfg.storage_url, args.study or cfg.study.name)
    if not args.storage:
        raise BadInputError("give a study CONFIG or --storage URL (with --study NAME)")
    return load_existing_study(args.storage, args.study)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def print_json(obj: Any) -> None:
    def clean(o: Any) -> Any:
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, list | tuple):
            return [clean(v) for v in o]
        return _jsonable(o)

    json.dump(clean(obj), sys.stdout, indent=2)
    sys.stdout.write("\n")
