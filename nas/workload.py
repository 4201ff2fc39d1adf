"""Where a trial's model is built, trained and evaluated: the one seam a search's ML work goes
through (:attr:`nas.context.RunContext.workload`).

:mod:`nas.pipeline` asks the run context's workload, and only it, to

* ``build(space, spec)``: the model of a sampled architecture (phase ``build``),
* ``cost(model, input_shape)``: its parameters and FLOPs (phase ``build``),
* ``train(model, data, plan)``: train it by the :class:`~nas.train.TrainingPlan` the steps
  made (phase ``train``; a step's own ``train`` hook, e.g. federated rounds, goes first),
* ``evaluate(model, data, device=...)``: its top-1 accuracy on a split (phases ``eval`` and
  ``test``, on the deployed model).

:class:`TorchWorkload` (the default) does this with real PyTorch training. A tabular
benchmark, where "training" is a lookup in a table of measured accuracy and energy per epoch,
is another :class:`Workload`: ``build`` returns a handle of the architecture, ``train`` looks
its epochs up, ``evaluate`` returns the table's accuracy
(:class:`nas.table_study.TableWorkload`). The steps stay as they are; those that need a real
``nn.Module`` (compression, federated rounds, screening, inference, the memory guard, the
weights upload) are features such a study leaves off (``trains_modules = False``).

Two more things come from the workload: the run's search spaces (:meth:`Workload.search_spaces`:
the config's ``[search]`` spaces by default, a table's parameters for a table) and steps of
its own (:meth:`Workload.steps`, placed before reuse and early stopping).
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

from nas.cost import CostReport, analyze_cost
from nas.train import TrainingPlan, TrainResult, evaluate, train_model

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch.utils.data import TensorDataset

    from nas.config import Config
    from search_spaces import ArchSpec, SearchSpace


class Workload(abc.ABC):
    """What building, training and evaluating a model means in a run (module docstring).

    Contract: ``train`` trains ``model`` in place by ``plan`` and calls
    ``plan.on_epoch_end(epoch, mean_loss)`` after every epoch (early stopping and the
    per-epoch energy ledger rely on it; a callback may raise ``optuna.TrialPruned``);
    ``evaluate`` returns a fraction in [0, 1]. ``trains_modules``: whether ``build`` returns
    an ``nn.Module`` (the memory guard, inference measurement and the weights upload need one).
    """

    trains_modules: bool = True

    def search_spaces(self, config: Config) -> dict[str, SearchSpace]:
        """The spaces a trial samples from, by name: the config's ``[search]`` spaces, each
        built from its ``[search.<space>]`` options."""
        from search_spaces import create_search_space

        return {
            name: create_search_space(name, **config.search.options.get(name, {}))
            for name in config.search.spaces
        }

    def steps(self, context: Any) -> list[Any]:  # RunContext -> nas.trial.Step list
        """Steps of this workload's own, run before reuse and early stopping (none here)."""
        return []

    @abc.abstractmethod
    def build(self, space: SearchSpace, spec: ArchSpec) -> Any:
        """The untrained model of ``spec`` (sampled from ``space``)."""

    @abc.abstractmethod
    def cost(self, model: Any, input_shape: tuple[int, ...]) -> CostReport:
        """Parameters and FLOPs of one forward pass at ``input_shape`` (batch included)."""

    @abc.abstractmethod
    def train(self, model: Any, data: TensorDataset, plan: TrainingPlan) -> TrainResult:
        """Train ``model`` in place on ``data`` by ``plan``."""

    @abc.abstractmethod
    def evaluate(self, model: Any, data: TensorDataset, *, device: torch.device) -> float:
        """Top-1 accuracy of ``model`` on ``data``."""


class TorchWorkload(Workload):
    """The default: the search space builds an ``nn.Module``, :func:`nas.train.train_model`
    trains it, :func:`nas.cost.analyze_cost` counts it, :func:`nas.train.evaluate` scores it."""

    def build(self, space: SearchSpace, spec: ArchSpec) -> Any:
        return space.build(spec)

    def cost(self, model: Any, input_shape: tuple[int, ...]) -> CostReport:
        return analyze_cost(model, input_shape)

    def train(self, model: Any, data: TensorDataset, plan: TrainingPlan) -> TrainResult:
        return train_model(model, data, plan)

    def evaluate(self, model: Any, data: TensorDataset, *, device: torch.device) -> float:
        return evaluate(model, data, device=device)
