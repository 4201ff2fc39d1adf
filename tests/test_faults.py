"""Faults: a SIGKILLed worker's trial is failed and retried; bad trials fail alone; Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy
import torch

import nas.workload
from nas.cli import main
from nas.config import load_config
from nas.errors import BadInputError
from nas.search import run_search
from nas.study import open_storage
from tests.child import ctrl_c_raises, default_signals
from tests.configs import tiny_toml

ROOT = Path(__file__).resolve().parents[1]
S = optuna.trial.TrialState


def _config(tmp_path: Path, name: str, *, train: int = 200, epochs: int = 1) -> Path:
    return tiny_toml(
        tmp_path,
        name,
        study={"seed": 5},
        data={"train_size": train},
        train={"epochs": epochs},
        efficiency={"reuse": False},
    )


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def _trials(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=open_storage(storage, heartbeat=False))
    return study.get_trials(deepcopy=False)


def _start_worker(config: Path, storage: str, trials: int, cwd: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "nas.cli", "worker", str(config), "--storage", storage]
    return subprocess.Popen(
        [*cmd, "--trials", str(trials)],
        cwd=cwd,
        env=_env(ECONAS_HEARTBEAT_S="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_signals,  # SIGINT reaches it even when the suite runs in background
    )


def _mid_trial(storage: str, name: str) -> bool:
    """>= 1 trial is COMPLETE and the latest is RUNNING with its architecture and settings
    fully sampled (``arch_spec`` is stored once every parameter is) and its objective still
    running (``search_energy_kwh`` is written once, as it returns: after that Optuna tells the
    state, and an interrupt there is the other path, tested by a unit test)."""
    try:
        trials = _trials(storage, name)
    except (KeyError, BadInputError, sqlalchemy.exc.OperationalError):  # not yet / locked
        return False
    states = [t.state for t in trials]
    attrs = trials[-1].user_attrs if trials else {}
    running = states[-1:] == [S.RUNNING] and "arch_spec" in attrs
    return S.COMPLETE in states and running and "search_energy_kwh" not in attrs


def _freeze_mid_trial(proc: subprocess.Popen, storage: str, name: str) -> None:
    """Stop the worker (SIGSTOP) at a moment it is mid-trial, and check it still is.

    Checking, then signalling, races with the worker: the trial seen RUNNING may finish, and
    the next start sampling, before the signal lands; a trial killed while it samples has
    fewer params than its retry. Freezing first and checking the storage while the worker
    cannot move removes the race; the caller kills or interrupts the frozen worker.
    """
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        if _mid_trial(storage, name):
            proc.send_signal(signal.SIGSTOP)
            if _mid_trial(storage, name):
                return
            proc.send_signal(signal.SIGCONT)
        time.sleep(0.1)
    pytest.fail("the worker never got mid-trial")


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_sigkilled_worker_trial_is_failed_retried_and_nothing_is_lost(tmp_path: Path) -> None:
    config = _config(tmp_path, "kill", train=300, epochs=3)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    proc = _start_worker(config, storage, 50, tmp_path)
    _freeze_mid_trial(proc, storage, "kill")
    proc.kill()  # SIGKILL: no cleanup, no last heartbeat
    proc.wait()
    before = _trials(storage, "kill")
    done = {t.number: t.values for t in before if t.state == S.COMPLETE}
    zombie = [t.number for t in before if t.state == S.RUNNING]
    assert len(zombie) == 1 and done
    time.sleep(5.0)  # grace period = 3 x ECONAS_HEARTBEAT_S, in SQLite's whole seconds
    proc = _start_worker(config, storage, 1, tmp_path)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    after = _trials(storage, "kill")
    by_number = {t.number: t for t in after}
    assert by_number[zombie[0]].state == S.FAIL  # marked failed, not left RUNNING
    assert not [t for t in after if t.state == S.RUNNING]
    for number, values in done.items():  # completed trials preserved
        assert by_number[number].state == S.COMPLETE and by_number[number].values == values
    retried = [
        t
        for t in after
        if optuna.storages.RetryFailedTrialCallback.retried_trial_number(t) == zombie[0]
    ]
    assert len(retried) == 1 and retried[0].state != S.WAITING
    assert retried[0].params == by_number[zombie[0]].params
    assert len(after) == len(before) + 1  # the restart ran exactly its 1 trial: the retry


def _faulty_train(plan: list[str]):  # noqa: ANN202
    """train_model that makes trial k fail as ``plan[k]`` says (nan, oom, error, ok)."""
    real = nas.workload.train_model
    calls = iter(plan)

    def train_model(model, data, recipe):  # noqa: ANN001, ANN202
        what = next(calls, "ok")
        inner = recipe.loss_fn

        def loss_fn(m, x, y):  # noqa: ANN001, ANN202
            if what == "nan":
                return inner(m, x, y) * float("nan")
            if what == "oom":
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            if what == "error":
                raise ValueError("boom in the model")
            if what == "interrupt":
                raise KeyboardInterrupt
            return inner(m, x, y)

        return real(model, data, recipe.replace(loss_fn=loss_fn))

    return train_model


def test_nan_oom_and_exceptions_fail_their_trial_and_the_study_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    monkeypatch.setattr(nas.workload, "train_model", _faulty_train(["nan", "oom", "error"]))
    cfg = load_config(_config(tmp_path, "faulty"))
    result = run_search(cfg, n_trials=4, progress=False)
    trials = sorted(result.study.trials, key=lambda t: t.number)
    reasons = [t.user_attrs.get("fail_reason") for t in trials]
    assert reasons[:3] == ["nan_loss", "out_of_memory", "error:ValueError"]
    assert [t.state for t in trials] == [S.FAIL, S.FAIL, S.FAIL, S.COMPLETE]
    for t in trials[:3]:  # failed trials keep what they measured
        assert t.user_attrs["search_energy_kwh"] > 0


def test_ctrl_c_keeps_finished_trials_and_fails_the_interrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    monkeypatch.setattr(nas.workload, "train_model", _faulty_train(["ok", "ok", "interrupt"]))
    config = _config(tmp_path, "ctrlc")
    rc = main(["search", str(config), "--trials", "6"])
    err = capsys.readouterr().err
    assert rc == 130
    assert err.strip().splitlines()[-1] == "econas: interrupted"
    assert "Traceback" not in err
    trials = sorted(
        _trials(f"sqlite:///{tmp_path}/runs/ctrlc/study.db", "ctrlc"), key=lambda t: t.number
    )
    assert [t.state for t in trials] == [S.COMPLETE, S.COMPLETE, S.FAIL]
    assert trials[2].user_attrs["fail_reason"] == "interrupted"


STOPS = {  # the signal, the exit code and the last line
    "sigint": (signal.SIGINT, 130, "econas: interrupted"),
    "sigterm": (signal.SIGTERM, 143, "econas: terminated (SIGTERM)"),
}


@pytest.mark.parametrize("stop", sorted(STOPS))
def test_a_signal_to_a_worker_leaves_no_running_trial(stop: str, tmp_path: Path) -> None:
    """Ctrl-C, and SIGTERM as Ctrl-C (issue 26 item 5): the trial is failed with its energy."""
    signum, code, line = STOPS[stop]
    config = _config(tmp_path, stop, train=300, epochs=3)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    proc = _start_worker(config, storage, 50, tmp_path)
    _freeze_mid_trial(proc, storage, stop)
    proc.send_signal(signum)  # delivered when it runs again
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert err.strip().splitlines()[-1] == line and "Traceback" not in err
    trials = _trials(storage, stop)
    assert not [t for t in trials if t.state == S.RUNNING]
    assert any(t.state == S.COMPLETE for t in trials)
    failed = [t for t in trials if t.state == S.FAIL]
    assert failed and all(t.user_attrs.get("fail_reason") == "interrupted" for t in failed)
    assert all(t.user_attrs["search_energy_kwh"] > 0 for t in failed)  # what it spent


def test_sigterm_to_a_search_mid_trial_exits_143_and_a_rerun_continues(tmp_path: Path) -> None:
    """Issue 26 item 5: `kill -TERM` to `econas search` mid-trial: the trial is failed with its
    energy, one line, exit 143; the same command then runs the trials still missing."""
    # Enough trials, each long enough, that polling sees one mid-run on a fast machine (CI
    # once finished 3 trials of 0.4 s before the first poll caught one running).
    trials_wanted = 8
    config = _config(tmp_path, "term", train=300, epochs=6)
    storage = f"sqlite:///{tmp_path / 'runs' / 'term' / 'study.db'}"
    cmd = [sys.executable, "-m", "nas.cli", "search", str(config), "--trials", str(trials_wanted)]
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_signals,
    )
    _freeze_mid_trial(proc, storage, "term")
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert err.strip().splitlines()[-1] == "econas: terminated (SIGTERM)" and "Traceback" not in err
    trials = _trials(storage, "term")
    assert not [t for t in trials if t.state == S.RUNNING]
    (failed,) = [t for t in trials if t.state == S.FAIL]
    assert failed.user_attrs["fail_reason"] == "interrupted"
    assert failed.user_attrs["fail_message"] == "stopped by SIGTERM"
    assert failed.user_attrs["search_energy_kwh"] > 0
    done = len([t for t in trials if t.state == S.COMPLETE])
    rerun = subprocess.run(
        cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"econas: {trials_wanted - done} new trials" in rerun.stderr
    assert len([t for t in _trials(storage, "term") if t.state == S.COMPLETE]) == trials_wanted


def test_sigterm_handler_is_scoped_to_the_long_verbs() -> None:
    from nas.signals import Terminated, sigterm_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises at once
    assert signal.getsignal(signal.SIGTERM) == before  # restored
    old = signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a parent asked to ignore it
    try:
        with sigterm_as_interrupt():
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, old)


@pytest.mark.usefixtures(ctrl_c_raises.__name__)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_during_a_deferred_block_waits_for_its_end(signum: int) -> None:
    from nas.signals import Terminated, interrupts_deferred, sigterm_as_interrupt

    done = []
    before = signal.getsignal(signum)
    with pytest.raises(KeyboardInterrupt) as caught, sigterm_as_interrupt():
        with interrupts_deferred():
            os.kill(os.getpid(), signum)  # undeferred, the handler would raise right here
            done.append("written")
    assert done == ["written"]
    assert isinstance(caught.value, Terminated) == (signum == signal.SIGTERM)
    assert signal.getsignal(signum) == before  # every handler restored
    with interrupts_deferred():  # no signal: nothing raised
        done.append("again")
    assert done == ["written", "again"]


@pytest.mark.usefixtures(ctrl_c_raises.__name__)
def test_ctrl_c_while_a_trial_record_is_written_keeps_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """CI once lost an interrupted trial's energy: SIGTERM landed inside the trial's final
    write. The write now finishes first; the interrupt then stops the search as usual."""
    import nas.pipeline

    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    real = nas.pipeline.store_attrs
    calls = {"n": 0}

    def store_attrs(trial, attrs):  # noqa: ANN001, ANN202
        if "search_energy_kwh" in attrs and calls["n"] == 0:
            calls["n"] += 1
            os.kill(os.getpid(), signal.SIGINT)  # a Ctrl-C in the middle of the write
        return real(trial, attrs)

    monkeypatch.setattr(nas.pipeline, "store_attrs", store_attrs)
    config = _config(tmp_path, "store")
    assert main(["search", str(config), "--trials", "3"]) == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "econas: interrupted" and "Traceback" not in err
    (trial,) = _trials(f"sqlite:///{tmp_path}/runs/store/study.db", "store")
    assert trial.state == S.FAIL and trial.user_attrs["fail_reason"] == "interrupted"
    assert trial.user_attrs["search_energy_kwh"] > 0  # the record was written whole


def test_a_drivers_traceback_of_an_interrupt_is_not_printed() -> None:
    import logging

    from nas.cli import _InterruptNoiseFilter

    def record(name: str, exc: BaseException) -> logging.LogRecord:
        try:
            raise exc
        except BaseException:  # noqa: BLE001
            info = sys.exc_info()
        return logging.LogRecord(name, logging.ERROR, __file__, 1, "Error", None, info)

    def caused(exc: BaseException) -> BaseException:  # an error raised while handling exc
        try:
            try:
                raise exc
            except BaseException:  # noqa: BLE001
                raise RuntimeError("cursor closed") from None
        except RuntimeError as err:
            err.__context__ = exc
            return err

    f = _InterruptNoiseFilter()
    assert not f.filter(record("sqlalchemy.pool.impl.QueuePool", KeyboardInterrupt()))
    assert not f.filter(record("sqlalchemy.engine.Engine", caused(KeyboardInterrupt())))
    assert f.filter(record("sqlalchemy.engine.Engine", RuntimeError("a real error")))
    assert f.filter(record("nas.search", KeyboardInterrupt()))  # only a driver's noise


def test_ctrl_c_while_optuna_tells_a_trial_is_an_interrupt_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Ctrl-C landing inside Optuna's tell makes Optuna raise ``UnboundLocalError:
    updated_state`` with the interrupt as its context; econas sees the interrupt: exit 130,
    one line, and the trial is failed, not left RUNNING."""
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    real = optuna.storages.RDBStorage.set_trial_state_values
    calls = {"n": 0}

    def interrupted_tell(self, trial_id, state, values=None):  # noqa: ANN001, ANN202
        if state == S.COMPLETE and calls["n"] == 0:
            calls["n"] += 1
            raise KeyboardInterrupt
        return real(self, trial_id, state, values)

    monkeypatch.setattr(optuna.storages.RDBStorage, "set_trial_state_values", interrupted_tell)
    config = _config(tmp_path, "tell")
    assert main(["search", str(config), "--trials", "2"]) == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "econas: interrupted" and "Traceback" not in err
    assert calls["n"] == 1
    (trial,) = _trials(f"sqlite:///{tmp_path}/runs/tell/study.db", "tell")
    assert trial.state == S.FAIL and trial.user_attrs["fail_reason"] == "interrupted"
    assert trial.user_attrs["fail_message"] == "stopped by Ctrl-C (SIGINT)"
    assert trial.user_attrs["search_energy_kwh"] > 0  # its objective had returned


def test_sqlite_storages_wait_for_a_lock_instead_of_failing_at_once(tmp_path: Path) -> None:
    """Workers sharing one SQLite file: a writer waits up to SQLITE_LOCK_TIMEOUT_S for
    another's lock (sqlite3's 5 s default made a loaded worker fail a trial as a fault)."""
    from nas.study import SQLITE_LOCK_TIMEOUT_S

    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat=False)
    with storage.engine.connect() as conn:  # type: ignore[attr-defined]
        timeout = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
    assert SQLITE_LOCK_TIMEOUT_S >= 30 and timeout == SQLITE_LOCK_TIMEOUT_S * 1000
