"""The lab index on PostgreSQL (SAFEGUARD_DATABASE_URL): database ``{case}`` = ``_index``,
four updates at once, and links between cases scanned into the server. Skipped without
PostgreSQL's programs (``pg_url`` in tests/conftest.py)."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest

from safeguard.config import load_settings
from safeguard.intel.index import LabIndex
from safeguard.intel.links import links
from safeguard.store import db
from tests.helpers import jpeg_bytes, scene
from tests.intel.helpers import build_lab, concurrent_updates, fake_case

_databases = itertools.count(1)


@pytest.fixture
def pg(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """SAFEGUARD_DATABASE_URL for this test: the cluster's, with database names of its own."""
    url = pg_url.replace("safeguard_{case}", f"lx{next(_databases)}_{{case}}")
    monkeypatch.setenv("SAFEGUARD_DATABASE_URL", url)
    return url


def test_the_index_is_database_underscore_index(pg: str, tmp_path: Path) -> None:
    index = LabIndex(load_settings(tmp_path / "home"))
    assert index.url == pg.replace("{case}", "_index")
    assert index.generation() == 0
    assert db.database_exists(index.url)
    assert not (tmp_path / "home" / "index" / "index.db").exists()


def test_two_scans_updating_the_postgresql_index_at_once(pg: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = load_settings(home)
    for name in ("x", "y", "z"):
        fake_case(settings, name)
    concurrent_updates(lambda: LabIndex(load_settings(home)))


def test_links_between_cases_on_the_server(pg: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    picture = jpeg_bytes(scene(7, (480, 360)))
    build_lab(home, tmp_path / "ev", {"p-one": {"a.jpg": picture}, "p-two": {"b.jpg": picture},
                                      "p-three": {"c.jpg": jpeg_bytes(scene(8))}})
    index = LabIndex(load_settings(home))
    assert [c.case for c in index.rebuild().indexed] == ["p-one", "p-three", "p-two"]
    found = links(index, "p-one")
    assert [(o.name, [(lk.kind, lk.evidence["items"][0]["path"],
                       lk.evidence["other_items"][0]["path"]) for lk in o.links])
            for o in found.others] == [("p-two", [("new_picture", "a.jpg", "b.jpg")])]
    # a folder gone but its database still on the server (another home's case): not dropped
    shutil.rmtree(home / "cases" / "p-two")
    assert index.case_exists("p-two")
    assert index.rebuild().removed == ()
    assert [o.name for o in links(index, "p-one", paths=False).others] == ["p-two"]
