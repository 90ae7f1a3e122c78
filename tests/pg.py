"""A throwaway PostgreSQL cluster for tests: private folder, 127.0.0.1 only, trust auth.

``cluster()`` runs ``initdb`` into a temporary folder, starts the server with ``pg_ctl`` on
a free port of 127.0.0.1 (its unix socket inside the folder), yields a URL template with
``{case}`` for ``SAFEGUARD_DATABASE_URL``, and stops the server (``-m immediate``) and
deletes the folder afterwards, at interpreter exit too. As root (``initdb`` refuses root)
it runs the PostgreSQL programs as the ``postgres`` system user.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

USER = "safeguard"


class NoPostgres(RuntimeError):
    """No PostgreSQL server programs on this machine (or no user to run them as)."""


def find_bin() -> Path:
    """The folder of the newest ``initdb``/``pg_ctl``: /usr/lib/postgresql/*/bin or PATH."""
    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    initdb = shutil.which("initdb")
    if initdb:
        folder = Path(initdb).resolve().parent
        if (folder / "pg_ctl").is_file():
            return folder
    raise NoPostgres("no PostgreSQL server programs (initdb, pg_ctl) in /usr/lib/postgresql/*/bin "
                     "or PATH: install the Debian 'postgresql' package (make sysdeps)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _runner() -> tuple[list[str], int | None, int | None]:
    """The command prefix to run PostgreSQL programs, and the uid/gid owning the folder."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        raise NoPostgres("running as root and there is no 'postgres' system user to run "
                         "initdb as") from None
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    return [runuser, "-u", "postgres", "--"], pw.pw_uid, pw.pw_gid


@contextmanager
def cluster() -> Iterator[str]:
    """Start a private cluster; yield ``postgresql+psycopg://USER@127.0.0.1:PORT/safeguard_{case}``."""
    bindir = find_bin()
    prefix, uid, gid = _runner()
    root = Path(tempfile.mkdtemp(prefix="safeguard-pg-"))
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    if uid is not None:
        for path in (root, sockets):
            os.chown(path, uid, gid or -1)
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    started = False

    def stop() -> None:
        nonlocal started
        if started:
            subprocess.run([*prefix, str(bindir / "pg_ctl"), "stop", "-D", str(data),
                            "-m", "immediate", "-w"], env=env, capture_output=True, check=False)
            started = False
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)
    # a plain SIGTERM (a CI timeout, kill PID) would end Python without atexit, leaving
    # the server running: turn it into SystemExit so that the clean-up runs
    previous = None
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL):
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", USER,
                        "--auth=trust", "--encoding=UTF8", "--no-sync"],
                       env=env, capture_output=True, check=True, timeout=120)
        port = _free_port()
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        started = True
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "start", "-D", str(data), "-w",
                        "-t", "60", "-l", str(root / "server.log"), "-o", options],
                       env=env, capture_output=True, check=True, timeout=90)
        yield f"postgresql+psycopg://{USER}@127.0.0.1:{port}/safeguard_{{case}}"
    except subprocess.CalledProcessError as exc:
        log = root / "server.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"{exc.cmd[len(prefix)]} failed: {exc.stderr!r} {tail}") from None
    finally:
        stop()
        atexit.unregister(stop)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)
