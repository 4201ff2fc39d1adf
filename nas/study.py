"""Open storages and studies, pick samplers, and run a search.

A study is fully described by its storage: the config it was created with is saved in the
study's user attrs, and a second config under the same study name is refused rather than mixed.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from nas.config import Config, all_objectives
from nas.credentials import is_secret_key, remember, scrub, secrets_in_url, userinfo_end
from nas.errors import BadInputError, ConfigError
from nas.record import StudyAttrs
from nas.storage_faults import is_storage_error, note_storage, storage_fault

log = logging.getLogger(__name__)

CONFIG_ATTR = StudyAttrs.config
FINGERPRINT_ATTR = StudyAttrs.fingerprint
ARTIFACT_DIR_ATTR = StudyAttrs.artifact_dir
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


def _is_secret_key(key: str) -> bool:
    return is_secret_key(key)


def _parse_db_url(url: str):  # noqa: ANN202 - sqlalchemy.engine.URL | None
    """SQLAlchemy's URL for ``url``, or None when it isn't a database URL.

    A password holding a raw ``@`` (``u:p@ss@host/db``) is read up to the *last* ``@`` of the
    authority, the way libpq reads it, and percent-encoded before parsing, so no part of it
    can end up in the host."""
    from urllib.parse import quote

    from sqlalchemy.engine import make_url

    scheme, sep, rest = url.partition("://")
    if not sep or not scheme or url.startswith("journal:"):
        return None
    at = userinfo_end(rest)
    if at is not None and any(c in rest[:at] for c in "@/?#"):  # a raw, unencoded userinfo
        user, colon, password = rest[:at].partition(":")
        encoded = quote(password, safe="") if colon else ""
        rest = f"{quote(user, safe='')}{colon}{encoded}{rest[at:]}"
    try:
        return make_url(f"{scheme}://{rest}")
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy understands
        return None


def connect_url(url: str) -> str:
    """The URL econas connects with: ``url`` read exactly as :func:`redact_url` masks it.

    SQLAlchemy's own parser ends a password at its *first* ``@`` (``u:s3c@r3tpw@host`` would
    connect to host ``r3tpw@host`` and the driver would print the fragment); a raw ``@``,
    ``/``, ``?`` or ``#`` in the userinfo is percent-encoded first, so the driver receives the
    whole password and the host that the masked URL shows."""
    scheme, sep, rest = url.partition("://")
    at = userinfo_end(rest) if sep else None
    if at is None or not any(c in rest[:at] for c in "@/?#"):
        return url
    parsed = _parse_db_url(url)
    return url if parsed is None else parsed.render_as_string(hide_password=False)


def _rebuild(url: str, *, mask: bool) -> str:
    parsed = _parse_db_url(url)
    if parsed is None:
        return scrub(url) if mask else url
    if parsed.password is None and not any(_is_secret_key(k) for k in parsed.query):
        return url  # nothing to hide: shown as given (SQLAlchemy would re-encode it)
    if mask:
        query = {k: ("***" if _is_secret_key(k) else v) for k, v in parsed.query.items()}
        text = parsed._replace(query=query).render_as_string(hide_password=True)
        return text.replace("%2A%2A%2A", "***")
    query = {k: v for k, v in parsed.query.items() if not _is_secret_key(k)}
    return parsed._replace(query=query, password=None).render_as_string(hide_password=False)


def redact_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``; secret query
    parameters (``?password=...``, ``sslpassword``, tokens) become ``***`` too. For display."""
    return _rebuild(url, mask=True)


def strip_password(url: str) -> str:
    """``postgresql://user:secret@host/db?password=x`` -> ``postgresql://user@host/db``: the
    URL with every credential removed, for what is stored (the dashboard serves study attrs)."""
    return _rebuild(url, mask=False)


def redact_text(text: str, url: str) -> str:
    """``text`` (e.g. a driver's error message) with every credential of ``url`` masked, and
    anything else credential-shaped (:func:`nas.credentials.scrub`)."""
    for secret in secrets_in_url(url):
        text = text.replace(secret, "***")
    return scrub(text)


def open_storage(
    url: str, *, heartbeat: bool = True, create: bool = True
) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``; unreadable/unreachable URLs raise BadInputError.

    ``sqlite:///path``, ``postgresql://...``, ``mysql://...`` use RDBStorage (with heartbeats,
    so a killed worker's trial is failed and retried instead of staying RUNNING);
    ``journal:PATH`` uses a journal file (one host, many processes).

    With ``create=False`` (the verbs that only read) a SQLite or journal file must already
    exist: nothing is created, so a typo is an error, not a new empty database.
    """
    remember(url)
    safe = redact_url(url)
    note_storage(safe)
    if url.startswith("journal:"):
        return _open_journal(Path(url.removeprefix("journal:")), create=create)
    if "://" not in url:
        raise BadInputError(f"storage URL {safe!r} is not a URL (try sqlite:///runs/x/study.db)")
    if _in_memory(url):
        raise BadInputError(
            f"storage {safe} is an in-memory database: the study and its trials would vanish "
            "when this process exits; use a file, e.g. sqlite:///runs/NAME/study.db"
        )
    if url.startswith("sqlite:///"):
        _check_sqlite_path(Path(url.removeprefix("sqlite:///").partition("?")[0]), safe, create)
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
            if url.startswith("sqlite:"):  # processes sharing one file wait for its lock up
                # to 30 s (sqlite3's default is 5 s: a loaded machine's worker gave up)
                kwargs["engine_kwargs"] = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}}
            return _create_rdb_storage(connect_url(url), kwargs)
    except ImportError as exc:
        cause = getattr(exc.__cause__, "name", None) or exc
        raise BadInputError(f"storage {safe}: database driver not installed ({cause})") from None
    except Exception as exc:  # sqlalchemy errors: unreachable server, bad scheme, ...
        reason = redact_text(str(exc).splitlines()[0], url)[:200]
        raise BadInputError(f"cannot open storage {safe}: {reason}") from None


def _in_memory(url: str) -> bool:
    """``sqlite://``, ``sqlite:///:memory:``, ``sqlite:///file:x?mode=memory&uri=true``."""
    if not url.startswith("sqlite:"):
        return False
    rest = url.removeprefix("sqlite:").lstrip("/")
    return rest.partition("?")[0] in ("", ":memory:") or "mode=memory" in url


def _check_sqlite_path(path: Path, safe: str, create: bool) -> None:
    """A SQLite file that exists must be a regular, non-empty file when only read; its
    folder is made when the storage may be created."""
    from nas.files import regular_file

    try:
        exists = path.exists()
    except OSError:
        exists = True  # a name too long: regular_file says so
    if exists or not create:
        if not exists:
            raise BadInputError(f"storage {safe}: no such database file {str(path)!r}")
        regular_file(path, f"storage {safe}: database file")
        if not create and path.stat().st_size == 0:  # Optuna would write its schema into it
            raise BadInputError(f"storage {safe}: {str(path)!r} is an empty file, not a database")
    if create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInputError(
                f"storage {safe}: cannot create folder {str(path.parent)!r} ({exc.strerror})"
            ) from None


def _open_journal(path: Path, *, create: bool) -> optuna.storages.BaseStorage:
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    from nas.files import regular_file

    if not create and not path.is_file():
        raise BadInputError(f"storage journal:{path}: no such journal file")
    if path.exists():  # never a FIFO or a device: it would block or never end
        regular_file(path, f"storage journal:{path}:")
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        storage = JournalStorage(JournalFileBackend(str(path)))
        storage.get_all_studies()  # replays the file: a file that isn't a journal fails here
    except Exception as exc:  # noqa: BLE001 - JSON errors, unreadable file...
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise BadInputError(
            f"storage journal:{path} is not an Optuna journal file ({reason})"
        ) from None
    return storage


_SCHEMA_RACE = ("UniqueViolation", "IntegrityError", "already exists", "duplicate key")


SQLITE_LOCK_TIMEOUT_S = 30.0


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


def _seed_rngs(sampler: object, seed: int, seen: set[int] | None = None) -> None:
    """Seed every random state of ``sampler`` (and of the samplers it holds) with ``seed``."""
    seen = set() if seen is None else seen
    if id(sampler) in seen:
        return
    seen.add(id(sampler))
    for value in vars(sampler).values():
        if isinstance(getattr(value, "rng", None), np.random.RandomState):  # LazyRandomState
            value.rng.seed(seed)
        elif isinstance(value, optuna.samplers.BaseSampler):
            _seed_rngs(value, seed, seen)


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """``inner``, with its random states re-seeded before each trial from ``seed`` and the
    trial's number.

    The storage hands out trial numbers atomically, so processes sharing a study never draw
    from the same stream (two `search` processes started together used to sample the same
    architectures), while one process alone stays reproducible: trial *n* is always drawn
    with seed ``seed + n`` from the same history."""

    def __init__(self, inner: optuna.samplers.BaseSampler, seed: int) -> None:
        self.inner = inner
        self.seed = seed

    def __str__(self) -> str:
        return f"{type(self.inner).__name__}(seed={self.seed}, re-seeded per trial)"

    def infer_relative_search_space(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial
    ) -> dict[str, optuna.distributions.BaseDistribution]:
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        search_space: dict[str, optuna.distributions.BaseDistribution],
    ) -> dict[str, Any]:
        return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        param_name: str,
        param_distribution: optuna.distributions.BaseDistribution,
    ) -> Any:
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        _seed_rngs(self.inner, (self.seed + trial.number) % 2**32)
        self.inner.before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        state: optuna.trial.TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()


def make_sampler(config: Config) -> optuna.samplers.BaseSampler:
    """The configured sampler, re-seeded before each trial with ``seed + trial.number``."""
    seed = config.study.seed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if config.study.sampler == "nsga2":
            inner: optuna.samplers.BaseSampler = optuna.samplers.NSGAIISampler(
                seed=seed, population_size=max(4, min(20, config.study.trials // 2))
            )
        elif config.study.sampler == "random":
            inner = optuna.samplers.RandomSampler(seed=seed)
        elif config.study.sampler == "eco":  # bound to the spaces by nas.proposals
            from nas.search_strategy import ArchSampler

            inner = ArchSampler(seed=seed, n_startup_trials=config.study.startup_trials)
        else:
            inner = optuna.samplers.TPESampler(
                seed=seed,
                n_startup_trials=config.study.startup_trials,
                multivariate=True,
                group=True,
                constant_liar=True,
            )
    return TrialSeededSampler(inner, seed)


def open_study(
    config: Config, *, storage: optuna.storages.BaseStorage | None = None
) -> optuna.Study:
    """Create the study or resume it; refuse a same-named study made from another config.

    A storage that fails meanwhile (corrupt, read-only, a full disk) is one line
    (:func:`nas.storage_faults.storage_fault`), never a traceback."""
    storage = storage or open_storage(config.storage_url)
    try:
        return _open_study(config, storage)
    except BadInputError:
        raise
    except Exception as exc:
        if not is_storage_error(exc):
            raise
        raise storage_fault(exc, redact_url(config.storage_url)) from None


def _open_study(config: Config, storage: optuna.storages.BaseStorage) -> optuna.Study:
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
        # The stored config decides: a fingerprint rule that changed between versions (a key
        # added with its old behaviour as default, a section left out) must not lock a user
        # out of their own study; only keys that really differ are refused, and named.
        differs = _differences(study, config)
        if differs is not None:
            raise ConfigError(
                f"study {config.study.name!r} in this storage was created from a different "
                f"config ({differs}); use another study.name"
            )
    study.sampler = make_sampler(config)
    return study


def _differences(study: optuna.Study, config: Config) -> str | None:
    """Which keys differ from the config the study was created with (None: none do)."""
    from nas.config import config_differences

    try:
        stored = json.loads(study.user_attrs[CONFIG_ATTR])
        keys = config_differences(stored, config.to_dict())
    except (KeyError, ValueError, TypeError, AttributeError):
        return "its stored config is unreadable"
    if not keys:
        return None
    shown = ", ".join(keys[:6]) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")
    return f"differs in {shown}"


def _init_study_attrs(
    study: optuna.Study, config: Config, objectives: list[str], fingerprint: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(objectives)
    study.set_user_attr(FINGERPRINT_ATTR, fingerprint)
    stored = config.to_dict()
    stored.pop("tracking", None)  # where this run also reports to, not part of the study
    if stored["study"].get("storage"):  # never store a credential: the dashboard serves attrs
        stored["study"]["storage"] = strip_password(stored["study"]["storage"])
    if stored.get("carbon", {}).get("base_url"):
        stored["carbon"]["base_url"] = strip_password(stored["carbon"]["base_url"])
    study.set_user_attr(CONFIG_ATTR, json.dumps(stored, sort_keys=True))
    study.set_user_attr(ARTIFACT_DIR_ATTR, _artifact_dir_attr(config))


def storage_file(url: str) -> Path | None:
    """The file of a SQLite or journal storage URL; None for a server."""
    if url.startswith("journal:"):
        return Path(url.removeprefix("journal:"))
    if url.startswith("sqlite:///") and not _in_memory(url):
        return Path(url.removeprefix("sqlite:///").partition("?")[0])
    return None


def _artifact_dir_attr(config: Config) -> str:
    """The artifact folder as stored: relative to the storage file's folder when it lies
    inside it (``runs/NAME/artifacts`` beside ``runs/NAME/study.db``), so a copied run
    folder uses its own artifacts; absolute otherwise."""
    artifacts = config.artifact_dir.resolve()
    db = storage_file(config.storage_url)
    if db is not None:
        try:
            return str(artifacts.relative_to(db.resolve().parent))
        except ValueError:
            pass
    return str(artifacts)


def study_artifact_dir(study: optuna.Study) -> Path | None:
    """Where a study's artifacts are: its stored folder, a relative one resolved against
    the folder of the storage file that holds the study."""
    raw = study.user_attrs.get(ARTIFACT_DIR_ATTR)
    if not isinstance(raw, str) or not raw:
        return None
    path = Path(raw)
    if path.is_absolute():
        return path
    storage = study._storage
    backend = getattr(storage, "_backend", storage)
    file = getattr(backend, "_file_path", None)  # a journal
    if file is None and isinstance(getattr(backend, "url", None), str):
        file = storage_file(backend.url)
    return Path(file).resolve().parent / path if file else path


def load_existing_study(storage_url: str, name: str | None) -> optuna.Study:
    """Load a study for reading (pareto, report, export); unknown names are bad input."""
    storage = open_storage(storage_url, heartbeat=False, create=False)
    try:
        return _load_existing(storage, storage_url, name)
    except BadInputError:
        raise
    except Exception as exc:  # a corrupt page, an unreadable file: one line, not a traceback
        if not is_storage_error(exc):
            raise
        raise storage_fault(exc, redact_url(storage_url)) from None


def _load_existing(
    storage: optuna.storages.BaseStorage, storage_url: str, name: str | None
) -> optuna.Study:
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


def fail_stale(study: optuna.Study) -> None:
    """Fail the trials whose process stopped sending heartbeats (killed workers), so that
    they no longer count as running; a no-op on storages without heartbeats."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    except Exception:  # noqa: BLE001 - best effort; the heartbeat thread covers the rest
        log.debug("could not check for stale trials", exc_info=True)


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
