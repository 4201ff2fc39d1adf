"""The one deploy recipe the three runners share: its calibration rule, its choice read back from
a record, its training half (precision, teacher) and its stages, metered through ``phase``."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from torch.utils.data import TensorDataset

from nas.compression import (
    CALIBRATION_SAMPLES,
    FINETUNE_LR_FACTOR,
    CompressionChoice,
    MeterWindows,
    calibration_batches,
    deploy,
    finetune_plan,
    is_int8,
    pruned_network,
    quantize,
    training_plan,
)
from nas.cost import count_params
from nas.energy import EstimateMeter, energy_kind
from nas.train import TrainingPlan
from search_spaces import build_model

from .conftest import CNN

CPU = torch.device("cpu")


def _data(n: int = 300) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,)))


class _Phases:
    """A phase log that only records which phases ran, in order."""

    def __init__(self) -> None:
        self.names: list[str] = []

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.names.append(name)
        yield


def test_one_calibration_rule_chunks_of_64_up_to_the_samples() -> None:
    x = torch.zeros(300, 1, 4, 4)
    batches = calibration_batches(x)
    assert CALIBRATION_SAMPLES == 256 and [len(b) for b in batches] == [64, 64, 64, 64]
    assert [len(b) for b in calibration_batches(x, 100)] == [64, 36]
    assert [len(b) for b in calibration_batches(x[:10], 256)] == [10]  # fewer images: all


def test_a_choice_reads_back_from_its_record() -> None:
    choice = CompressionChoice(0.5, "l1", "int8_dynamic", "dynamic_bf16", 2, True, 4.0, 0.7)
    assert CompressionChoice.of_record(choice.attrs()) == choice
    assert CompressionChoice.of_record({}) == CompressionChoice()  # no [compression]
    assert not CompressionChoice().compresses and choice.compresses


def test_the_training_half_sets_precision_and_the_teacher() -> None:
    plan = TrainingPlan(epochs=3, batch_size=8, lr=0.1, device=CPU, epoch_callbacks=(print,))
    assert training_plan(plan, CompressionChoice()) == plan  # fp32, no teacher: unchanged
    dyn = training_plan(plan, CompressionChoice(precision="dynamic_bf16", precision_switch_epoch=2))
    assert dyn.autocast_dtype is not None
    assert [dyn.autocast_dtype(e) for e in range(3)] == [None, None, torch.bfloat16]
    assert training_plan(plan, CompressionChoice(distill=True)).loss_fn is plan.loss_fn  # none
    teacher = quantize(build_model(CNN), quantization="int8_dynamic", device=CPU)
    assert is_int8(teacher) and not is_int8(build_model(CNN))
    kd = training_plan(
        plan, CompressionChoice(distill=True, kd_temperature=2.0, kd_alpha=0.5), teacher=teacher
    )
    assert kd.loss_fn is not plan.loss_fn
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    assert torch.isfinite(kd.loss_fn(build_model(CNN), x, y))  # the INT8 teacher ran on the CPU
    tune = finetune_plan(plan, 1)
    assert tune.epochs == 1 and tune.lr == pytest.approx(0.1 * FINETUNE_LR_FACTOR)
    assert tune.epoch_callbacks == () and tune.on_start == ()


def test_deploy_prunes_fine_tunes_and_quantizes_in_their_phases() -> None:
    torch.manual_seed(0)
    model, data, phases = build_model(CNN), _data(), _Phases()
    before = count_params(model)
    pruned: list[dict] = []
    choice = CompressionChoice(prune_ratio=0.5, prune_criterion="l1", quantization="int8_dynamic")
    finetune = TrainingPlan(epochs=1, batch_size=64, lr=0.01, device=CPU)
    dep = deploy(
        model,
        choice,
        data=data,
        device=CPU,
        seed=0,
        phase=phases,
        finetune=finetune,
        cost_input_shape=(1, 1, 28, 28),
        on_pruned=pruned.append,
    )
    assert phases.names == ["finetune", "quantize"]
    assert len(pruned) == 1 and dep.float_model is model and count_params(model) < before
    assert dep.params == count_params(model) and dep.flops and dep.flops > 0
    assert is_int8(dep.model) and dep.device == CPU
    # econas train: the pruned structure was trained from scratch; deploying only quantizes
    fresh = pruned_network(CNN, pruned[0])
    assert count_params(fresh) == count_params(model)
    shape = [p.shape for p in fresh.parameters()]
    phases = _Phases()
    again = deploy(
        fresh,
        choice,
        data=data,
        device=CPU,
        seed=0,
        phase=phases,
        pruned_before_training=True,
    )
    assert phases.names == ["quantize"] and [p.shape for p in fresh.parameters()] == shape
    assert is_int8(again.model) and again.params is None  # not counted unless asked


def test_meter_windows_keep_each_stage_measured() -> None:
    meter = EstimateMeter(rss_interval_s=0.05)
    windows = MeterWindows(meter)
    model = copy.deepcopy(build_model(CNN))
    try:
        deploy(
            model,
            CompressionChoice(quantization="int8_dynamic"),
            data=_data(64),
            device=CPU,
            seed=0,
            phase=windows,
        )
    finally:
        meter.close()
    assert [m.name for m in windows.measurements] == ["quantize"]
    assert windows.measurements[0].energy_kwh > 0


def test_one_energy_kind_rule() -> None:
    assert energy_kind(["measured", "measured"]) == "measured"
    assert energy_kind(["measured", "estimated"]) == "estimated"
    assert energy_kind(["estimated"]) == "estimated"
