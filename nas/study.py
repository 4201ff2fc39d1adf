"""Open storages and studies, pick samplers, and run a search.

A study is fully described by its storage: the config it was created with is saved in the
study's user attrs, and a second config under the same study name is refused rather than mixed.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from nas.config import Config, all_objectives
from nas.errors import BadInputError, ConfigError
from nas.record import Study

log = logging.getLogger(__name__)

CONFIG_ATTR = Study.config
FINGERPRINT_ATTR = Study.fingerprint
ARTIFACT_DIR_ATTR = Study.artifact_dir
HEARTBEAT_INTERVAL_S = 30
GRACE_PERIOD_S = 90
HEARTBEAT_ENV = "ECONAS_HEARTBEAT_S"  # override the interval (grace = 3x); e.g. 1 in tests


def heartbeat_settings() -> tuple[int, int]:
    """(heartbeat interval, grace period) in seconds; ``$ECONAS_HEARTBEAT_S`` overrides."""
    raw = os.environ.get(HEARTBEAT_ENV, "").strip()
    if not raw:
        return HEARTBEAT_INTERVAL_S, GRACE_PERIOD_S
    try:
        interval = int(raw)
    except ValueError:
        raise BadInputError(f"{HEARTBEAT_ENV}={raw!r} must be a whole number of seconds") from None
    if interval < 1:
        raise BadInputError(f"{HEARTBEAT_ENV} must be >= 1")
    return interval, 3 * interval


def redact_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``."""
    return re.sub(r"(//[^:/@]+:)[^@]*@", r"\1***@", url)


def strip_password(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user@host/db``."""
    return re.sub(r"(//[^:/@]+):[^@]*@", r"\1@", url)


def open_storage(url: str, *, heartbeat: bool = True) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``; unreadable/unreachable URLs raise BadInputError.

    ``sqlite:///path``, ``postgresql://...``, ``mysql://...`` use RDBStorage (with heartbeats,
    so a killed worker's trial is failed and retried instead of staying RUNNING);
    ``journal:PATH`` uses a journal file (one host, many processes).
    """
    safe = redact_url(url)
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if "://" not in url:
        raise BadInputError(f"storage URL {safe!r} is not a URL (try sqlite:///runs/x/study.db)")
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if heartbeat:
                from optuna.storages import RetryHeartbeatStaleTrialCallback

                interval_s, grace_s = heartbeat_settings()
                kwargs = dict(
                    heartbeat_interval=interval_s,
                    grace_period=grace_s,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2),
                )
            return _create_rdb_storage(url, kwargs)
    except ImportError as exc:
        cause = getattr(exc.__cause__, "name", None) or exc
        raise BadInputError(f"storage {safe}: database driver not installed ({cause})") from None
    except Exception as exc:  # sqlalchemy errors: unreachable server, bad scheme, ...
        reason = redact_url(str(exc).splitlines()[0])[:200]
        raise BadInputError(f"cannot open storage {safe}: {reason}") from None


_SCHEMA_RACE = ("UniqueViolation", "IntegrityError", "already exists", "duplicate key")


def _create_rdb_storage(url: str, kwargs: dict[str, Any]) -> optuna.storages.RDBStorage:
    """Workers starting together on an empty database race to create its tables: retry."""
    for attempt in range(6):
        try:
            return optuna.storages.RDBStorage(url, **kwargs)
        except Exception as exc:
            if attempt == 5 or not any(s in str(exc) for s in _SCHEMA_RACE):
                raise
            log.debug("storage schema created concurrently; retrying (%d)", attempt + 1)
            time.sleep(0.2 * (attempt + 1) + random.random() * 0.3)  # noqa: S311 - jitter
    raise AssertionError("unreachable")  # pragma: no cover


def make_sampler(config: Config, *, offset: int = 0) -> optuna.samplers.BaseSampler:
    """The configured sampler, seeded with ``seed + offset`` (offset = finished trials)."""
    seed = config.study.seed + offset
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if config.study.sampler == "nsga2":
            return optuna.samplers.NSGAIISampler(
                seed=seed, population_size=max(4, min(20, config.study.trials // 2))
            )
        if config.study.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        return optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=config.study.startup_trials,
            multivariate=True,
            group=True,
            constant_liar=True,
        )


def open_study(
    config: Config, *, storage: optuna.storages.BaseStorage | None = None
) -> optuna.Study:
    """Create the study or resume it; refuse a same-named study made from another config."""
    storage = storage or open_storage(config.storage_url)
    objectives = list(config.study.objectives)
    if "latency_ms" in objectives and not config.eval.measure_inference:
        raise ConfigError("objective latency_ms needs eval.measure_inference = true")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(
            storage=storage,
            study_name=config.study.name,
            directions=[all_objectives()[o] for o in objectives],
            load_if_exists=True,
        )
    if [d.name.lower() for d in study.directions] != [all_objectives()[o] for o in objectives]:
        raise ConfigError(
            f"study {config.study.name!r} exists with other objectives; choose another study.name"
        )
    fingerprint = config.fingerprint()
    existing = study.user_attrs.get(FINGERPRINT_ATTR)
    if existing is None:
        try:
            _init_study_attrs(study, config, objectives, fingerprint)
        except Exception:  # noqa: BLE001 - workers starting together race on the same rows
            log.debug("study attrs set concurrently; re-reading them", exc_info=True)
            existing = study.user_attrs.get(FINGERPRINT_ATTR)
            if existing is None:
                raise
    if existing is not None and existing != fingerprint:
        raise ConfigError(
            f"study {config.study.name!r} in this storage was created from a different config "
            "(search space, data, training or objectives differ); use another study.name"
        )
    study.sampler = make_sampler(config, offset=len(study.trials))
    return study


def _init_study_attrs(
    study: optuna.Study, config: Config, objectives: list[str], fingerprint: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(objectives)
    study.set_user_attr(FINGERPRINT_ATTR, fingerprint)
    stored = config.to_dict()
    if stored["study"].get("storage"):  # never store a credential: the dashboard serves attrs
        stored["study"]["storage"] = strip_password(stored["study"]["storage"])
    if stored.get("carbon", {}).get("base_url"):
        stored["carbon"]["base_url"] = strip_password(stored["carbon"]["base_url"])
    study.set_user_attr(CONFIG_ATTR, json.dumps(stored, sort_keys=True))
    study.set_user_attr(ARTIFACT_DIR_ATTR, str(config.artifact_dir.resolve()))


def load_existing_study(storage_url: str, name: str | None) -> optuna.Study:
    """Load a study for reading (pareto, report, export); unknown names are bad input."""
    storage = open_storage(storage_url, heartbeat=False)
    names = [s.study_name for s in optuna.study.get_all_study_summaries(storage)]
    if name is None:
        if len(names) != 1:
            raise BadInputError(
                f"storage holds {len(names)} studies; pass --study (one of {names})"
            )
        name = names[0]
    if name not in names:
        raise BadInputError(f"no study named {name!r} in {redact_url(storage_url)}; found {names}")
    return optuna.load_study(study_name=name, storage=storage)


def study_config(study: optuna.Study) -> Config:
    """The config a study was created with (from its user attrs)."""
    from nas.config import config_from_dict

    raw = study.user_attrs.get(CONFIG_ATTR)
    if raw is None:
        raise BadInputError(f"study {study.study_name!r} was not created by econas")
    try:
        data = json.loads(raw)
        search = data.get("search", {})  # stored as Config.to_dict(): options in one table
        data["search"] = {**search.pop("options", {}), **search}
        if not data["study"].get("storage"):
            data["study"].pop("storage", None)
        for section in data.values():  # JSON null stands for an unset (None) key
            for key in [k for k, v in section.items() if v is None]:
                del section[key]
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise BadInputError(
            f"study {study.study_name!r}: stored config unreadable ({exc})"
        ) from None
    return config_from_dict(data)


@dataclass
class StudyCounts:
    complete: int
    pruned: int
    failed: int
    running: int

    @classmethod
    def of(cls, study: optuna.Study) -> StudyCounts:
        states = [t.state for t in study.get_trials(deepcopy=False)]
        S = optuna.trial.TrialState
        return cls(
            complete=states.count(S.COMPLETE),
            pruned=states.count(S.PRUNED),
            failed=states.count(S.FAIL),
            running=states.count(S.RUNNING),
        )

    @property
    def finished(self) -> int:
        return self.complete + self.pruned
