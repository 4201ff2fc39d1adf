"""The run context: built once from the config (device, meter, carbon source, data, seed), the
training recipe it plans, and the workload seam a trial's build/train/evaluate go through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from nas.config import config_from_dict
from nas.context import RunContext
from nas.data import DataBudget
from nas.errors import DataError
from nas.runs import build_context
from nas.train import TrainingPlan, TrainResult
from nas.workload import TorchWorkload
from tests.report.tiny_study import tiny_config_dict


def test_build_context_resolves_the_config_once_and_plans_its_recipe(tmp_path: Path) -> None:
    cfg = config_from_dict(tiny_config_dict(tmp_path, "ctx", seed=3))
    ctx = build_context(cfg, metered=False)
    assert ctx.meter is None and ctx.seed == 3 and str(ctx.device) == "cpu"
    assert len(ctx.data.train) == 200 and ctx.input_shape == (1, 28, 28)
    assert isinstance(ctx.workload, TorchWorkload) and ctx.intensity.name
    plan = ctx.plan()
    assert plan == TrainingPlan.from_config(cfg, device=ctx.device, seed=3).replace(
        loss_fn=plan.loss_fn
    )
    assert (plan.epochs, plan.batch_size, plan.lr, plan.seed) == (1, 50, cfg.train.lr, 3)
    assert ctx.replace(seed=7).plan().seed == 7 and ctx.plan(seed=9, epochs=4).epochs == 4
    budget = DataBudget(train_size=100, val_size=50, test_size=50)
    metered = build_context(cfg, seed=5, budget=budget, meter="estimate")
    try:
        assert metered.meter is not None and metered.meter.source == "estimate"
        assert len(metered.data.train) == 100 and metered.seed == 5
    finally:
        metered.meter.close()


def test_a_context_that_fails_closes_its_meter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nas.data
    import nas.energy

    made: list[Any] = []
    real = nas.energy.create_meter

    def create_meter(*args: Any, **kwargs: Any) -> Any:
        made.append(real(*args, **kwargs))
        return made[-1]

    def load_data(*_: Any, **__: Any) -> None:
        raise DataError("data set 'x' does not fit")

    monkeypatch.setattr(nas.energy, "create_meter", create_meter)
    monkeypatch.setattr(nas.data, "load_data", load_data)
    cfg = config_from_dict(tiny_config_dict(tmp_path, "ctx"))
    with pytest.raises(DataError, match="does not fit"):
        build_context(cfg)
    assert len(made) == 1
    with pytest.raises(RuntimeError, match="closed"):  # released, not left running
        made[0].begin_window("after")


class _Lookup(TorchWorkload):
    """A workload whose "training" is a lookup: it builds the model, trains nothing and
    answers a fixed accuracy (what a tabular benchmark's workload does with its table)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.plans: list[TrainingPlan] = []

    def build(self, space: Any, spec: Any) -> Any:
        self.calls.append("build")
        return super().build(space, spec)

    def cost(self, model: Any, input_shape: tuple[int, ...]) -> Any:
        self.calls.append("cost")
        return super().cost(model, input_shape)

    def train(self, model: Any, data: Any, plan: TrainingPlan) -> TrainResult:
        self.calls.append("train")
        self.plans.append(plan)
        for epoch in range(plan.epochs):
            plan.on_epoch_end(epoch, 1.0)
        return TrainResult(epochs=plan.epochs, steps=0, samples=0, final_loss=1.0)

    def evaluate(self, model: Any, data: Any, *, device: Any) -> float:
        self.calls.append("evaluate")
        return 0.25


def test_a_trial_builds_trains_and_evaluates_through_the_workload(tmp_path: Path) -> None:
    from nas.search import build_objective
    from nas.study import open_study

    doc = tiny_config_dict(tmp_path, "workload", trials=1)
    doc["train"] = {"epochs": 2}
    doc["eval"] = {"measure_inference": False}
    cfg = config_from_dict(doc)
    lookup = _Lookup()
    ctx = build_context(cfg, workload=lookup)
    assert isinstance(ctx, RunContext)
    study = open_study(cfg)
    try:
        study.optimize(build_objective(cfg, study=study, context=ctx), n_trials=1)
    finally:
        assert ctx.meter is not None
        ctx.meter.close()
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.COMPLETE, trial.user_attrs
    assert lookup.calls == ["build", "cost", "train", "evaluate", "evaluate"]
    assert trial.user_attrs["accuracy"] == 0.25 and trial.user_attrs["test_accuracy"] == 0.25
    (plan,) = lookup.plans
    assert plan.epochs == 2 and plan.seed == cfg.study.seed + trial.number
    assert trial.user_attrs["epochs"] == 2  # the workload's result is the trial's record


@pytest.mark.parametrize(("threads", "expected"), [(1, 1), (0, None)])
def test_a_search_trains_on_the_configured_cpu_threads(
    tmp_path: Path, threads: int, expected: int | None
) -> None:
    """``hardware.threads`` (1 by default: 2 threads drew 1.10-1.38x the estimated energy on
    2 cores, benchmarks/threads.py) is what a search's trials run with; 0 leaves torch's."""
    import torch

    from nas.pipeline import Objective

    doc = tiny_config_dict(tmp_path, "threads", trials=1)
    doc["hardware"] = {"device": "cpu", "threads": threads}
    cfg = config_from_dict(doc)
    assert config_from_dict(tiny_config_dict(tmp_path, "d", trials=1)).hardware.threads == 1
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    ctx = build_context(cfg)
    try:
        Objective(ctx)
        assert torch.get_num_threads() == (2 if expected is None else expected)
    finally:
        torch.set_num_threads(before)
        if ctx.meter is not None:
            ctx.meter.close()


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_hardware_threads_must_be_a_count(tmp_path: Path, bad: object) -> None:
    from nas.errors import ConfigError

    doc = tiny_config_dict(tmp_path, "bad_threads", trials=1)
    doc["hardware"] = {"threads": bad}
    with pytest.raises(ConfigError, match="hardware.threads"):
        config_from_dict(doc)
