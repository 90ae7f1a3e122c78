"""Scans on a Dask cluster (a LocalCluster of two worker processes) end exactly as local
scans do: the same items, with a worker or the driver killed midway, with remapped paths."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from safeguard.config import Limits, load_settings
from safeguard.errors import ClusterError
from safeguard.pipeline.cluster import parse_path_map, remap
from safeguard.pipeline.scan import scan
from safeguard.store.cases import create_case, open_case
from safeguard.store.summary import iter_items
from tests.helpers import jpeg_bytes, png_bytes, scene
from tests.pipeline import cluster_faults, faults
from tests.pipeline.helpers import finished_units, kill_when

distributed = pytest.importorskip("distributed")

LIMITS = Limits()
FIELDS = ("type", "md5", "sha256", "pdq", "status", "error", "container")


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[distributed.LocalCluster]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        yield cluster


@pytest.fixture
def settings(tmp_path: Path):
    return load_settings(tmp_path / "home")


def build_evidence(root: Path, pictures: int = 12) -> Path:
    root.mkdir()
    for n in range(pictures):
        folder = root / f"d{n % 3}"
        folder.mkdir(exist_ok=True)
        if n % 2:
            (folder / f"p{n}.png").write_bytes(png_bytes(scene(n, (96, 72))))
        else:
            (folder / f"j{n}.jpg").write_bytes(jpeg_bytes(scene(n, (320, 240))))
    (root / "truncated.jpg").write_bytes(jpeg_bytes(scene(500, (640, 480)))[:2500])
    (root / "notes.txt").write_bytes(b"meeting notes\n")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n in range(5):
            zf.writestr(f"album/{n}.png", png_bytes(scene(1000 + n, (64, 48))))
    (root / "album.zip").write_bytes(buf.getvalue())
    return root


def items_of(case) -> dict[str, tuple]:
    return {r["path"]: tuple(r[k] for k in FIELDS) for r in iter_items(case)}


def local_items(settings, evidence: Path, name: str = "local", **kw) -> dict[str, tuple]:
    case = create_case(settings, name)
    scan(case, evidence, LIMITS if "limits" not in kw else kw.pop("limits"), workers=2, **kw)
    return items_of(case)


def test_cluster_scan_equals_local_scan(tmp_path: Path, settings, dask_cluster) -> None:
    evidence = build_evidence(tmp_path / "evidence")
    case = create_case(settings, "cluster")
    summary = scan(case, evidence, LIMITS, cluster=dask_cluster.scheduler_address)
    got = items_of(case)
    assert got == local_items(settings, evidence)
    assert summary.units == 15 and summary.items == 20
    assert got["truncated.jpg"][4] == "error"
    assert got["album.zip!album/3.png"][6] == "album.zip"
    assert not list(iter_items(case, status="pending"))
    events = [e for e in _audit(case) if e[0] == "scan.started"]
    details = events[0][1]
    assert details["cluster"] == dask_cluster.scheduler_address
    assert len(details["cluster_workers"]) == details["workers"] == 2


def _audit(case) -> list[tuple[str, dict]]:
    import json

    from sqlalchemy import select

    from safeguard.store.models import AuditEvent

    with case.engine.connect() as conn:
        rows = conn.execute(select(AuditEvent.action, AuditEvent.details)
                            .order_by(AuditEvent.seq)).all()
    return [(a, json.loads(d) if isinstance(d, str) else d) for a, d in rows]


def test_hang_on_a_cluster_worker_gets_the_local_record(tmp_path: Path, settings,
                                                        dask_cluster) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    for name in ("ok.png", "hang.png", "crash.png", "ok2.png"):
        (evidence / name).write_bytes(png_bytes(scene(len(name))))
    limits = dataclasses.replace(LIMITS, item_timeout=2.0, timeout_per_mib=0.0)
    case = create_case(settings, "cluster")
    scan(case, evidence, limits, cluster=dask_cluster.scheduler_address,
         process=faults.hang_or_crash)
    got = items_of(case)
    assert got == local_items(settings, evidence, limits=limits, process=faults.hang_or_crash)
    assert got["hang.png"][5] == "timed out after 2 s (worker stopped); digests only"
    assert got["crash.png"][5] == "worker crashed (exit code -11); digests only"
    assert got["hang.png"][1] is not None


def test_path_map_remaps_evidence_for_workers(tmp_path: Path, settings, dask_cluster) -> None:
    evidence = build_evidence(tmp_path / "evidence", pictures=4)
    # the driver sees the evidence at 'driver-view', the workers at 'evidence'
    driver_view = tmp_path / "driver-view"
    driver_view.mkdir()
    for path in evidence.rglob("*"):
        target = driver_view / path.relative_to(evidence)
        if path.is_dir():
            target.mkdir()
        else:
            target.write_bytes(path.read_bytes())
    case = create_case(settings, "mapped")
    # the copy the driver enumerated is removed: workers can only read through the map
    scan_path = tmp_path / "enumerated"
    driver_view.rename(scan_path)
    scan(case, scan_path, LIMITS, cluster=dask_cluster.scheduler_address,
         path_map=[(str(scan_path), str(evidence))])
    mapped = items_of(case)
    assert all(v[4] != "pending" for v in mapped.values())
    assert mapped == local_items(settings, evidence)

    case = create_case(settings, "unmapped")
    scan(case, evidence, LIMITS, cluster=dask_cluster.scheduler_address,
         path_map=[(str(evidence), str(tmp_path / "nowhere"))])
    errors = {v[5] for v in items_of(case).values() if v[4] == "error"}
    assert any(e.startswith("evidence not found on worker ") and
               e.endswith(f"{tmp_path / 'nowhere'}; use --path-map") for e in errors)


def test_path_map_parsing() -> None:
    pairs = parse_path_map(["/mnt/ev=/srv/evidence", "/a/=/b"])
    assert remap(b"/mnt/ev/case 1", pairs) == b"/srv/evidence/case 1"
    assert remap(b"/mnt/ev", pairs) == b"/srv/evidence"
    assert remap(b"/mnt/evidence2/x", pairs) == b"/mnt/evidence2/x"
    assert remap(b"/a/x", pairs) == b"/b/x"
    with pytest.raises(ClusterError, match="expected FROM=TO"):
        parse_path_map(["/mnt/ev"])


def test_workers_of_another_version_are_refused(dask_cluster, monkeypatch) -> None:
    import safeguard
    from safeguard.pipeline.cluster import connect

    monkeypatch.setattr(safeguard, "__version__", "0.0.0-driver")
    with pytest.raises(ClusterError, match=r"runs safeguard .* but this driver runs "
                                           r"safeguard 0\.0\.0-driver \(2 of 2 workers"):
        connect(dask_cluster.scheduler_address)


def test_unreachable_scheduler_is_one_line(tmp_path: Path, cli) -> None:
    evidence = build_evidence(tmp_path / "evidence", pictures=1)
    assert cli("case", "create", "c").code == 0
    result = cli("scan", evidence, "--case", "c", "--cluster", "tcp://127.0.0.1:1")
    assert result.code != 0
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: cannot reach the Dask scheduler at tcp://127.0.0.1:1"), result.err
    both = cli("scan", evidence, "--case", "c", "--cluster", "tcp://127.0.0.1:1",
               "--workers", "2")
    assert both.code != 0 and both.err.startswith("error: --workers is for a local scan")


@pytest.mark.slow
def test_worker_killed_mid_scan_loses_nothing(tmp_path: Path, settings, dask_cluster) -> None:
    evidence = build_evidence(tmp_path / "evidence", pictures=120)
    client = distributed.Client(dask_cluster, set_as_default=False)
    pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]
    case = create_case(settings, "cluster")
    killed = threading.Event()

    def kill_once_some_are_written() -> None:
        deadline = time.monotonic() + 120
        while finished_units(case.db_path) < 20:
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        os.kill(victim, signal.SIGKILL)
        killed.set()

    killer = threading.Thread(target=kill_once_some_are_written, daemon=True)
    killer.start()
    summary = scan(case, evidence, LIMITS, cluster=dask_cluster.scheduler_address,
                   process=cluster_faults.slow)
    killer.join()
    assert killed.is_set(), "the scan finished before a worker could be killed"
    assert summary.units == 123
    assert not list(iter_items(case, status="pending"))
    assert items_of(case) == local_items(settings, evidence)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next tests
    client.close()


@pytest.mark.slow
def test_driver_killed_resumes(tmp_path: Path, settings, home: Path, dask_cluster) -> None:
    evidence = build_evidence(tmp_path / "evidence", pictures=400)
    settings = load_settings(home)
    create_case(settings, "killed")
    command = [sys.executable, "-m", "safeguard", "--home", str(home), "scan", str(evidence),
               "--case", "killed", "--cluster", dask_cluster.scheduler_address, "--json"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    db = open_case(settings, "killed").db_path
    at_kill = kill_when(proc, db, 40)
    assert 40 <= at_kill < 403
    rerun = subprocess.run(command, capture_output=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr.decode()
    case = open_case(settings, "killed")
    assert not list(iter_items(case, status="pending"))
    assert items_of(case) == local_items(settings, evidence)


def _worker_settings(dask_worker) -> dict:
    from safeguard.pipeline.cluster import PATH_MAP_ENV

    return {"path_map": os.environ.get(PATH_MAP_ENV),
            "malloc": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
            "nthreads": dask_worker.state.nthreads}


@pytest.mark.slow
def test_safeguard_worker_joins_with_its_settings_and_leaves(tmp_path: Path,
                                                             dask_cluster) -> None:
    address = dask_cluster.scheduler_address
    proc = subprocess.Popen(
        [sys.executable, "-m", "safeguard", "worker", address, "--nworkers", "1",
         "--name", "extra", "--path-map", "/mnt/ev=/srv/ev"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = distributed.Client(address, set_as_default=False)
    try:
        deadline = time.monotonic() + 120
        extra = None
        while extra is None:
            assert proc.poll() is None and time.monotonic() < deadline
            workers = client.scheduler_info(n_workers=-1)["workers"]
            extra = next((a for a, w in workers.items() if w.get("name") == "extra"), None)
            time.sleep(0.2)
        got = client.run(_worker_settings, workers=[extra])[extra]
        assert got == {"path_map": "/mnt/ev=/srv/ev", "malloc": "268435456", "nthreads": 1}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        client.close()


def test_disk_image_layers_on_the_cluster_equal_a_local_scan(
    tmp_path: Path, settings, dask_cluster
) -> None:
    """Items only a disk image's walk reaches (a shadow copy's file, an APFS volume's files,
    a logical volume's files and a picture carved from its free space) are reopened by the
    cluster's workers from their locators exactly as local workers do."""
    import gzip

    from tests.evidence.system_tools import run

    data = Path(__file__).parents[1] / "evidence" / "data"
    evidence = tmp_path / "images"
    evidence.mkdir()
    (tmp_path / "vss.qcow2").write_bytes(gzip.decompress((data / "vsstest.qcow2.gz").read_bytes()))
    run("qemu-img", "convert", "-O", "qcow2", tmp_path / "vss.qcow2", evidence / "vss.qcow2")
    (tmp_path / "lvm.qcow2").write_bytes(gzip.decompress((data / "lvmtest.qcow2.gz").read_bytes()))
    run("qemu-img", "convert", "-O", "raw", tmp_path / "lvm.qcow2", tmp_path / "lvm.raw")
    lvm = bytearray((tmp_path / "lvm.raw").read_bytes())
    picture = jpeg_bytes(scene(83))
    lvm[12 * 1024 * 1024:12 * 1024 * 1024 + len(picture)] = picture  # lv_test2's free space
    apfs = gzip.decompress((data / "apfs.raw.gz").read_bytes())
    for name, image in (("lvm.raw", bytes(lvm)), ("apfs.raw", apfs)):
        (evidence / name).write_bytes(image)
    for name in ("vss.qcow2", "lvm.raw", "apfs.raw"):
        case = create_case(settings, f"cluster-{name.replace('.', '-')}")
        scan(case, evidence / name, LIMITS, cluster=dask_cluster.scheduler_address)
        got = items_of(case)
        assert got == local_items(settings, evidence / name, f"local-{name.replace('.', '-')}")
        assert not [p for p, r in got.items() if r[4] == "pending"]
        if name == "vss.qcow2":
            assert got["vss1/syslog"][2] == (
                "0420b023f8dc1b71ff25191ce4ce88d10028f99f99f7c21532611f4c273aeae9")
        elif name == "lvm.raw":
            carved = "$Carved/vg_test/lv_test2/unallocated/0x000000300000.jpg"
            assert got[carved][2] == hashlib.sha256(picture).hexdigest()
        else:
            assert got["apfs_test/passwords.txt"][2] == (
                "02a2a6af2f1ecf4720d7d49d640f0d0a269a7ec733e41973bdd34f09dad0e252")
