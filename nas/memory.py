"""Memory guards: estimate what loading data and training a model need, before allocating it.

Two checks, each against a budget:

* :func:`check_data` when a data set loads (:func:`nas.data.load_data`): the raw uint8
  arrays, the float32 train/val/test subsets at the target resolution, and the largest
  temporary of converting one subset (its uint8 copy, the float32 image at the native size
  and, when resizing, the interpolation's intermediate). Too much raises
  :class:`~nas.errors.DataError` (the CLI: one line, exit 2) before anything is allocated.
* :func:`check_training` before a trial builds its model (:mod:`nas.trial_memory` for the
  pipeline, ``econas train``): parameters, gradients, optimizer state, the tensors autograd
  saves for one training batch, backward's temporaries, and one evaluation batch. The activation sizes come
  from running the model on PyTorch's ``meta`` device (shapes only, no memory, milliseconds)
  with a saved-tensors hook. Too much raises ``TrialFailure("out_of_memory")``: the trial
  fails, the study goes on.

The budget (:func:`memory_budget`): ``[hardware] memory_budget_gb`` when set, counted for
econas's own data and training (not the interpreter and libraries), so the training check
subtracts the data already held. Unset, it is :data:`SAFETY_FRACTION` of the memory the OS
reports available (``psutil.virtual_memory().available``) at the time of the check; what
econas already holds is not available any more, so nothing is subtracted. On CUDA the
training check is made against ``SAFETY_FRACTION`` of the device's free memory
(``torch.cuda.mem_get_info``) instead; the data stays in host memory.

Compared with the measured peak resident-set growth on this CPU (fresh process, after a
warm-up step; tests/test_memory.py keeps a factor-2.5 check), the estimate came out at
0.70-0.93 times the measured peak of two AdamW steps of sampled CNNs and ViTs (28x28 to
64x64, batch 32-64), and at 0.74-1.43 times that of one no-grad evaluation batch of 256. It
leans low for training: the safety fraction is the headroom.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nas.errors import DataError, TrialFailure

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn


log = logging.getLogger(__name__)

__all__ = [
    "SAFETY_FRACTION",
    "DataEstimate",
    "MemoryBudget",
    "TrainingEstimate",
    "check_data",
    "check_training",
    "cuda_free_bytes",
    "estimate_data",
    "estimate_training",
    "memory_budget",
    "warm_up",
]

GIB = 1024**3
FLOAT_BYTES = 4  # float32
SAFETY_FRACTION = 0.8  # of the memory available (host) or free (CUDA) when the budget is unset
# per optimizer: state tensors per parameter, and the temporaries of its (foreach) step
_OPTIMIZER_STATE = {"adamw": 2, "sgd": 1}
_OPTIMIZER_STEP_TEMP = 1


def _gib(n: float) -> str:
    return f"{n / GIB:.3g} GiB"


@dataclass(frozen=True, kw_only=True)
class MemoryBudget:
    """How many bytes econas may use, and where that figure came from."""

    limit_bytes: int
    source: str  # e.g. "hardware.memory_budget_gb = 2", "80% of the 12.1 GiB available"
    configured: bool  # True: the user's figure, which already-held data counts against

    def describe(self) -> str:
        return f"the memory budget of {_gib(self.limit_bytes)} ({self.source})"


def memory_budget(memory_budget_gb: float | None) -> MemoryBudget:
    """The host budget: ``memory_budget_gb`` GiB if given, else SAFETY_FRACTION of available."""
    if memory_budget_gb is not None:
        return MemoryBudget(
            limit_bytes=int(memory_budget_gb * GIB),
            source=f"hardware.memory_budget_gb = {memory_budget_gb:g}",
            configured=True,
        )
    import psutil

    available = int(psutil.virtual_memory().available)
    return MemoryBudget(
        limit_bytes=int(available * SAFETY_FRACTION),
        source=f"{SAFETY_FRACTION:.0%} of the {_gib(available)} available; "
        "set hardware.memory_budget_gb to change it",
        configured=False,
    )


def cuda_free_bytes(device: torch.device) -> int:
    """Free memory on a CUDA device now (``torch.cuda.mem_get_info``)."""
    import torch

    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


# -- data -----------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class DataEstimate:
    """Bytes a data set needs in memory: what stays (raw + float subsets) and the peak."""

    raw_bytes: int  # the uint8 arrays of both splits, kept for the process
    float_bytes: int  # the float32 train/val/test subsets at the target resolution
    peak_bytes: int  # raw + float subsets + the largest conversion temporary
    image_size: tuple[int, int]  # (H, W) of the float images

    @property
    def resident_bytes(self) -> int:
        return self.raw_bytes + self.float_bytes

    def describe(self) -> str:
        h, w = self.image_size
        return (
            f"about {_gib(self.peak_bytes)} (raw uint8 {_gib(self.raw_bytes)}, float32 subsets "
            f"at {h}x{w} {_gib(self.float_bytes)}, plus conversion temporaries)"
        )


def estimate_data(
    train_shape: tuple[int, ...],
    test_shape: tuple[int, ...],
    *,
    n_train: int,
    n_val: int,
    n_test: int,
    resolution: int | None,
) -> DataEstimate:
    """What :func:`nas.data.load_data` allocates for raw splits of ``train_shape`` and
    ``test_shape`` (N, H, W[, C], uint8) and subsets of ``n_train``/``n_val``/``n_test``
    images converted to float32 at ``resolution`` (None: native). No memory is touched.

    Converting a subset (``nas.data._to_float``) holds at once: its uint8 copy, the float32
    image at the native size, and when resizing the (antialiased, separable) interpolation's
    intermediate (N, C, H, R) and the result (N, C, R, R).
    """
    n_all, h, w = (int(v) for v in train_shape[:3])
    c = int(train_shape[3]) if len(train_shape) > 3 else 1
    raw = _prod(train_shape) + _prod(test_shape)
    rh, rw = (resolution, resolution) if resolution is not None else (h, w)
    resized = (rh, rw) != (h, w)
    per_float = c * rh * rw * FLOAT_BYTES
    subsets = [max(int(n), 0) for n in (n_train, n_val, n_test)]
    floats = sum(subsets) * per_float
    biggest = max(subsets)
    temp = biggest * c * h * w * (1 + FLOAT_BYTES)  # uint8 copy + float32 at native size
    if resized:
        temp += biggest * c * h * max(rw, w) * FLOAT_BYTES  # separable pass intermediate
    del n_all
    return DataEstimate(
        raw_bytes=raw, float_bytes=floats, peak_bytes=raw + floats + temp, image_size=(rh, rw)
    )


def check_data(estimate: DataEstimate, budget: MemoryBudget, *, name: str) -> None:
    """DataError (one line) if loading needs more than the budget."""
    if estimate.peak_bytes > budget.limit_bytes:
        raise DataError(
            f"data set {name} needs {estimate.describe()} in memory, more than "
            f"{budget.describe()}; lower data.train_size/val_size/test_size or "
            "data.resolution, or raise hardware.memory_budget_gb"
        )


# -- a model's training -----------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class TrainingEstimate:
    """Bytes training one model needs at its peak (see :func:`estimate_training`)."""

    params_bytes: int
    grads_bytes: int
    optimizer_bytes: int  # state (AdamW: two moments; SGD: momentum)
    activations_bytes: int  # saved for backward over one training batch (input included)
    backward_temp_bytes: int  # gradients of the two largest saved activations
    step_temp_bytes: int  # the optimizer step's temporaries
    eval_bytes: int  # the largest live tensors of one evaluation batch (no grad)
    batch_size: int
    eval_batch_size: int

    @property
    def total_bytes(self) -> int:
        held = self.params_bytes + self.grads_bytes + self.optimizer_bytes
        backward = self.activations_bytes + self.backward_temp_bytes
        return held + max(backward, self.step_temp_bytes, self.eval_bytes)

    def describe(self) -> str:
        return (
            f"about {_gib(self.total_bytes)} (weights, gradients and optimizer state "
            f"{_gib(self.params_bytes + self.grads_bytes + self.optimizer_bytes)}, activations "
            f"of a batch of {self.batch_size} {_gib(self.activations_bytes)}, evaluation batch "
            f"of {self.eval_batch_size} {_gib(self.eval_bytes)})"
        )


def default_eval_batch_size() -> int:
    """The batch :func:`nas.train.evaluate` uses by default (kept in step with it)."""
    from nas.train import evaluate

    return int(inspect.signature(evaluate).parameters["batch_size"].default)


def estimate_training(
    build: Callable[[], nn.Module],
    *,
    input_shape: tuple[int, int, int],
    batch_size: int,
    optimizer: str = "adamw",
    eval_batch_size: int | None = None,
) -> TrainingEstimate:
    """Estimate training ``build()``'s model on ``batch_size`` images of ``input_shape``.

    ``build`` runs under ``torch.device("meta")``: parameters and activations get shapes but
    no memory, so this is safe for a model far too large for the machine. Activations are the
    distinct storages autograd saves in one forward pass (float32; autocast would save less);
    evaluation is one no-grad forward of ``eval_batch_size`` images, whose live tensors are
    bounded by twice the largest module input plus output (a residual branch held aside).
    """
    import torch
    from torch.autograd.graph import saved_tensors_hooks

    eval_batch = default_eval_batch_size() if eval_batch_size is None else eval_batch_size
    with torch.device("meta"):
        model = build()
    params = [p for p in model.parameters()]
    params_bytes = sum(p.nbytes for p in params)
    trainable = sum(p.nbytes for p in params if p.requires_grad)
    param_keys = {_storage_key(p) for p in params}
    param_keys |= {_storage_key(b) for b in model.buffers()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = _storage_key(t)
        if key not in param_keys:
            saved[key] = int(t.untyped_storage().nbytes())
        return t

    model.train()
    x = torch.empty((batch_size, *input_shape), device="meta")
    with saved_tensors_hooks(pack, lambda t: t):
        out = model(x)  # kept until counted: the graph holds every saved storage alive
    del out
    activations = sum(saved.values())
    largest = sorted(saved.values(), reverse=True)[:2]

    model.eval()
    live = [0]

    def hook(module: nn.Module, args: tuple, output: object) -> None:
        if next(module.children(), None) is None:  # leaf modules: one op's input and output
            live[0] = max(live[0], _tensor_bytes(args) + _tensor_bytes(output))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            model(torch.empty((eval_batch, *input_shape), device="meta"))
    finally:
        for h in handles:
            h.remove()
    n_state = _OPTIMIZER_STATE.get(optimizer, 2)
    return TrainingEstimate(
        params_bytes=params_bytes,
        grads_bytes=trainable,
        optimizer_bytes=n_state * trainable,
        activations_bytes=activations,
        backward_temp_bytes=sum(largest),
        step_temp_bytes=_OPTIMIZER_STEP_TEMP * trainable,
        eval_bytes=2 * live[0],
        batch_size=batch_size,
        eval_batch_size=eval_batch,
    )


def check_training(
    estimate: TrainingEstimate,
    *,
    device: torch.device,
    memory_budget_gb: float | None,
    held_bytes: int = 0,
    what: str = "the model",
) -> None:
    """TrialFailure("out_of_memory") if training needs more than the budget: on a CUDA
    device against its free memory, on the CPU against the host budget less ``held_bytes``
    (the data econas already holds) when the budget is configured."""
    need = estimate.total_bytes
    if device.type == "cuda":
        free = cuda_free_bytes(device)
        limit = int(free * SAFETY_FRACTION)
        if need > limit:
            raise TrialFailure(
                "out_of_memory",
                f"{what} needs {estimate.describe()} to train on {device}, more than "
                f"{SAFETY_FRACTION:.0%} of its {_gib(free)} free",
            )
        return
    budget = memory_budget(memory_budget_gb)
    held = held_bytes if budget.configured else 0
    if need + held > budget.limit_bytes:
        beside = f" beside the {_gib(held)} of data held" if held else ""
        raise TrialFailure(
            "out_of_memory",
            f"{what} needs {estimate.describe()} to train{beside}, more than {budget.describe()}",
        )


def warm_up() -> None:
    """Load what the first meta-device run needs (torch's meta kernels and decompositions:
    seconds, once per process), so that it is not charged to the first trial's build phase;
    and torch._dynamo, which the first optimizer imports (878 modules, 1.6-4 s of CPU: inside
    trial 0's train window it made trial 0 cost 3.6x its rerun, 14.9 J vs 4.2 J, and threw the
    energy prediction off; ``econas train`` loads it at import, nas/final/_run.py)."""
    import torch._dynamo  # noqa: F401
    from torch import nn

    def tiny() -> nn.Module:
        attention = nn.MultiheadAttention(4, 2, batch_first=True)

        class Tiny(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.GELU())
                self.attention, self.norm, self.head = attention, nn.LayerNorm(4), nn.Linear(4, 2)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                x = self.conv(x).flatten(2).transpose(1, 2)  # (B, L, C)
                q = self.norm(x)
                x = x + nn.functional.scaled_dot_product_attention(q, q, q)
                return self.head(self.attention(x, x, x)[0].mean(1))

        return Tiny()

    try:
        estimate_training(tiny, input_shape=(1, 6, 6), batch_size=2, eval_batch_size=2)
    except (NotImplementedError, RuntimeError):  # pragma: no cover - then the trials say so
        log.debug("meta-device warm-up failed", exc_info=True)


def _storage_key(t: torch.Tensor) -> int:
    return int(t.untyped_storage()._cdata)


def _tensor_bytes(obj: object) -> int:
    import torch

    if isinstance(obj, torch.Tensor):
        return int(obj.nbytes)
    if isinstance(obj, tuple | list):
        return sum(_tensor_bytes(o) for o in obj)
    if isinstance(obj, dict):
        return sum(_tensor_bytes(o) for o in obj.values())
    return 0


def _prod(shape: tuple[int, ...]) -> int:
    return math.prod(int(v) for v in shape)
