"""Safeguard on PostgreSQL (``SAFEGUARD_DATABASE_URL``): the same case as on SQLite, and
several processes' worth of engines on one server staying consistent.

Each test gets databases of its own on the session's throwaway cluster (``pg_url``)."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text

from safeguard.audit import log as audit
from safeguard.config import load_settings
from safeguard.errors import CaseError, StoreError
from safeguard.hashsets.categories import load_schemes
from safeguard.review.grading import consensus, grade
from safeguard.store import db
from safeguard.store.cases import create_case, open_case
from safeguard.store.models import AuditEvent, Evidence, Item, ReviewGrade
from tests.helpers import CliResult, jpeg_bytes, png_bytes, scene
from tests.store.helpers import alembic_to

_databases = itertools.count(1)
UK = load_schemes().get("uk")
PASSWORD = "correct horse battery"


@pytest.fixture
def pg(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """SAFEGUARD_DATABASE_URL for this test: the cluster's, with database names of its own."""
    url = pg_url.replace("safeguard_{case}", f"sg{next(_databases)}_{{case}}")
    monkeypatch.setenv("SAFEGUARD_DATABASE_URL", url)
    return url


def build_evidence(root: Path) -> dict[str, bytes]:
    files = {"a.jpg": jpeg_bytes(scene(1)), "b.png": png_bytes(scene(2)),
             "notes.txt": b"a note, not a picture\n",
             "broken.jpg": jpeg_bytes(scene(3, (600, 400)))[:2000]}
    root.mkdir()
    for name, data in files.items():
        (root / name).write_bytes(data)
    return files


def run_case(cli: Callable[..., CliResult], tmp_path: Path, evidence: Path,
             files: dict[str, bytes]) -> dict[str, object]:
    """Import a hash set, create case k, scan, grade, export; what a script would see."""
    listed = tmp_path / "exact.txt"
    listed.write_text(f"{hashlib.md5(files['a.jpg']).hexdigest()},A\n")
    imported = cli("hashset", "import", listed, "--name", "exact", "--version", "1")
    assert imported.code == 0, imported.err
    assert cli("case", "create", "k").code == 0
    scanned = cli("scan", evidence, "--case", "k", "--workers", "1", "--json")
    assert scanned.code == 0, scanned.err
    items = cli("items", "k", "--json").json_lines()
    shown = cli("case", "show", "k", "--json").json()
    settings = load_settings(tmp_path / "home")
    case = open_case(settings, "k")
    with case.engine.connect() as conn:
        ids = dict(conn.execute(select(Item.path, Item.id)).all())
    grade(case, "rev1", [ids["a.jpg"], ids["b.png"]], "B", UK)
    grade(case, "rev2", [ids["a.jpg"], ids["b.png"]], "B", UK)
    agreed = consensus(case, [ids["a.jpg"], ids["b.png"], ids["notes.txt"]])
    case.engine.dispose()
    exported = cli("export", "k", "--format", "csv", "--out", tmp_path / "k.csv", "--json")
    assert exported.code == 0, exported.err
    with open(tmp_path / "k.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    verified = cli("audit", "verify", "k", "--json").json()
    library = cli("audit", "verify", "--library", "--json").json()
    return {"items": items, "shown": shown, "consensus": agreed, "ids": ids,
            "export": rows, "entries": exported.json()["entries"], "audit": verified,
            "library_audit": library, "scan": scanned.json()}


_TIMES = {"created_at", "started_at", "finished_at", "added_at", "imported_at", "seconds"}


def _without_times(value: object) -> object:
    """``value`` without the moments of this run (the evidence's own times are kept)."""
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k not in _TIMES}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def test_a_case_on_postgresql_is_the_case_on_sqlite(cli: Callable[..., CliResult], home: Path,
                                                     tmp_path: Path, pg: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    evidence = tmp_path / "ev"
    files = build_evidence(evidence)
    on_pg = run_case(cli, tmp_path, evidence, files)
    # nothing of the case went to the home but its marker: its rows are on the server
    assert sorted(p.name for p in (home / "cases" / "k").iterdir()) == ["case.json", "scan.lock"]
    assert not (home / "library" / "library.db").exists()
    assert json.loads((home / "cases" / "k" / "case.json").read_text())["database"] == "url"

    monkeypatch.delenv("SAFEGUARD_DATABASE_URL")
    sqlite_root = tmp_path / "sqlite"
    sqlite_root.mkdir()
    sqlite_cli = _cli_for(sqlite_root / "home", cli)
    on_sqlite = run_case(sqlite_cli, sqlite_root, evidence, files)

    assert on_pg["scan"]["items"] == 4 and on_pg["scan"]["errors"] == 1
    assert on_pg["ids"] == on_sqlite["ids"]
    assert on_pg["items"] == on_sqlite["items"]  # the evidence's times are the same files'
    assert [(i["path"], [(m["set"], m["signal"], m["category"]) for m in i["matches"]])
            for i in on_pg["items"]] == [
        ("a.jpg", [("exact", "md5", "A")]), ("b.png", []), ("broken.jpg", []),
        ("notes.txt", [])]
    pg_shown, sqlite_shown = on_pg["shown"], on_sqlite["shown"]
    assert pg_shown.pop("folder") == str(home / "cases" / "k")
    assert sqlite_shown.pop("folder") == str(sqlite_root / "home" / "cases" / "k")
    assert _without_times(pg_shown) == _without_times(sqlite_shown)
    assert pg_shown["counts"]["items"] == 4
    ids = on_pg["ids"]
    assert {i: (c.status, c.category) for i, c in on_pg["consensus"].items()} == {
        ids["a.jpg"]: ("trusted", "B"), ids["b.png"]: ("trusted", "B"),
        ids["notes.txt"]: ("ungraded", None)}
    assert on_pg["entries"] == on_sqlite["entries"] == 2
    assert on_pg["export"] == on_sqlite["export"]
    assert {k: on_pg["audit"][k] for k in ("case", "events", "ok", "first_bad", "reason")} == {
        "case": "k", "events": on_sqlite["audit"]["events"], "ok": True, "first_bad": None,
        "reason": None}
    assert on_pg["library_audit"]["ok"] is True


def _cli_for(home: Path, cli: Callable[..., CliResult]) -> Callable[..., CliResult]:
    """The ``cli`` fixture's runner for another home."""
    def run(*args: object) -> CliResult:
        return cli("--home", home, *args)  # the later --home wins

    return run


def test_accounts_on_postgresql(cli: Callable[..., CliResult], home: Path, pg: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    from io import StringIO

    from safeguard.accounts.store import Accounts

    monkeypatch.setattr("sys.stdin", StringIO(PASSWORD + "\n"))
    added = cli("user", "add", "alice", "--role", "reviewer", "--password-stdin")
    assert (added.code, added.out) == (0, "added user alice (reviewer)\n")
    assert not (home / "accounts" / "accounts.db").exists()
    accounts = Accounts(load_settings(home))
    session = accounts.login("alice", PASSWORD, "10.0.0.1")
    seen = accounts.session(session.token)
    assert seen is not None and seen.user.name == "alice"
    accounts.logout(session.token)
    assert accounts.session(session.token) is None
    with accounts.engine.connect() as conn:
        assert audit.verify(conn).ok
    accounts.engine.dispose()


def test_databases_are_created_once_and_named_safely(pg: str, tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "home")
    case = create_case(settings, "Op.2024-x_1")  # upper case, dots, dashes: quoted
    assert case.engine.url.database == pg.rsplit("/", 1)[1].replace("{case}", "Op.2024-x_1")
    assert db.ensure_database(str(case.engine.url.render_as_string(False))) is False
    with case.engine.connect() as conn:  # sorts like SQLite, whatever the server's locale
        assert conn.execute(text("SELECT pg_encoding_to_char(encoding), datcollate, datctype "
                                 "FROM pg_database WHERE datname = current_database()")
                            ).one() == ("UTF8", "C", "C")
    case.engine.dispose()
    with pytest.raises(CaseError) as exists:
        create_case(load_settings(tmp_path / "home2"), "Op.2024-x_1")
    assert str(exists.value).startswith(
        f"database {case.engine.url.database!r} holds case 'Op.2024-x_1' already (created ")
    long = "x" * 60
    with pytest.raises(StoreError) as too_long:
        create_case(settings, long)
    name = pg.rsplit("/", 1)[1].replace("{case}", long)
    assert str(too_long.value) == (
        f"database name {name!r} is {len(name)} bytes; PostgreSQL allows at most 63 "
        "(use a shorter case name)")
    assert not (settings.cases_dir / long).exists()
    with pytest.raises(CaseError) as reserved:
        create_case(settings, "accounts")
    assert str(reserved.value) == ("case name 'accounts' is taken by the accounts database "
                                   "when SAFEGUARD_DATABASE_URL is set: choose another name")


def test_a_case_whose_database_is_gone_is_one_line(cli: Callable[..., CliResult], home: Path,
                                                   pg: str) -> None:
    assert cli("case", "create", "gone").code == 0
    name = pg.rsplit("/", 1)[1].replace("{case}", "gone")
    server = db.make_engine(pg.rsplit("/", 1)[0] + "/postgres")
    with server.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            f'DROP DATABASE "{name}" WITH (FORCE)')
    server.dispose()
    result = cli("case", "show", "gone")
    host = pg.split("@", 1)[1].rsplit("/", 1)[0]
    assert (result.code, result.err) == (
        1, f"error: case 'gone': database {name!r} does not exist on {host} (is "
           "SAFEGUARD_DATABASE_URL the one it was created with?)\n")


# --- several processes on one server ----------------------------------------------------------


@pytest.fixture
def two_apps(pg: str, tmp_path: Path) -> Iterator[tuple[object, object, Path]]:
    """A scanned case and users, and two review apps built apart (engines of their own, as
    two ``safeguard serve`` processes would have) over the same server."""
    from safeguard.accounts.store import Accounts
    from safeguard.cli import main
    from safeguard.web.app import create_app

    home = tmp_path / "home"
    evidence = tmp_path / "ev"
    build_evidence(evidence)
    assert main(["--home", str(home), "case", "create", "k"]) == 0
    assert main(["--home", str(home), "scan", str(evidence), "--case", "k", "--workers",
                 "1", "--json"]) == 0
    setup = Accounts(load_settings(home))
    for name in ("rev1", "rev2"):
        setup.add_user(name, "reviewer", PASSWORD)
        setup.grant(name, "k")
    setup.engine.dispose()
    first, second = create_app(load_settings(home)), create_app(load_settings(home))
    yield first, second, home


def _client(app: object, address: str) -> object:
    from fastapi.testclient import TestClient

    from tests.web.helpers import Client

    return Client(TestClient(app, base_url="http://testserver", follow_redirects=False,
                             client=(address, 50000)))


def test_a_session_is_one_across_apps(two_apps: tuple[object, object, Path]) -> None:
    first, second, _home = two_apps
    browser = _client(first, "10.0.0.1")
    assert browser.login("rev1").status_code == 303
    cookies = dict(browser.http.cookies)
    other = _client(second, "10.0.0.1")
    other.http.cookies.update(cookies)
    me = other.get("/api/v1/me")
    assert (me.status_code, me.json()["name"]) == (200, "rev1")
    other.csrf = me.json()["csrf"]
    signed_out = other.api("DELETE", "/api/v1/session")
    assert (signed_out.status_code, signed_out.json()) == (200, {"signed_out": "rev1"})
    assert browser.get("/api/v1/me").status_code == 401


def test_two_reviewers_at_once_through_two_apps(two_apps: tuple[object, object, Path]) -> None:
    first, second, home = two_apps
    reviewers = [_client(first, "10.0.0.1"), _client(second, "10.0.0.2")]
    for client, name in zip(reviewers, ("rev1", "rev2"), strict=True):
        assert client.login(name).status_code == 303
    case = open_case(load_settings(home), "k")
    with case.engine.connect() as conn:
        item = conn.execute(select(Item.id).where(Item.path == "a.jpg")).scalar_one()
    barrier = threading.Barrier(2)
    answers: list[int] = []

    def grade_now(client: object) -> None:
        barrier.wait()
        response = client.api("POST", "/api/v1/cases/k/grades",
                              json={"items": [item], "category": "C"})
        answers.append(response.status_code)

    threads = [threading.Thread(target=grade_now, args=(c,)) for c in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200, 200]
    state = consensus(case, [item])[item]
    assert (state.status, state.category) == ("trusted", "C")
    with case.engine.connect() as conn:
        graders = conn.execute(select(ReviewGrade.reviewer).where(ReviewGrade.item_id == item)
                               .order_by(ReviewGrade.reviewer)).scalars().all()
        assert graders == ["rev1", "rev2"]
        assert audit.verify(conn).ok
    case.engine.dispose()


APPENDS = 40


def _append_many(url: str, who: str, barrier: object | None = None) -> None:
    engine = db.make_engine(url)
    if barrier is not None:
        barrier.wait()
    for n in range(APPENDS):
        with engine.begin() as conn:
            audit.append(conn, "test.event", who, {"n": n}, who)
    engine.dispose()


def _chain(url: str) -> tuple[audit.Verification, dict[str, int]]:
    engine = db.make_engine(url)
    with engine.connect() as conn:
        verified = audit.verify(conn)
        by_actor = dict(conn.execute(select(AuditEvent.actor, func.count())
                                     .group_by(AuditEvent.actor)).all())
    engine.dispose()
    return verified, by_actor


def test_concurrent_appends_from_two_engines_keep_one_chain(pg: str, tmp_path: Path) -> None:
    case = create_case(load_settings(tmp_path / "home"), "chain")
    url = case.engine.url.render_as_string(hide_password=False)
    case.engine.dispose()
    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=_append_many, args=(url, who, barrier))
               for who in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    verified, by_actor = _chain(url)
    assert (verified.ok, verified.events) == (True, 1 + 2 * APPENDS)
    assert by_actor == {"one": APPENDS, "two": APPENDS, by_actor_creator(by_actor): 1}


def by_actor_creator(by_actor: dict[str, int]) -> str:
    [creator] = [actor for actor in by_actor if actor not in ("one", "two")]
    return creator


def test_concurrent_appends_from_two_processes_keep_one_chain(pg: str, tmp_path: Path) -> None:
    case = create_case(load_settings(tmp_path / "home"), "chain2")
    url = case.engine.url.render_as_string(hide_password=False)
    case.engine.dispose()
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    workers = [context.Process(target=_append_many, args=(url, who, barrier))
               for who in ("one", "two")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    verified, by_actor = _chain(url)
    assert (verified.ok, verified.events) == (True, 1 + 2 * APPENDS)
    assert (by_actor["one"], by_actor["two"]) == (APPENDS, APPENDS)


def test_nul_in_text_is_replaced_rather_than_failing(cli: Callable[..., CliResult],
                                                     tmp_path: Path, pg: str) -> None:
    case = create_case(load_settings(tmp_path / "home"), "nul")
    with case.engine.begin() as conn:
        evidence = conn.execute(insert(Evidence).returning(Evidence.id), {
            "path": "/ev", "fs_path": b"/ev\0", "source": "directory",
            "added_at": "2024-01-01T00:00:00Z", "added_by": "tester"}).scalar_one()
        conn.execute(insert(Item), [  # one row, and several (executemany)
            {"evidence_id": evidence, "path": f"a\0{n}.jpg", "type": "image/jpeg",
             "status": "error", "error": "bad\0"} for n in range(3)])
    with case.engine.connect() as conn:
        assert conn.execute(select(Item.path, Item.error).order_by(Item.id)).all() == [
            (f"a\ufffd{n}.jpg", "bad\ufffd") for n in range(3)]
        assert conn.execute(select(Evidence.fs_path)).scalar_one() == b"/ev\0"  # bytes kept
    case.engine.dispose()
    vics = tmp_path / "set.json"
    vics.write_text(json.dumps({"odata.metadata": "x", "value": [{"CaseID": "c", "Media": [
        {"MediaID": 1, "Category": 1, "MD5": "d41d8cd98f00b204e9800998ecf8427e",
         "Comments": "a\0b"}]}]}))
    imported = cli("hashset", "import", vics, "--name", "v", "--json")
    assert imported.code == 0, imported.err
    assert imported.json()["report"]["warnings"] == [
        "NUL characters in text fields replaced by U+FFFD (PostgreSQL cannot store them)"]


def test_db_upgrade_on_postgresql(cli: Callable[..., CliResult], home: Path, pg: str) -> None:
    url = pg.replace("{case}", "old")
    db.ensure_database(url)
    alembic_to(url, "0003")
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO case_info (id, name, created_at, created_by, "
                          "tool_version) VALUES (1, 'old', 'then', 'examiner1', '0.0.9')"))
        audit.append(conn, "case.created", "old", {}, "examiner1")
    engine.dispose()
    (home / "cases" / "old").mkdir(parents=True)
    (home / "cases" / "old" / "case.json").write_text('{"case": "old"}\n')
    result = cli("db", "upgrade", "--json")
    assert result.code == 0, result.err
    host = pg.split("@", 1)[1].rsplit("/", 1)[0]
    assert result.json()["stores"] == [
        {"store": "accounts", "name": "accounts", "database": host + "/" + pg.rsplit("/", 1)[1]
         .replace("{case}", "accounts"), "exists": False, "from": None, "to": None,
         "upgraded": False, "backup": None},
        {"store": "library", "name": "library", "database": host + "/" + pg.rsplit("/", 1)[1]
         .replace("{case}", "_library"), "exists": False, "from": None, "to": None,
         "upgraded": False, "backup": None},
        {"store": "case", "name": "old", "database": host + "/" + pg.rsplit("/", 1)[1]
         .replace("{case}", "old"), "exists": True, "from": "0003", "to": db.head_revision(),
         "upgraded": True, "backup": None}]
    assert cli("audit", "verify", "old", "--json").json()["ok"] is True
    assert cli("case", "show", "old", "--json").json()["created_by"] == "examiner1"
    assert cli("db", "upgrade", "--case", "old").out.splitlines()[2] == (
        f"case old: up to date ({db.head_revision()})")


@pytest.mark.parametrize("store", ["case", "library", "accounts"])
def test_migrations_build_the_models_schema_on_postgresql(pg: str, store: str) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from safeguard.accounts.models import AccountsBase
    from safeguard.accounts.store import MIGRATIONS as ACCOUNTS_MIGRATIONS
    from safeguard.hashsets.library import MIGRATIONS as LIBRARY_MIGRATIONS
    from safeguard.hashsets.models import LibraryBase
    from safeguard.store.models import Base as CaseBase

    migrations, metadata = {
        "case": (db.MIGRATIONS, CaseBase.metadata),
        "library": (LIBRARY_MIGRATIONS, LibraryBase.metadata),
        "accounts": (ACCOUNTS_MIGRATIONS, AccountsBase.metadata)}[store]
    url = pg.replace("{case}", f"m_{store}")
    assert db.ensure_database(url) is True
    engine = db.make_engine(url)
    db.upgrade(engine, migrations)
    assert db.current_revision(engine) == db.head_revision(migrations)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    config = db._alembic_config(migrations)
    with engine.begin() as conn:  # and all the way down and up again
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
        command.upgrade(config, "head")
    assert db.current_revision(engine) == db.head_revision(migrations)
    engine.dispose()
