"""Kill a training process with SIGKILL at a checkpoint the test chooses, without racing it.

The process is frozen (SIGSTOP) before each look at its newest checkpoint, so the checkpoint on disk cannot
move between the look and the kill, however fast the machine trains."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable


def kill_at_checkpoint(proc: subprocess.Popen, run_dir: Path, wanted: Callable[[int], bool], timeout: float = 300,
                       group: bool = False) -> int:
    """SIGKILL `proc` once its newest checkpoint step satisfies `wanted`; return that step.

    group=True signals the process's whole session (start it with start_new_session=True): torchrun
    and the training processes it started."""
    send = (lambda sig: os.killpg(proc.pid, sig)) if group else (lambda sig: os.kill(proc.pid, sig))  # noqa: E731
    latest = run_dir / "checkpoints" / "latest.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        send(signal.SIGSTOP)
        step = json.loads(latest.read_text())["step"] if latest.exists() else -1
        if step >= 0 and wanted(step):
            send(signal.SIGKILL)
            proc.wait()
            assert proc.returncode == -signal.SIGKILL
            assert json.loads(latest.read_text())["step"] == step
            return step
        send(signal.SIGCONT)
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before a wanted checkpoint (last seen: step {step})"
        time.sleep(0.002)
    proc.kill()
    raise AssertionError(f"no wanted checkpoint within {timeout} s")


@contextmanager
def stopped_on_exit(*procs: subprocess.Popen):
    """Kill whichever of `procs` still runs when the block ends: a failed assertion leaves no training behind."""
    try:
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
