"""A child process for the resume tests: `econas train` metered by the work it does.

    python -m tests.final_work_child LOG STOP_AT_EPOCH -- train ...

The meter counts the elements every leaf module outputs (forward passes, training and
evaluation alike): a figure that grows with the work done and, unlike CPU time on a shared
machine, not with the load. Every closed ``phase:train`` window is appended to ``LOG`` (JSON
lines). With ``STOP_AT_EPOCH`` > 0 the process stops itself (SIGSTOP) right after that epoch's
checkpoint is written, so the parent can SIGKILL it at a known point.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any


def install_work_meter(log_path: str | None) -> None:
    """Every meter econas creates from now on counts work (module docstring); closed
    ``phase:train`` windows are appended to ``log_path`` when given."""
    import torch
    from torch import nn

    import nas.energy

    done = [0]

    def count(module: nn.Module, _args: Any, out: Any) -> None:
        if not module._modules and isinstance(out, torch.Tensor):
            done[0] += out.numel()

    nn.modules.module.register_module_forward_hook(count)

    class WorkMeter(nas.energy.Meter):
        source, kind, hardware = "estimate", "estimated", "work counter (tests)"

        def _begin(self, name: str) -> Any:
            return done[0]

        def _end(self, name: str, token: Any) -> tuple[dict[str, float], dict[str, Any]]:
            units = done[0] - token
            if name == "phase:train" and log_path is not None:
                with open(log_path, "a") as f:
                    f.write(json.dumps({"work": units}) + "\n")
            return {"cpu": units * 1e-6}, {"work_units": units, "scope": "process"}

    nas.energy.create_meter = lambda *a, **k: WorkMeter()  # type: ignore[assignment]


def main() -> int:
    log_path, stop_at = sys.argv[1], int(sys.argv[2])
    argv = sys.argv[4:]
    from nas.cli import main as cli
    from nas.final import CheckpointDir

    install_work_meter(log_path)
    save = CheckpointDir.save

    def save_then_stop(self: Any, ckpt: Any) -> None:
        save(self, ckpt)
        if stop_at and ckpt.epoch == stop_at and not ckpt.complete:
            os.kill(os.getpid(), signal.SIGSTOP)

    CheckpointDir.save = save_then_stop  # type: ignore[method-assign]
    return cli(argv)


if __name__ == "__main__":
    raise SystemExit(main())
