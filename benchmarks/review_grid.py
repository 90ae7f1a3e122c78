"""The review grid (issue 21): the grid page of 200 blurred thumbnails against the series page
of the same 200 items, served and rendered in headless Chromium (time until every thumbnail has
loaded), and grading 1,000 items through the API one by one against in selections of 120 (a
grid page). Benign generated pictures only (tests/helpers.scene), small so the scans are quick.

    .venv/bin/python benchmarks/review_grid.py              # reps 3, about a minute
    .venv/bin/python benchmarks/review_grid.py --reps 1

Needs the system Chromium (/usr/bin/chromium) and Playwright, as tests/web/test_e2e.py.
Prints the machine, a table of medians and the ratios; timings are never test assertions.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests.helpers: the benign picture generator
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery"
SELECTION = 120


def build(home: Path, root: Path) -> Any:
    """Case ``one``: 200 near-copies of one picture (one series of 200 items); case
    ``many``: 1,000 distinct small pictures. One reviewer on both. Returns the app."""

    from tests.helpers import jpeg_bytes, scene

    from safeguard.accounts.store import Accounts
    from safeguard.cli import main
    from safeguard.config import load_settings
    from safeguard.web.app import create_app

    base = scene(7, (96, 64))
    (root / "one").mkdir()
    for n in range(200):  # one pixel differs: near-duplicates, grouped into one series
        copy = base.copy()
        copy.putpixel((n % 96, n // 96), (255, 255, 255))
        (root / "one" / f"c{n:03d}.jpg").write_bytes(jpeg_bytes(copy))
    (root / "many").mkdir()
    for n in range(1000):
        (root / "many" / f"p{n:04d}.jpg").write_bytes(jpeg_bytes(scene(1000 + n, (32, 24))))
    for case in ("one", "many"):
        assert main(["--home", str(home), "case", "create", case]) == 0
        assert main(["--home", str(home), "scan", str(root / case), "--case", case,
                     "--json"]) == 0
    settings = load_settings(home)
    accounts = Accounts(settings)
    accounts.add_user("rev", "reviewer", PASSWORD)
    for case in ("one", "many"):
        accounts.grant("rev", case)
    return settings, create_app(settings)


def serve(app: Any) -> tuple[str, Any, threading.Thread]:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


def page_times(base: str, urls: dict[str, str], reps: int) -> dict[str, list[float]]:
    """Seconds from navigation to every thumbnail loaded (a viewport tall enough that lazy
    images all load), per page."""
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {name: [] for name in urls}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        context = browser.new_context(viewport={"width": 1400, "height": 12000})
        page = context.new_page()
        page.goto(f"{base}/login")
        page.fill('input[name="name"]', "rev")
        page.fill('input[name="password"]', PASSWORD)
        page.click('button[type="submit"]')
        page.wait_for_url(f"{base}/")
        for _ in range(reps):
            for name, url in urls.items():
                start = time.perf_counter()
                page.goto(base + url)
                page.wait_for_function(
                    "() => { const i = Array.from(document.querySelectorAll("
                    "'#grid img, #items img')); return i.length === 200 && "
                    "i.every(x => x.complete && x.naturalWidth > 0); }", timeout=120_000)
                out[name].append(time.perf_counter() - start)
        browser.close()
    return out


def grading_rates(app: Any, settings: Any, reps: int) -> dict[str, list[float]]:
    """Items/s grading case ``many``'s 1,000 items through the API: one request per item,
    and one per selection of SELECTION items."""
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from safeguard.store.cases import open_case
    from safeguard.store.models import Item

    with open_case(settings, "many").engine.connect() as conn:
        ids = sorted(conn.execute(select(Item.id)).scalars())
    client = TestClient(app)
    csrf = client.post("/api/v1/session", json={"name": "rev", "password": PASSWORD}).json()
    headers = {"X-CSRF-Token": csrf["csrf"]}
    url = "/api/v1/cases/many/grades"
    out: dict[str, list[float]] = {"one by one": [], f"selections of {SELECTION}": []}
    for _ in range(reps):
        start = time.perf_counter()
        for item in ids:
            r = client.post(url, json={"category": "not-indecent", "items": [item]},
                            headers=headers)
            assert r.status_code == 200, r.text
        out["one by one"].append(len(ids) / (time.perf_counter() - start))
        start = time.perf_counter()
        for at in range(0, len(ids), SELECTION):
            r = client.post(url, json={"category": "not-indecent",
                                       "items": ids[at:at + SELECTION]}, headers=headers)
            assert r.status_code == 200, r.text
        out[f"selections of {SELECTION}"].append(len(ids) / (time.perf_counter() - start))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="sg-grid-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        settings, app = build(root / "home", root)
        print(f"corpus and scans: {time.perf_counter() - t0:.1f} s")
        from safeguard.store.cases import open_case
        from safeguard.triage.queue import queue

        series = queue(open_case(settings, "one"), settings, limit=1)[0].series_id
        base, server, thread = serve(app)
        try:
            pages = page_times(base, {"grid (200 per page)": "/cases/one/grid?size=200",
                                      "series page": f"/cases/one/series/{series}"},
                               args.reps)
        finally:
            server.should_exit = True
            thread.join(10)
        rates = grading_rates(app, settings, args.reps)
    print(f"\n| page, 200 thumbnails | median s to all loaded (reps {args.reps}) |")
    print("|---|---|")
    for name, times in pages.items():
        print(f"| {name} | {statistics.median(times):.2f} |")
    grid_s, series_s = (statistics.median(v) for v in pages.values())
    print(f"\nseries page / grid: {series_s / grid_s:.2f}x")
    print(f"\n| grading 1,000 items through the API | median items/s (reps {args.reps}) |")
    print("|---|---|")
    for name, values in rates.items():
        print(f"| {name} | {statistics.median(values):.0f} |")
    one, many = (statistics.median(v) for v in rates.values())
    print(f"\nselections / one by one: {many / one:.1f}x")


if __name__ == "__main__":
    main()
