"""Training as a lookup: the :class:`~nas.workload.Workload` of a table study."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas.cost import CostReport
from nas.errors import InvalidArchError
from nas.table_study._meter import TableMeter
from nas.table_study._space import TableSpace
from nas.tabular import Lookup, Table
from nas.train import TrainingPlan, TrainResult
from nas.workload import Workload

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch.utils.data import TensorDataset

    from nas.config import Config
    from nas.data import DataSplits
    from nas.trial import Step
    from search_spaces import ArchSpec, SearchSpace

PLACEHOLDER_IMAGE_SIZE = 4  # the smallest images econas accepts (nas.space_options)


@dataclass
class TableModel:
    """What a table study "builds": the architecture, the repeat its training draws, and the
    last row looked up (where its training got to; None before any epoch)."""

    arch: str
    repeat: int | None = None
    at: Lookup | None = None

    @property
    def epochs(self) -> int:
        """The recorded epoch it was trained to (0 before training)."""
        return 0 if self.at is None else self.at.epochs


def placeholder_splits(table: Table) -> DataSplits:
    """Empty train/val/test splits: a table study reads no images, but the pipeline's
    steps (early stopping's validation subset) slice the splits' tensors."""
    import torch
    from torch.utils.data import TensorDataset

    from nas.data import DataSplits

    def empty() -> TensorDataset:
        size = PLACEHOLDER_IMAGE_SIZE
        return TensorDataset(torch.zeros(0, 1, size, size), torch.zeros(0, dtype=torch.long))

    n = table.meta.get("num_classes")
    classes = n if isinstance(n, int) and not isinstance(n, bool) and n >= 2 else 0
    digest = hashlib.sha256(f"{table.name}:{table.directory}".encode()).hexdigest()
    return DataSplits(
        name=f"table:{table.name}",
        train=empty(),
        val=empty(),
        test=empty(),
        num_classes=classes,  # 0: unknown (no chance level shown)
        in_channels=1,
        image_size=PLACEHOLDER_IMAGE_SIZE,
        source=f"table:{table.directory}",
        fingerprint=digest,
    )


class TableWorkload(Workload):
    """``build``: a :class:`TableModel`; ``cost``: the table's parameter count (no FLOPs);
    ``train``: for each epoch of the plan, the next recorded epoch at or above it of the
    repeat the plan's seed (the trial's) draws, its energy charged to ``meter`` (the difference
    to what the trial was charged so far), then the plan's epoch callbacks;
    ``evaluate``: the table's ``objective`` accuracy there, its test accuracy on the test
    split."""

    trains_modules = False

    def __init__(self, table: Table, *, meter: TableMeter | None, splits: DataSplits) -> None:
        self.table = table
        self.meter = meter
        self.splits = splits

    def search_spaces(self, config: Config) -> dict[str, SearchSpace]:
        return {TableSpace.name: TableSpace(self.table)}

    def steps(self, context: Any) -> list[Step]:  # a nas.context.RunContext
        from nas.table_study._step import TableStep

        return [TableStep(self.table)]

    def build(self, space: SearchSpace, spec: ArchSpec) -> TableModel:
        arch = spec.config.get("arch")
        if arch not in self.table.archs:
            raise InvalidArchError(f"table {self.table.name} has no architecture {arch!r}")
        return TableModel(arch=arch)

    def cost(self, model: Any, input_shape: tuple[int, ...]) -> CostReport:
        return CostReport(params=self.table.params(model.arch), flops=None, input_shape=input_shape)

    def train(self, model: Any, data: TensorDataset, plan: TrainingPlan) -> TrainResult:
        t = self.table
        m: TableModel = model
        if m.repeat is None:
            m.repeat = t.repeat_for(m.arch, plan.seed)
        if plan.epochs > t.max_epochs:
            raise ValueError(
                f"table {t.name} records epochs up to {t.max_epochs}, not {plan.epochs}"
            )
        for epoch in range(m.epochs, plan.epochs):
            hit = t.lookup(m.arch, epochs=epoch + 1, repeat=m.repeat)
            done_kwh = 0.0 if m.at is None else m.at.energy_kwh
            done_s = 0.0 if m.at is None else m.at.duration_s
            if self.meter is not None:
                self.meter.charge(hit.energy_kwh - done_kwh, hit.duration_s - done_s)
            m.at = hit
            plan.on_epoch_end(epoch, float("nan"))  # the table records no loss
        return TrainResult(epochs=plan.epochs, steps=0, samples=0, final_loss=float("nan"))

    def evaluate(self, model: Any, data: TensorDataset, *, device: torch.device) -> float:
        m: TableModel = model
        if m.at is None:
            raise RuntimeError(f"{m.arch}: evaluated before any epoch was looked up")
        if data is self.splits.test:
            return m.at.test_accuracy
        return self.table.objective_value(m.at)
