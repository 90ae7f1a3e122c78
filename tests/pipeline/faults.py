"""Per-item functions that misbehave on purpose, run by the scan's worker processes.

They must live in an importable module (workers are started by the forkserver and import
the function by name). Each does the real work except for files whose name says otherwise.
"""

from __future__ import annotations

import os
import signal
import time

from safeguard.pipeline.worker import UnitResult, UnitTask, process_unit


def hang_or_crash(task: UnitTask) -> UnitResult:
    if not task.digests_only:
        if "hang" in task.path:
            time.sleep(3600)
        if "crash" in task.path:
            os.kill(os.getpid(), signal.SIGSEGV)
    return process_unit(task)


def always_crash(task: UnitTask) -> UnitResult:
    if "crash" in task.path:
        os.kill(os.getpid(), signal.SIGKILL)
    return process_unit(task)


def as_nobody(task: UnitTask) -> UnitResult:
    """Process as an unprivileged user, so root's tests can meet a permission error."""
    if os.geteuid() == 0:
        import numpy as np
        from PIL import Image

        from safeguard.signals.pdq_kernel import dihedral_rgb

        Image.init()  # import every picture plugin first: the interpreter lives under /root
        dihedral_rgb(np.zeros((8, 8, 3), np.uint8))  # and load the compiled PDQ kernels
        os.setgid(65534)
        os.setuid(65534)
    return process_unit(task)
