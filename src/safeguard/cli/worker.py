"""``safeguard worker SCHEDULER_ADDRESS``: a Dask worker with Safeguard's settings, for
``safeguard scan --cluster`` (docs/cluster.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Annotated

import typer

from safeguard.cli.common import err


def worker_command(address: str, nworkers: int, name: str | None) -> list[str]:
    """Dask's own worker: one nanny per process, one thread each (the decoders and hashing
    hold the GIL for parts of their work), no dashboard (nothing listens beyond Dask)."""
    command = [sys.executable, "-m", "distributed.cli.dask_worker", address,
               "--nworkers", str(nworkers), "--nthreads", "1", "--no-dashboard",
               "--preload", "safeguard.pipeline.cluster"]
    if name:
        command += ["--name", name]
    return command


def worker_environment(path_map: list[tuple[str, str]]) -> dict[str, str]:
    from safeguard.pipeline.cluster import PATH_MAP_ENV
    from safeguard.pipeline.scan import WORKER_ENV

    env = {**os.environ, **WORKER_ENV,
           # the unit pool starts processes: a daemon worker process may not
           "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    if path_map:
        env[PATH_MAP_ENV] = os.pathsep.join(f"{src}={dst}" for src, dst in path_map)
    return env


def worker_cmd(
    address: Annotated[str, typer.Argument(
        metavar="SCHEDULER_ADDRESS", help="The Dask scheduler, e.g. tcp://10.0.0.5:8786.")],
    nworkers: Annotated[int | None, typer.Option(
        "--nworkers", min=1, show_default=False,
        help="Worker processes, one item at a time each (default: all cores).")] = None,
    path_map: Annotated[list[str] | None, typer.Option(
        "--path-map", show_default=False, metavar="FROM=TO",
        help="Read evidence at TO where the driver sees FROM (repeatable; after the "
             "scan's own --path-map).")] = None,
    name: Annotated[str | None, typer.Option(
        "--name", show_default=False,
        help="Worker name in the scheduler and the audit log (default: Dask's).")] = None,
) -> None:
    """Serve `safeguard scan --cluster` from this machine until Ctrl-C."""
    from safeguard.pipeline.cluster import parse_path_map

    pairs = parse_path_map(path_map or [])
    count = nworkers or os.cpu_count() or 1
    err.print(f"safeguard worker: {count} process(es) for {address}; Ctrl-C stops",
              markup=False)
    # its own process group: Ctrl-C and SIGTERM reach it once, through us
    proc = subprocess.Popen(worker_command(address, count, name),
                            env=worker_environment(pairs), process_group=0)
    previous = signal.signal(signal.SIGTERM, lambda *_: proc.send_signal(signal.SIGTERM))
    try:
        code = proc.wait()
    except KeyboardInterrupt:  # let the worker leave the cluster, handing its work back
        proc.send_signal(signal.SIGINT)
        code = proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    raise typer.Exit(code if code >= 0 else 128 - code)
