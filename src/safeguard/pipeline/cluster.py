"""Scans on a Dask distributed cluster (docs/cluster.md).

The driver does what it does for a local scan — enumerate, write, match — and sends the
per-item work to Dask workers in batches (``run_batch``). A worker runs each unit of a batch
in its own one-process pebble pool, so a unit that hangs or crashes a decoder meets the same
hard time limit and the same digests-only retry as on the local pool, and the Dask worker
lives on. A worker lost mid-batch (killed, out of memory, machine gone) has its batches run
elsewhere by Dask; a batch that keeps losing workers is split into single units, and a unit
that still loses its worker is retried digests-only, then recorded as an error: nothing is
lost. The driver writes every result once; a unit whose result came back already is not
counted again.

Evidence paths: a task carries the driver's absolute evidence path. ``--path-map FROM=TO`` on
``safeguard scan`` rewrites it for every worker; ``SAFEGUARD_PATH_MAP`` (set by
``safeguard worker --path-map``) rewrites it again on one worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import queue
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, CancelledError, wait
from concurrent.futures import Future as PoolFuture
from dataclasses import replace
from itertools import islice
from typing import TYPE_CHECKING, Any

from distributed import Client, Future, KilledWorker, WorkerPlugin
from pebble import ProcessPool

import safeguard
from safeguard.errors import ClusterError, one_line
from safeguard.pipeline.tasks import (
    WORKER_ENV,
    ProcessFn,
    UnitResult,
    UnitTask,
    failed,
    hard_timeout,
    outcome,
    run_unit,
    worker_init,
)

if TYPE_CHECKING:
    from safeguard.pipeline.scan import Progress, Writer

#: ``FROM=TO`` rewrites of evidence paths on one worker, separated by ``os.pathsep``
PATH_MAP_ENV = "SAFEGUARD_PATH_MAP"
CONNECT_TIMEOUT = 10.0
#: aim for batches of about this much work: long enough to hide the round trip
BATCH_SECONDS = 1.0
FIRST_BATCH = 16
MAX_BATCH = 512
BATCHES_PER_WORKER = 2

PathMap = Sequence[tuple[str, str]]


# --------------------------------------------------------------------------- driver side


def parse_path_map(entries: Sequence[str]) -> list[tuple[str, str]]:
    """``FROM=TO`` strings as pairs; a malformed one is a one-line error."""
    pairs = []
    for entry in entries:
        source, sep, target = entry.partition("=")
        if not sep or not source or not target:
            raise ClusterError(f"--path-map {entry!r}: expected FROM=TO, e.g. "
                               "/mnt/evidence=/srv/evidence")
        pairs.append((source, target))
    return pairs


def remap(path: bytes, path_map: PathMap) -> bytes:
    """The first ``FROM`` that is ``path`` or a folder above it is replaced by its ``TO``."""
    for source, target in path_map:
        prefix = os.fsencode(source).rstrip(b"/") or b"/"
        if path == prefix or path.startswith(prefix.rstrip(b"/") + b"/"):
            return os.fsencode(target).rstrip(b"/") + path[len(prefix.rstrip(b"/")):]
    return path


def connect(address: str, timeout: float = CONNECT_TIMEOUT) -> Client:
    """A client of the scheduler at ``address`` with at least one worker that runs this
    Safeguard version; every failure is one line."""
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address} ({one_line(exc)}); is `dask "
            "scheduler` running there, and is the address right?") from None
    try:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except TimeoutError:
            raise ClusterError(
                f"no worker is connected to the Dask scheduler at {address}; start one with "
                f"`safeguard worker {address}`") from None
        versions = client.run(_safeguard_version, on_error="return")
        if not all(client.run(_has_unit_pools).values()):
            client.register_plugin(UnitPools())  # once: registering again restarts them
        wrong = {addr: v for addr, v in versions.items() if v != safeguard.__version__}
        if wrong:
            addr, found = sorted(wrong.items())[0]
            what = (f"cannot import safeguard ({one_line(found)})"
                    if isinstance(found, BaseException) else f"runs safeguard {found}")
            raise ClusterError(
                f"worker {addr} {what} but this driver runs safeguard {safeguard.__version__}"
                f" ({len(wrong)} of {len(versions)} workers differ); install the same "
                "version on every worker")
    except BaseException:
        client.close()
        raise
    return client


def worker_names(client: Client) -> list[str]:
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return sorted(str(info.get("name", addr)) for addr, info in workers.items())


def _worker_count(client: Client) -> int:
    return max(1, len(client.scheduler_info(n_workers=-1)["workers"]))


def _safeguard_version() -> str:
    return safeguard.__version__


def _has_unit_pools(dask_worker: Any) -> bool:
    return UnitPools.name in dask_worker.plugins


class _WorkerCount:
    """The cluster's worker processes, asked of the scheduler every few seconds."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.asked = -1e9
        self.count = 1

    def __call__(self) -> int:
        if time.monotonic() - self.asked >= 2.0:
            self.count = _worker_count(self.client)
            self.asked = time.monotonic()
        return self.count


class _BatchSizer:
    """Batches of about ``BATCH_SECONDS`` of work, by the work seen so far; never so large
    that the last batches leave workers idle."""

    def __init__(self) -> None:
        self.per_unit: float | None = None

    def observe(self, units: int, seconds: float) -> None:
        if units:
            sample = seconds / units
            self.per_unit = sample if self.per_unit is None else 0.7 * self.per_unit + 0.3 * sample

    def size(self, remaining: int, workers: int) -> int:
        wanted = FIRST_BATCH if not self.per_unit else round(BATCH_SECONDS / self.per_unit)
        fair = -(-remaining // (workers * BATCHES_PER_WORKER))  # ceil: spread the tail
        return max(1, min(wanted, MAX_BATCH, fair))


def run_cluster(
    client: Client, writer: Writer, tasks: Iterator[UnitTask], progress: Progress,
    process: ProcessFn = run_unit, path_map: PathMap = (),
) -> None:
    """Run ``tasks`` on the cluster's workers; every result goes to ``writer``, once."""
    sizer = _BatchSizer()
    worker_count = _WorkerCount(client)
    finished: queue.SimpleQueue[Future] = queue.SimpleQueue()
    inflight: dict[Future, list[UnitTask]] = {}
    again: deque[list[UnitTask]] = deque()  # batches to send again, as single units
    pending: set[int] = set()  # units sent whose result has not been kept yet
    submitted = 0
    exhausted = False

    def submit(batch: list[UnitTask]) -> None:
        future = client.submit(run_batch, batch, process, pure=False)
        future.add_done_callback(finished.put)
        inflight[future] = batch

    def keep(results: list[UnitResult]) -> None:
        for result in results:
            if result.item_id in pending:
                pending.discard(result.item_id)
                writer.results.append(result)

    try:
        while inflight or again or not exhausted:
            workers = worker_count()
            while len(inflight) < workers * BATCHES_PER_WORKER and (again or not exhausted):
                if again:
                    submit(again.popleft())
                    continue
                size = sizer.size(progress.total - submitted, workers)
                batch = [replace(task, evidence=remap(task.evidence, path_map))
                         for task in islice(tasks, size)]
                if not batch:
                    exhausted = True
                    break
                submitted += len(batch)
                pending.update(task.item_id for task in batch)
                submit(batch)
            try:
                done = [finished.get(timeout=0.5)]
            except queue.Empty:
                done = []
            while not finished.empty():
                done.append(finished.get())
            for future in done:
                batch = inflight.pop(future)
                if future.status == "finished":
                    results, seconds = future.result()
                    sizer.observe(len(batch), seconds)
                    keep(results)
                else:
                    keep(_lost(future, batch, again, client))
            writer.maybe_flush()
    finally:
        if inflight:
            client.cancel(list(inflight))


def _lost(future: Future, batch: list[UnitTask], again: deque[list[UnitTask]],
          client: Client) -> list[UnitResult]:
    """A batch that did not come back: its units are sent again one by one; a single unit
    goes the way of a unit whose worker crashed (digests-only retry, then an error)."""
    try:
        exc = future.exception()
    except CancelledError:
        exc = None
    if exc is None or client.status != "running":
        raise ClusterError(
            f"lost the connection to the Dask scheduler at "
            f"{getattr(client.scheduler, 'address', None)}; what "
            "finished is written: run the same command again to resume")
    if len(batch) > 1:
        again.extend([task] for task in batch)
        return []
    if isinstance(exc, KilledWorker):
        reason = "worker lost while running it (Dask KilledWorker)"
    else:
        reason = f"internal error: {type(exc).__name__}: {one_line(exc)}"
    results: list[UnitResult] = []
    retry = failed(batch[0], reason, results)
    if retry is not None:
        again.append([retry])
    return results


# --------------------------------------------------------------------------- worker side

_POOL: ProcessPool | None = None
_POOL_LOCK = threading.Lock()


def run_batch(tasks: list[UnitTask],
              process: ProcessFn = run_unit) -> tuple[list[UnitResult], float]:
    """The Dask task: every unit of ``tasks``, each in this worker's unit pool, with the
    local pool's time limit and digests-only retry. Returns the results and the seconds."""
    started = time.perf_counter()
    local_map = parse_path_map(
        [e for e in os.environ.get(PATH_MAP_ENV, "").split(os.pathsep) if e])
    results: list[UnitResult] = []
    runnable = []
    found: dict[bytes, bool] = {}
    for task in tasks:
        task = replace(task, evidence=remap(task.evidence, local_map))
        if task.evidence not in found:
            found[task.evidence] = os.path.exists(task.evidence)
        if found[task.evidence]:
            runnable.append(task)
        else:
            results.append(UnitResult(task.item_id, [{"status": "error", "error": (
                f"evidence not found on worker {socket.gethostname()}: "
                f"{os.fsdecode(task.evidence)}; use --path-map")}]))
    pool = _unit_pool()
    inflight: dict[PoolFuture[UnitResult], UnitTask] = {
        pool.schedule(process, (task,), timeout=hard_timeout(task)): task for task in runnable}
    while inflight:
        done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
        for future in done:
            task = inflight.pop(future)
            retry = outcome(future, task, results)
            if retry is not None:
                inflight[pool.schedule(process, (retry,), timeout=hard_timeout(retry))] = retry
    return results, time.perf_counter() - started


def _unit_pool() -> ProcessPool:
    """This worker's one-process pool (the Dask worker runs one task at a time), started
    from a forkserver that has imported the decoders once."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or not _POOL.active:
            # over Dask's own MALLOC_TRIM_THRESHOLD_=65536 (its nanny sets it for every
            # worker): decodes under it cost a third more time in page faults
            os.environ.update(WORKER_ENV)
            # a Nanny's worker is a daemon process by default, and daemons may not start
            # processes; the unit pool's processes die with this one (PR_SET_PDEATHSIG)
            multiprocessing.current_process()._config["daemon"] = False  # type: ignore[attr-defined]
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["safeguard.pipeline.worker"])
            _POOL = ProcessPool(max_workers=1, context=context, initializer=_unit_worker_init)
        return _POOL


def _unit_worker_init() -> None:
    worker_init()
    # Linux: die with the forkserver, which exits when the Dask worker dies
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class UnitPools(WorkerPlugin):
    """Registered by the driver on every worker: starts the unit pool before the first
    batch arrives and stops it with the worker."""

    name = "safeguard-unit-pool"

    def setup(self, worker: Any) -> None:
        # in the background: the worker's event loop must keep answering the scheduler
        threading.Thread(target=_unit_pool, name="unit-pool-boot", daemon=True).start()

    def teardown(self, worker: Any) -> None:
        _stop_pool()


def _stop_pool() -> None:
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None:
            _POOL.stop()
            _POOL.join(timeout=2)
            _POOL = None


def describe(address: str, names: list[str]) -> dict[str, Any]:
    """What the audit log records of the cluster a scan ran on."""
    return {"cluster": address, "cluster_workers": names}

