"""A meter made of disjoint parts (GPU + host) measured over the same windows."""

from __future__ import annotations

from typing import Any

from nas.energy._base import Meter, merge_domain_kinds
from nas.energy._measurement import energy_kind


class CompositeMeter(Meter):
    """Sums disjoint meters, e.g. NVML (GPUs) + RAPL or estimate (CPU, DRAM).

    ``source`` joins the parts' sources with ``+`` (``"nvml+estimate"``); ``kind`` is
    ``"estimated"`` as soon as one part is; per-domain kinds and each part's details are in
    ``details["domain_kinds"]`` and ``details["parts"]``. Domains must not overlap.
    """

    def __init__(self, *, parts: list[Meter]) -> None:
        super().__init__()
        if not parts:
            raise ValueError("CompositeMeter needs at least one part")
        self.parts = list(parts)

    @property
    def source(self) -> str:
        return "+".join(p.source for p in self.parts)

    @property
    def kind(self) -> str:
        return energy_kind(p.kind for p in self.parts)

    @property
    def hardware(self) -> str:
        return " + ".join(p.hardware for p in self.parts)

    def _begin(self, name: str) -> Any:
        # The composite owns its parts' windows and has already refused a duplicate name
        # (unless restarting), so a part window of this name can only be a leftover: parts
        # always begin with restart=True, which also forwards a restart.
        started: list[Meter] = []
        try:
            for part in self.parts:
                part.begin_window(name, sync=False, restart=True)  # synchronised already
                started.append(part)
        except BaseException:
            for part in started:
                part.end_window(name, sync=False, cancel=True)
            raise
        return None

    def _cancel(self, name: str, token: Any) -> None:
        for part in self.parts:
            if name in part.open_windows:
                part.end_window(name, sync=False, cancel=True)

    def _end(self, name: str, token: Any) -> tuple[dict[str, float], dict[str, Any]]:
        energy_j: dict[str, float] = {}
        parts: dict[str, dict[str, Any]] = {}
        errors: list[BaseException] = []
        for part in self.parts:
            try:
                m = part.end_window(name, sync=False)
            except Exception as exc:  # end every part before reporting the first failure
                errors.append(exc)
                continue
            overlap = set(energy_j) & set(m.energy_j)
            if overlap:
                raise ValueError(f"meters {self.source} overlap on domains {sorted(overlap)}")
            energy_j.update(m.energy_j)
            parts[m.source] = {
                **m.details,
                "energy_kind": m.kind,
                "hardware": m.hardware,
                "total_energy_j": m.total_energy_j,
            }
        if errors:
            raise errors[0]
        return energy_j, {"domain_kinds": merge_domain_kinds(parts), "parts": parts}

    def _close(self) -> None:
        for part in self.parts:
            part.close()
