"""Shared fixtures: a throwaway Safeguard home, the CLI run in-process, a graded benign case and
a PostgreSQL cluster. Helpers (benign pictures, the CLI's result, the shared test data) are in
``tests/helpers.py``."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from safeguard.cli import main
from tests.exports.helpers import graded_case
from tests.helpers import CliResult

# A suite started in the background by a non-interactive shell (`make test &`, nohup) inherits
# SIGINT ignored, and so would every process a test starts: the tests that press Ctrl-C on a
# scan or a worker need it delivered. Restored here, so children start with the default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def cli(home: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(["--home", str(home), *map(str, args)])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def graded(cli: Callable[..., CliResult], home: Path, tmp_path: Path) -> dict:
    """Case k, scanned and graded by two reviewers, for the export and report tests (what it
    holds: :func:`tests.exports.helpers.graded_case`)."""
    return graded_case(cli, home, tmp_path)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A private PostgreSQL cluster for the session, started on first request: a URL
    template with ``{case}`` for SAFEGUARD_DATABASE_URL. Skipped without PostgreSQL's
    programs, except in CI (``CI`` set), where their absence fails."""
    from tests.pg import NoPostgres, cluster

    try:
        context = cluster()
        url = context.__enter__()
    except NoPostgres as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(str(exc))
    try:
        yield url
    finally:
        context.__exit__(None, None, None)
