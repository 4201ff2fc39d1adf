"""The trial pipeline and its record: step order, every joule in one phase, the record's schema,
reading studies of earlier (and refusing later) releases."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest

from nas.cli import main
from nas.compression.step import CompressionStep
from nas.config import config_from_dict
from nas.efficiency.cost_guard import CostGuard
from nas.efficiency.step import EfficiencyStep
from nas.energy import EstimateMeter
from nas.errors import BadInputError
from nas.federated.step import FederatedStep
from nas.lifecycle import LifecycleStep
from nas.pipeline import assemble_steps
from nas.record import (
    MODEL_COST_PHASES,
    PHASE_NAMES,
    PHASE_SUFFIXES,
    RECORD_VERSION,
    TRIAL_GROUPS,
    PhaseLog,
    TrialRecord,
    fields,
)
from nas.scheduling.step import BudgetGuard, GreenWindow
from nas.workload import TorchWorkload
from tests.report.tiny_study import tiny_study

S = optuna.trial.TrialState

FULL = {
    "study": {"objectives": ["accuracy", "kgco2e", "lifecycle_kgco2e"]},
    "train": {"epochs": 2},
    "compression": {
        "enabled": True,
        "prune_ratios": [0.0, 0.5],
        "quantization": ["fp32", "int8_dynamic"],
        "precision": ["fp32", "dynamic_bf16"],
        "distillation": [True],  # every trial after the first has a teacher
        "calibrate": False,  # every choice sampled; calibration: tests/compression
    },
    "efficiency": {"screen": "synflow", "screen_warmup": 2},
    "lifecycle": {"requests_per_day": 1000.0, "target_device": "cpu", "batch_size": 4},
    "schedule": {"max_kgco2e": 1.0},
}


@pytest.fixture(scope="module")
def full_study() -> optuna.Study:
    """A tiny study with every trial feature: compression, screening, lifecycle, budget."""
    return tiny_study("pipeline-full", trials=8, **FULL)[1]


def test_steps_are_assembled_in_the_order_their_hooks_run() -> None:
    doc = {
        **FULL,
        "federated": {"enabled": True, "clients": 2},
        "schedule": {
            "max_kgco2e": 1.0,
            "trace": "gb_2020",
            "clock": "simulated",
            "start": "2020-06-10T00:00Z",
        },
    }
    cfg = config_from_dict(doc)
    labels = __import__("torch").zeros(40, dtype=__import__("torch").long)
    data = SimpleNamespace(
        train=SimpleNamespace(tensors=(None, labels)), num_classes=10, in_channels=1, image_size=28
    )
    env = SimpleNamespace(
        config=cfg,
        data=data,
        device=__import__("torch").device("cpu"),
        input_shape=(1, 28, 28),
        workload=TorchWorkload(),  # adds no steps of its own
    )
    steps = assemble_steps(env)  # type: ignore[arg-type]
    assert [type(s) for s in steps] == [
        BudgetGuard,  # refuses before anything is spent
        CompressionStep,
        FederatedStep,
        CostGuard,  # the training energy predicted on the built model, before screening
        EfficiencyStep,
        GreenWindow,
        LifecycleStep,
    ]
    bare = SimpleNamespace(config=config_from_dict({}), workload=TorchWorkload())
    bare = assemble_steps(bare)  # type: ignore[arg-type]
    # the fingerprint is always stored, the training energy always predicted
    assert [type(s) for s in bare] == [CostGuard, EfficiencyStep]


def test_every_joule_of_every_trial_is_in_exactly_one_phase(full_study: optuna.Study) -> None:
    trials = full_study.trials
    assert {t.state for t in trials} == {S.COMPLETE, S.PRUNED}
    distilled = [t for t in trials if "teacher_energy_kwh" in t.user_attrs]
    assert distilled and any(t.user_attrs["quantization"] == "int8_dynamic" for t in trials)
    for t in trials:
        rec = TrialRecord.of(t)
        names = [p.name for p in rec.phases]
        assert names[0] == "sample" and names[-1] == "store"
        assert len(set(names)) == len(names) and set(names) <= set(PHASE_NAMES)
        order = [PHASE_NAMES.index(n) for n in names]
        assert order == sorted(order)  # phases ran in the pipeline's order
        total = sum(p.energy_kwh for p in rec.phases)
        assert math.isclose(rec.search_energy_kwh, total, rel_tol=1e-9)
        assert all(p.energy_kwh > 0 and p.duration_s is not None for p in rec.phases)
        # nearly all of the trial's time ran inside a phase (the rest: bookkeeping between)
        assert 0.9 <= rec.metered_fraction <= 1.0
        if t.state == S.COMPLETE:
            assert {"build", "train", "eval", "test", "inference", "upload"} <= set(names)
            epochs = json.loads(t.user_attrs["epoch_energy_kwh"])  # windows inside "train"
            train = next(p.energy_kwh for p in rec.phases if p.name == "train")
            assert len(epochs) == t.user_attrs["epochs"] and 0 < sum(epochs) <= train
            build_s = next(p.duration_s for p in rec.phases if p.name == "build")
            assert 0 < t.user_attrs["model_build_s"] <= build_s  # a part: what train redoes
            model = sum(p.energy_kwh for p in rec.phases if p.name in MODEL_COST_PHASES)
            assert math.isclose(rec.energy_kwh, model, rel_tol=1e-9)
            teacher = rec.num("teacher_energy_kwh")
            if teacher is not None:  # nested in train: a detail, never added again
                train = next(p.energy_kwh for p in rec.phases if p.name == "train")
                assert 0 < teacher < train


def test_every_stored_attr_is_in_the_schema_with_its_type(full_study: optuna.Study) -> None:
    declared = {str(f): f for g in TRIAL_GROUPS for f in fields(g)}
    for t in full_study.trials:
        assert t.user_attrs["record_version"] == RECORD_VERSION
        for key, value in t.user_attrs.items():
            field = declared.get(key)
            if field is None:
                phase, _, what = key.partition("_")
                family = (
                    phase in PHASE_NAMES
                    and (what in PHASE_SUFFIXES or what.startswith("energy_j_"))
                ) or key.startswith(("rung_", "proxy_"))
                assert family, f"trial {t.number}: attr {key!r} is not in nas.record"
                continue
            kinds = field.kind if isinstance(field.kind, tuple) else (field.kind,)
            ok = (
                value is None
                or isinstance(value, kinds)
                or (isinstance(value, float) and math.isnan(value))
            )
            assert ok, f"{key}={value!r} is not {field.kind}"


def test_provenance_and_the_estimate_constants_are_stored(full_study: optuna.Study) -> None:
    (t, *_) = [t for t in full_study.trials if t.state == S.COMPLETE]
    a = t.user_attrs
    assert a["cpu_isa"] and a["threads"] >= 1 and a["torch_version"] and a["econas_version"]
    assert a["estimate_watts_per_core"] > 0 and a["estimate_watts_per_core_source"]
    assert a["estimate_dram_w_per_gb"] > 0 and a["estimate_dram_w_per_gb_source"]
    assert a["cpu_time_s"] > 0 and a["energy_scope"] == "process" and a["energy_share"] == 1.0
    details = json.loads(a["provenance"])
    assert details["cpu_isa"] == a["cpu_isa"] and "versions" in details


def test_a_window_left_open_by_a_failure_does_not_block_the_phase() -> None:
    meter = EstimateMeter()
    log = PhaseLog(meter)
    meter.begin_window("phase:train")  # as a crash inside the phase would leave it
    with log.phase("train"):
        sum(i * i for i in range(10_000))
    with pytest.raises(RuntimeError, match="inside phase"), log.phase("eval"):
        with log.phase("test"):
            pass
    assert [m.name for m in log.measurements] == ["train", "eval"]
    assert meter.open_windows == ()
    with pytest.raises(ValueError, match="unknown phase"), log.phase("nap"):
        pass


def _record(**attrs: object) -> TrialRecord:
    return TrialRecord(attrs, number=7)


def test_records_of_earlier_releases_are_migrated_and_later_ones_refused() -> None:
    v1 = _record(
        phases="train,eval",
        train_energy_kwh=2.0,
        eval_energy_kwh=1.0,
        inference_energy_kwh_window=0.5,
        inference_window_duration_s=0.3,
        inference_energy_kind="estimated",
        search_energy_kwh=3.5,
    )
    assert v1.version == 1 and v1.metered_fraction is None and not v1.under_metered
    assert [(p.name, p.energy_kwh) for p in v1.phases] == [
        ("train", 2.0),
        ("eval", 1.0),
        ("inference", 0.5),
    ]
    assert sum(p.energy_kwh for p in v1.phases) == v1.search_energy_kwh
    with pytest.raises(BadInputError, match="newer econas"):
        _record(record_version=RECORD_VERSION + 1)
    with pytest.raises(BadInputError, match="not a version"):
        _record(record_version="two")


def test_pareto_refuses_a_study_from_a_newer_release_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 'future.db'}"
    study = optuna.create_study(study_name="future", storage=storage, directions=["maximize"])
    study.add_trial(
        optuna.trial.create_trial(
            values=[0.5], user_attrs={"record_version": RECORD_VERSION + 1, "accuracy": 0.5}
        )
    )
    assert main(["pareto", "--storage", storage, "--study", "future", "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "newer econas" in err[0]
