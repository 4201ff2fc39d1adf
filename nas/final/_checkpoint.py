"""Checkpoints of a final training: model, optimizer, schedule, RNG and the energy spent so far.

``checkpoint.pt`` is written at every epoch end (atomically: a temporary file renamed over it)
and on Ctrl-C; it loads with ``torch.load(weights_only=True)`` (tensors, numbers, strings).
Its ``ledger`` holds every phase measured so far, over every run, so a resumed run carries
the energy already spent and never counts it twice. ``progress.json`` is rewritten every few
seconds during an epoch with the energy spent since the checkpoint on disk: that epoch's so
far, this run's build, and what an earlier killed run had already left there. A run killed
mid-epoch (SIGKILL) leaves it behind, and the next run records it as phase ``lost`` (the work
is redone); the file stays until a checkpoint holds the figure or the next run's progress file
replaces it with a figure that includes it, so a second kill before the first checkpoint
loses nothing either.
"""

from __future__ import annotations

import json
import os
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.energy import Measurement
from nas.errors import BadInputError
from nas.files import read_text
from nas.record import RECORD_VERSION

FORMAT = "econas.final_checkpoint/1"
CHECKPOINT = "checkpoint.pt"
PROGRESS = "progress.json"
MAX_PROGRESS_BYTES = 64 * 1024


def measurement_to_json(m: Measurement) -> dict[str, Any]:
    return {
        "name": m.name,
        "duration_s": float(m.duration_s),
        "energy_j": {k: float(v) for k, v in m.energy_j.items()},
        "source": m.source,
        "kind": m.kind,
        "hardware": m.hardware,
    }


MAX_ENERGY_J = 1e15  # ~280 GWh: no training draws that; larger is corruption
MAX_DURATION_S = 1e9  # ~32 years
MAX_TEXT = 500


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT or not value.isprintable():
        raise ValueError(f"{what} must be a short printable string")
    return value


def measurement_from_json(d: dict[str, Any], *, name: str | None = None) -> Measurement:
    """A measurement read back from a checkpoint or progress file (untrusted: a corrupt or
    edited file); every number must be finite and non-negative, ValueError otherwise."""
    from nas.stored_spec import finite_non_negative

    raw = d["energy_j"]
    if not isinstance(raw, dict) or len(raw) > 64:
        raise ValueError("energy_j must be a table of domains")
    try:
        energy = {
            _text(k, "a domain"): finite_non_negative(v, f"energy_j[{k!r}]", limit=MAX_ENERGY_J)
            for k, v in raw.items()
        }
        duration = finite_non_negative(d["duration_s"], "duration_s", limit=MAX_DURATION_S)
    except BadInputError as exc:
        raise ValueError(str(exc)) from None
    return Measurement(
        name=name or _text(d["name"], "name"),
        duration_s=duration,
        energy_j=energy,
        total_energy_j=float(sum(energy.values())),
        source=_text(d["source"], "source"),
        kind=_text(d["kind"], "kind"),
        hardware=_text(d["hardware"], "hardware"),
        details={"carried_over": True},
    )


@dataclass
class Checkpoint:
    """What a final training saved; ``trainer`` is None when no epoch has finished yet."""

    study: str
    trial: int
    settings: dict[str, Any]
    epoch: int = 0
    trainer: dict[str, Any] | None = None
    ledger: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = False
    resumed_from: list[int] = field(default_factory=list)

    def measurements(self) -> list[Measurement]:
        return [measurement_from_json(d) for d in self.ledger]


class CheckpointDir:
    """The checkpoint and progress files of one trial's final training."""

    def __init__(self, path: Path, *, study: str, trial: int) -> None:
        self.path = path
        self.study, self.trial = study, trial

    @property
    def file(self) -> Path:
        return self.path / CHECKPOINT

    def lock(self) -> AbstractContextManager[None]:
        """This trial's training lock (:func:`nas.final._lock.trial_lock`): one run at a time."""
        from nas.final._lock import trial_lock

        return trial_lock(self.path, what=f"trial {self.trial} of study {self.study!r}")

    def save(self, ckpt: Checkpoint) -> None:
        import torch

        self.path.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": FORMAT,
            "record_version": RECORD_VERSION,
            "study": ckpt.study,
            "trial": ckpt.trial,
            "settings": ckpt.settings,
            "epoch": ckpt.epoch,
            "trainer": ckpt.trainer,
            "ledger": ckpt.ledger,
            "complete": ckpt.complete,
            "resumed_from": ckpt.resumed_from,
        }
        tmp = self.file.with_suffix(".tmp")
        torch.save(payload, tmp)
        os.replace(tmp, self.file)

    def load(self, settings: dict[str, Any]) -> Checkpoint | None:
        """The checkpoint of this trial with these settings; None when there is none. Anything
        else (corrupt, another trial, another record version, other settings) is bad input:
        a broken checkpoint never makes a run silently start from scratch."""
        if not self.file.exists():
            return None
        import torch

        where = f"checkpoint {self.file}"
        try:
            raw = torch.load(self.file, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - truncated, not a zip, unpicklable...
            raise BadInputError(
                f"{where} is corrupt ({str(exc).splitlines()[0][:120]}); delete it to start over"
            ) from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise BadInputError(f"{where} is not an econas final-training checkpoint")
        if raw.get("record_version") != RECORD_VERSION:
            raise BadInputError(
                f"{where} was written by another econas (record version "
                f"{raw.get('record_version')!r}, this one writes {RECORD_VERSION}); delete it"
            )
        if raw.get("study") != self.study or raw.get("trial") != self.trial:
            raise BadInputError(
                f"{where} belongs to trial {raw.get('trial')!r} of study {raw.get('study')!r}, "
                f"not trial {self.trial} of {self.study!r}"
            )
        if raw.get("settings") != settings:
            diff = sorted(
                k
                for k in set(settings) | set(raw.get("settings") or {})
                if settings.get(k) != (raw.get("settings") or {}).get(k)
            )
            raise BadInputError(
                f"{where} was made with other settings ({', '.join(diff)}); rerun with the same "
                "settings to resume, or delete it to start over"
            )
        try:
            ckpt = Checkpoint(
                study=self.study,
                trial=self.trial,
                settings=settings,
                epoch=int(raw["epoch"]),
                trainer=raw.get("trainer"),
                ledger=list(raw.get("ledger") or []),
                complete=bool(raw.get("complete")),
                resumed_from=[int(e) for e in raw.get("resumed_from") or []],
            )
            if ckpt.epoch < 0:
                raise ValueError(f"epoch {ckpt.epoch} is negative")
            ckpt.measurements()  # every carried-over figure finite and non-negative
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInputError(f"{where} is corrupt ({exc}); delete it to start over") from None
        return ckpt

    # -- the in-epoch progress file -------------------------------------------------------------
    def write_progress(self, epoch: int, spent: Measurement) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / (PROGRESS + ".tmp")
        data = {"study": self.study, "trial": self.trial, "epoch": epoch}
        data["spent"] = measurement_to_json(spent)
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.path / PROGRESS)

    def take_progress(self, checkpoint_epoch: int) -> Measurement | None:
        """Energy killed runs spent since the checkpoint (their build and unfinished epoch).

        The file is left in place: it is the only record of that energy until a checkpoint
        holds it (then :meth:`clear_progress` removes it) or this run's first progress write
        replaces it with a figure that includes it (:meth:`write_progress` is atomic), so a run
        killed again before either happens loses nothing. Progress of an epoch the checkpoint
        already holds (killed between saving and clearing) is stale and removed."""
        path = self.path / PROGRESS
        if not path.exists():
            return None
        try:
            data = json.loads(read_text(path, "progress file", max_bytes=MAX_PROGRESS_BYTES))
            ok = data.get("study") == self.study and data.get("trial") == self.trial
            ok = ok and int(data["epoch"]) >= checkpoint_epoch
            spent = measurement_from_json(data["spent"], name="lost") if ok else None
        except (ValueError, KeyError, TypeError) as exc:
            raise BadInputError(f"{path} is corrupt ({exc}); delete it to resume") from None
        if spent is None:
            path.unlink()
        return spent

    def clear_progress(self) -> None:
        (self.path / PROGRESS).unlink(missing_ok=True)
