"""The table's parameters as a search space: one categorical per ``archs.csv.gz`` column."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas.errors import InvalidArchError
from nas.tabular import Table
from search_spaces import ArchSpec, SearchSpace

if TYPE_CHECKING:  # pragma: no cover
    import optuna
    from torch import nn

FAMILY = "table"


class TableArchSpec(ArchSpec):
    """A table architecture's spec: ``config`` is ``{"table": name, "arch": id}`` (an
    encoding the table does not list: ``"arch": None`` and the ``"encoding"``). Isomorphic
    encodings give equal specs, so one reuse fingerprint. It encodes itself (the family is
    not in the search-space registry: there is nothing to build)."""

    def encode(self) -> str:
        return TableSpace.encode(self)


class TableSpace(SearchSpace):
    """Samples each of the table's parameters from the values its encodings use; the spec is
    the architecture those values name (:meth:`nas.tabular.Table.arch_of`)."""

    name = FAMILY

    def __init__(self, table: Table) -> None:
        self.table = table

    def sample(
        self,
        trial: optuna.Trial,
        *,
        in_channels: int,
        num_classes: int,
        image_size: int,
        prefix: str = "",
    ) -> ArchSpec:
        t = self.table
        encoding = {
            n: trial.suggest_categorical(f"{prefix}{n}", list(t.choices[n])) for n in t.param_names
        }
        arch = t.arch_of(encoding)
        config: dict[str, Any] = {"table": t.name, "arch": arch}
        if arch is None:
            config["encoding"] = encoding
        return TableArchSpec(
            family=FAMILY,
            in_channels=in_channels,
            num_classes=num_classes,
            image_size=image_size,
            config=config,
        )

    def validate(self, spec: ArchSpec) -> None:
        arch = spec.config.get("arch")
        if spec.config.get("table") != self.table.name:
            raise InvalidArchError(f"spec of table {spec.config.get('table')!r}, not of this one")
        if arch is None:
            shown = ", ".join(f"{k}={v}" for k, v in spec.config.get("encoding", {}).items())
            raise InvalidArchError(
                f"encoding ({shown}) is not listed in table {self.table.name}: not an "
                "architecture (an infeasible trial, nothing trained, 0 kWh)"
            )
        if arch not in self.table.archs:
            raise InvalidArchError(f"table {self.table.name} has no architecture {arch!r}")

    def build(self, spec: ArchSpec) -> nn.Module:
        raise InvalidArchError(
            f"a table's architecture ({self.encode(spec)}) is looked up, not built: the table "
            "has no model"
        )

    @classmethod
    def encode(cls, spec: ArchSpec) -> str:
        table, arch = spec.config.get("table"), spec.config.get("arch")
        if arch is not None:
            return f"{table}:{arch}"
        enc = spec.config.get("encoding", {})
        return f"{table}:not-listed({','.join(f'{k}={v}' for k, v in enc.items())})"
