"""The web tests' helpers: a benign evidence folder, the users of the lab, a browser with the
login dance and the CSRF token at hand, and look-ups in the scanned case."""

from __future__ import annotations

import io
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from safeguard.config import Settings
from tests.helpers import PDQ_REF, jpeg_bytes, png_bytes, scene, small_video
from tests.provenance.exif_builder import camera_jpeg

#: the system Chromium the browser tests drive (make test installs it)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "correct horse battery"
USERS = {  # name: (role, cases)
    "admin": ("admin", ()),
    "exa": ("examiner", ("k",)),
    "rev1": ("reviewer", ("k",)),
    "rev2": ("reviewer", ("k",)),
    "aud": ("auditor", ("k",)),
    "outsider": ("reviewer", ("other",)),
}


def build_evidence(root: Path) -> None:
    """Benign pictures: one series of copies, a camera photo, two other pictures, a short
    generated video, a text."""
    root.mkdir()
    base = scene(1, (480, 360))
    (root / "a.jpg").write_bytes(jpeg_bytes(base))
    (root / "a-small.jpg").write_bytes(jpeg_bytes(base.resize((240, 180))))
    (root / "a-mirror.png").write_bytes(png_bytes(base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    photo = Image.open(PDQ_REF / "bridge-mods" / "aaa-orig.jpg")
    photo.load()
    (root / "camera.jpg").write_bytes(camera_jpeg(photo, thumbnail=photo))
    (root / "b.png").write_bytes(png_bytes(scene(2)))
    (root / "<img src=x onerror=alert(1)>.png").write_bytes(png_bytes(scene(3)))
    (root / "notes.txt").write_text("a note, not a picture")
    (root / "clip.mp4").write_bytes(small_video())


@dataclass
class Lab:
    home: Path
    settings: Settings
    app: object
    clients: int = 0

    def client(self, name: str | None = None, https: bool = False) -> Client:
        """A new browser, from an address of its own (sign-in limits count per address)."""
        self.clients += 1
        address = (f"10.0.{self.clients // 250}.{self.clients % 250 + 1}", 50000)
        client = Client(TestClient(self.app, base_url="https://testserver" if https
                                   else "http://testserver", follow_redirects=False,
                                   client=address), address[0])
        if name:
            client.login(name)
        return client


class Client:
    """A TestClient with the login dance and the CSRF token at hand."""

    def __init__(self, http: TestClient, address: str = "testclient") -> None:
        self.http = http
        self.csrf = ""
        self.address = address  # the client address the app sees

    def login(self, name: str, password: str = PASSWORD) -> object:
        page = self.http.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        response = self.http.post("/login", data={"name": name, "password": password,
                                                   "csrf": token})
        if response.status_code == 303:
            me = self.http.get("/api/v1/me")
            self.csrf = me.json()["csrf"]
        return response

    def get(self, url: str, **kw: object) -> object:
        return self.http.get(url, **kw)

    def post(self, url: str, data: dict | None = None, csrf: bool = True,
             **kw: object) -> object:
        if data is not None:
            data = {**data, **({"csrf": self.csrf} if csrf else {})}
            return self.http.post(url, data=data, **kw)
        headers = {"X-CSRF-Token": self.csrf} if csrf else {}
        return self.http.post(url, headers=headers, **kw)

    def api(self, method: str, url: str, csrf: bool = True, **kw: object) -> object:
        headers = {"X-CSRF-Token": self.csrf} if csrf else {}
        return self.http.request(method, url, headers=headers, **kw)


def item_ids(lab: Lab, case: str = "k") -> dict[str, int]:
    from sqlalchemy import select

    from safeguard.store.cases import open_case
    from safeguard.store.models import Item

    with open_case(lab.settings, case).engine.connect() as conn:
        return dict(conn.execute(select(Item.path, Item.id)).all())  # type: ignore[arg-type]


def series_of(lab: Lab, path: str, case: str = "k") -> int:
    """The series (its id) of the item at ``path``: series are built when the queue is first
    read."""
    from safeguard.store.cases import open_case
    from safeguard.triage.series import ensure_series

    opened = open_case(lab.settings, case)
    ensure_series(opened)
    with opened.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT series_id FROM series WHERE item_id = ?",
                                        (item_ids(lab, case)[path],)).scalar_one())


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def sign_in(browser: object, base: str, name: str) -> object:
    page = browser.new_context().new_page()  # type: ignore[attr-defined]
    page.goto(f"{base}/login")
    page.fill('input[name="name"]', name)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{base}/")
    return page


def reveals(lab: Lab) -> list[tuple[str, str]]:
    from safeguard.store.cases import open_case

    with open_case(lab.settings, "k").engine.connect() as conn:
        return [(a, json.loads(d).get("what", "")) for a, d in conn.exec_driver_sql(
            "SELECT actor, details FROM audit_events WHERE action = 'review.reveal'").all()]
