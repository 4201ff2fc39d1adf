"""A child process for the kill and Ctrl-C tests: `econas train` that freezes itself mid-epoch.

    python -m tests.final_stop_child STOP_EPOCH [work] -- train ...

progress.json is written after every batch (``CHUNK_S = 0``) and, with ``STOP_EPOCH`` >= 0,
the process stops itself (SIGSTOP) right after its first progress write in an epoch >=
``STOP_EPOCH`` (0-based): a known point inside an epoch, whatever the machine's speed, where
the parent kills or interrupts it (``os.waitpid(pid, os.WUNTRACED)`` sees it stopped). It stops
once; after SIGCONT it carries on as ``econas train`` does. With ``work``, energy is the work
done (:func:`tests.final_work_child.install_work_meter`): two runs doing the same work spend
exactly the same.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any


def main() -> int:
    stop_epoch = int(sys.argv[1])
    work = sys.argv[2] == "work"
    argv = sys.argv[sys.argv.index("--") + 1 :]
    import nas.final._run
    from nas.cli import main as cli
    from nas.final import CheckpointDir

    if work:
        from tests.final_work_child import install_work_meter

        install_work_meter(None)

    nas.final._run.CHUNK_S = 0.0  # type: ignore[misc]
    write = CheckpointDir.write_progress
    stopped = [False]

    def write_then_stop(self: Any, epoch: int, spent: Any) -> None:
        write(self, epoch, spent)
        if 0 <= stop_epoch <= epoch and not stopped[0]:
            stopped[0] = True
            os.kill(os.getpid(), signal.SIGSTOP)

    CheckpointDir.write_progress = write_then_stop  # type: ignore[method-assign]
    return cli(argv)


if __name__ == "__main__":
    raise SystemExit(main())
