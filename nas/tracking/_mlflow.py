"""Trials as MLflow runs: params, objectives, each phase's energy and kgCO2e, provenance.

MLflow is optional (``pip install 'econas[mlflow]'``, which installs ``mlflow-skinny``): it is
imported only when tracking is asked for, and its absence is bad input with the install line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import optuna

from nas.carbon import kgco2e
from nas.credentials import remember
from nas.errors import BadInputError
from nas.record import Inference, Provenance, TrialAttrs, TrialRecord, fields, finite, phase_key
from nas.study import redact_text, redact_url, strip_password

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'econas[mlflow]'"
# Tags that identify a run as econas's, so a resumed study never logs a trial twice.
TAG_STUDY = "econas.study"
TAG_STORAGE = "econas.storage"
TAG_TRIAL = "econas.trial"
TAG_KIND = "econas.kind"  # "trial" or "study" (the run holding the report)
TAG_STATE = "econas.state"
_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
# Figures every trial run carries as metrics when the trial has them.
_METRICS = (
    TrialAttrs.accuracy,
    TrialAttrs.test_accuracy,
    TrialAttrs.energy_kwh,
    TrialAttrs.kgco2e,
    TrialAttrs.search_energy_kwh,
    TrialAttrs.search_kgco2e,
    TrialAttrs.intensity_g_per_kwh,
    TrialAttrs.params,
    TrialAttrs.flops,
    TrialAttrs.wall_s,
    TrialAttrs.metered_fraction,
    Inference.latency_ms,
    Inference.energy_kwh_per_1k,
)
_TAGS = (
    TrialAttrs.arch,
    TrialAttrs.family,
    TrialAttrs.device,
    TrialAttrs.energy_source,
    TrialAttrs.energy_kind,
    TrialAttrs.hardware,
    TrialAttrs.intensity_source,
    TrialAttrs.carbon_region,
    TrialAttrs.fail_reason,
    TrialAttrs.stop_reason,
)
_MAX_TAG = 5000  # MLflow's limit is 8000 characters; longer values go to an artifact
_MAX_PARAM = 6000


def _import_mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise BadInputError(f"MLflow tracking needs MLflow: {INSTALL_HINT}") from None
    return mlflow


def _unreachable(uri: str, exc: BaseException) -> BadInputError:
    # MLflow's text quotes the request URL, credentials and all: masked before it is cut
    reason = redact_text(" ".join(str(exc).split()), uri)[:200] or type(exc).__name__
    return BadInputError(f"cannot reach MLflow tracking URI {redact_url(uri)}: {reason}")


def _is_file_store(uri: str) -> bool:
    scheme = urlparse(uri).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class MlflowTracker:
    """Logs an econas study to MLflow: one run per trial, one ``study`` run for the report.

    ``check()`` raises :class:`~nas.errors.BadInputError` (one line) when the tracking URI
    cannot be reached; :meth:`log_trial` and :meth:`log_study` raise whatever MLflow raises,
    and :class:`~nas.tracking.TrackingCallback` turns that into a logged warning.
    """

    def __init__(self, *, uri: str, experiment: str, storage_url: str) -> None:
        mlflow = _import_mlflow()
        remember(uri)
        self.uri = uri
        self.experiment = experiment
        self.storage = strip_password(storage_url)
        if _is_file_store(uri):  # asked for by name: MLflow 3 wants an explicit opt-in
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        if urlparse(uri).scheme in ("http", "https"):  # a server gone mid-study: don't stall
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
        try:  # a file store is opened (and its folder made) right here
            self.client: MlflowClient = mlflow.MlflowClient(tracking_uri=uri)
        except Exception as exc:  # noqa: BLE001 - any MLflow error: the URI is unusable
            raise _unreachable(uri, exc) from None
        self._experiment_id: str | None = None

    # -- set-up --------------------------------------------------------------------------
    def check(self) -> None:
        """Reach the tracking server or store once, before any work (bad input if not)."""
        try:
            with _env(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="10"):
                self.client.search_experiments(max_results=1)
        except Exception as exc:  # noqa: BLE001 - any MLflow/network error: the URI is unusable
            raise _unreachable(self.uri, exc) from None

    def experiment_id(self) -> str:
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(self.experiment)
            if found is None:
                try:
                    self._experiment_id = self.client.create_experiment(self.experiment)
                except Exception:  # another worker created it meanwhile
                    found = self.client.get_experiment_by_name(self.experiment)
                    if found is None:
                        raise
            if found is not None:
                self._experiment_id = found.experiment_id
        assert self._experiment_id is not None
        return self._experiment_id

    def _runs(self, kind: str, study: str) -> dict[str, str]:
        """econas's runs of this study in the experiment: trial number (or "study") -> run id."""
        filt = (
            f"tags.`{TAG_KIND}` = '{kind}' AND tags.`{TAG_STUDY}` = '{_quote(study)}' "
            f"AND tags.`{TAG_STORAGE}` = '{_quote(self.storage)}'"
        )
        out: dict[str, str] = {}
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id()], filter_string=filt, max_results=1000, page_token=token
            )
            for run in page:
                out[run.data.tags.get(TAG_TRIAL, "study")] = run.info.run_id
            token = page.token
            if not token:
                return out

    # -- trials ------------------------------------------------------------------------
    def logged_trials(self, study: optuna.Study) -> set[int]:
        return {int(k) for k in self._runs("trial", study.study_name) if k.isdigit()}

    def backfill(self, study: optuna.Study) -> int:
        """Log the study's finished trials that no run holds yet (a resumed study)."""
        done = self.logged_trials(study)
        n = 0
        for trial in study.get_trials(deepcopy=False):
            if trial.state.name in _STATUS and trial.number not in done:
                self.log_trial(study, trial, check_existing=False)
                n += 1
        return n

    def log_trial(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial, *, check_existing: bool = True
    ) -> str | None:
        """One MLflow run for a finished trial; None when it is not finished or already logged."""
        status = _STATUS.get(trial.state.name)
        if status is None:
            return None
        if check_existing and trial.number in self.logged_trials(study):
            return None
        rec = TrialRecord.of(trial, study)
        metrics, params, tags = trial_run_data(study, trial, rec)
        tags |= {
            TAG_KIND: "trial",
            TAG_STUDY: study.study_name,
            TAG_STORAGE: self.storage,
            TAG_TRIAL: str(trial.number),
            TAG_STATE: trial.state.name,
        }
        start = _ms(trial.datetime_start)
        run = self.client.create_run(
            self.experiment_id(),
            start_time=start,
            tags={k: v for k, v in tags.items() if len(v) <= _MAX_TAG},
            run_name=f"trial-{trial.number}",
        )
        run_id = run.info.run_id
        self._log_batch(run_id, metrics, params, step_time=_ms(trial.datetime_complete) or start)
        long_tags = {k: v for k, v in tags.items() if len(v) > _MAX_TAG}
        if long_tags:  # e.g. the provenance JSON on a machine with many devices
            self._log_json(run_id, long_tags, "tags.json")
        self.client.set_terminated(run_id, status=status, end_time=_ms(trial.datetime_complete))
        return run_id

    # -- the end of a search -----------------------------------------------------------
    def log_study(self, study: optuna.Study) -> str:
        """The ``study`` run: search totals, the HTML report; the carbon label of each front
        trial on that trial's own run. Re-running updates the same run."""
        from nas.carbon_label import build_carbon_label, write_carbon_label
        from nas.pareto import pareto_trials
        from nas.report import build_report, search_cost, write_report

        name = study.study_name
        existing = self._runs("study", name).get("study")
        if existing is None:
            tags = {TAG_KIND: "study", TAG_STUDY: name, TAG_STORAGE: self.storage}
            existing = self.client.create_run(
                self.experiment_id(), tags=tags, run_name=f"{name} (study)"
            ).info.run_id
        else:
            self.client.update_run(existing, status="RUNNING")
        trials = study.get_trials(deepcopy=False)
        by_number = {t.number: t for t in trials}
        cost = search_cost(trials, study_attrs=study.user_attrs)
        metrics = {
            "search_energy_kwh": cost.energy_kwh,
            "search_kgco2e": cost.kgco2e,
            **{f"trials_{state}": float(n) for state, n in cost.trials_by_state.items()},
        }
        self._log_batch(existing, metrics, {})
        trial_runs = self._runs("trial", name)
        with tempfile.TemporaryDirectory(prefix="econas-mlflow-") as tmp:
            report = write_report(build_report(study), Path(tmp) / "report.html")
            self.client.log_artifact(existing, str(report))
            for rec in pareto_trials(study):
                run_id = trial_runs.get(str(rec.number))
                if run_id is None:
                    continue
                trial = by_number[rec.number]
                weights = "final" if rec.has_final else "proxy"
                label = build_carbon_label(study, trial, weights=weights)
                out = Path(tmp) / f"label-{rec.number}"
                out.mkdir()
                for path in write_carbon_label(out, label).values():
                    self.client.log_artifact(run_id, str(path), artifact_path="carbon_label")
        self.client.set_terminated(existing, status="FINISHED")
        return existing

    # -- helpers -----------------------------------------------------------------------
    def _log_batch(
        self,
        run_id: str,
        metrics: dict[str, float],
        params: dict[str, str],
        *,
        step_time: int | None = None,
    ) -> None:
        from mlflow.entities import Metric, Param

        stamp = step_time or 0
        ms = [Metric(k, v, stamp, 0) for k, v in metrics.items()]
        ps = [Param(k, v[:_MAX_PARAM]) for k, v in params.items()]
        for i in range(0, max(len(ms), 1), 500):  # MLflow's batch limits: 1000 metrics
            self.client.log_batch(run_id, metrics=ms[i : i + 500])
        for i in range(0, len(ps), 90):  # ... and 100 params
            self.client.log_batch(run_id, params=ps[i : i + 90])

    def _log_json(self, run_id: str, obj: dict[str, Any], name: str) -> None:
        with tempfile.TemporaryDirectory(prefix="econas-mlflow-") as tmp:
            path = Path(tmp) / name
            path.write_text(json.dumps(obj, indent=2, default=str) + "\n")
            self.client.log_artifact(run_id, str(path))


def trial_run_data(
    study: optuna.Study, trial: optuna.trial.FrozenTrial, rec: TrialRecord
) -> tuple[dict[str, float], dict[str, str], dict[str, str]]:
    """(metrics, params, tags) of a trial's run, read from its stored record."""
    metrics: dict[str, float] = {}
    names = study.metric_names or [f"objective_{i}" for i in range(len(study.directions))]
    for name, value in zip(names, trial.values or [], strict=False):
        v = finite(value)
        if v is not None:
            metrics[name] = v
    for field in _METRICS:
        v = rec.num(field)
        if v is not None:
            metrics[str(field)] = v
    g = rec.num(TrialAttrs.intensity_g_per_kwh)
    tags: dict[str, str] = {}
    for phase in rec.phases:
        metrics[phase_key(phase.name, "energy_kwh")] = phase.energy_kwh
        if g is not None:
            metrics[phase_key(phase.name, "kgco2e")] = kgco2e(phase.energy_kwh, g)
        if phase.duration_s is not None:
            metrics[phase_key(phase.name, "duration_s")] = phase.duration_s
        for what, value in (("energy_kind", phase.kind), ("energy_source", phase.source)):
            if value:
                tags[phase_key(phase.name, what)] = str(value)
    params = {k: str(v) for k, v in trial.params.items()}
    for field in (*_TAGS, *fields(Provenance)):
        value = rec.get(field)
        if value is not None and value != "":
            tags[str(field)] = str(value)
    if rec.get(TrialAttrs.phases):
        tags[str(TrialAttrs.phases)] = str(rec.get(TrialAttrs.phases))
    return metrics, params, tags


def _ms(when: Any) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


def _quote(text: str) -> str:
    return text.replace("'", "\\'")
