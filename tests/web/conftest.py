"""A scanned benign case, users on it and off it, the app under test and, for the browser
tests, the app served by uvicorn and a headless Chromium."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from safeguard.cli import main
from safeguard.config import load_settings
from tests.helpers import png_bytes, scene
from tests.web.helpers import CHROMIUM, PASSWORD, USERS, Lab, build_evidence


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    root = tmp_path_factory.mktemp("lab")
    home = root / "home"
    run: Callable[..., int] = lambda *args: main(["--home", str(home), *map(str, args)])  # noqa: E731
    build_evidence(root / "ev")
    (root / "ev2").mkdir()
    (root / "ev2" / "x.png").write_bytes(png_bytes(scene(9)))
    assert run("case", "create", "k") == 0
    assert run("case", "create", "other") == 0
    assert run("scan", root / "ev", "--case", "k", "--workers", "1", "--json") == 0
    assert run("scan", root / "ev2", "--case", "other", "--workers", "1", "--json") == 0
    settings = load_settings(home)
    from safeguard.accounts.store import Accounts

    accounts = Accounts(settings)
    for name, (role, cases) in USERS.items():
        accounts.add_user(name, role, PASSWORD)
        for case in cases:
            accounts.grant(name, case)
    from safeguard.web.app import create_app

    return Lab(home, settings, create_app(settings))


@pytest.fixture(scope="module")
def server(lab: Lab) -> Iterator[str]:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(lab.app, host="127.0.0.1", port=port, log_level="warning")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()
