"""The chain commits to what the scan found: scan events carry a digest of the item records,
and ``audit verify`` finds an item edited, deleted or added after them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from safeguard.audit import items
from safeguard.audit.log import append
from safeguard.config import load_settings
from safeguard.store.cases import open_case
from tests.audit.helpers import query, rewrite, seq_of, sql
from tests.helpers import CliResult

PREFIX = "audit log of case k: "


def _failed(result: CliResult) -> list[str]:
    assert result.code == 1, result.out
    return result.err.splitlines()


def test_the_scan_event_carries_the_digest_of_rule_1(plain: Path) -> None:
    """The digest is SHA-256 over one canonical JSON line per item, in id order, of id,
    evidence id, path, ordinal, size, MD5, SHA1, SHA256, PDQ and status."""
    rows = query(plain, "SELECT id, evidence_id, path, ordinal, size, md5, sha1, sha256, pdq, "
                        "status FROM items ORDER BY id")
    lines = "".join(json.dumps(list(row), separators=(",", ":"), ensure_ascii=False) + "\n"
                    for row in rows)
    (details,) = query(plain, "SELECT details FROM audit_events WHERE action = 'scan.finished'")
    ids = [row[0] for row in rows]
    assert json.loads(details[0])["items_digest"] == {
        "rule": 1, "count": 3, "last_id": ids[-1], "ids": [[ids[0], ids[-1]]],
        "sha256": hashlib.sha256(lines.encode()).hexdigest()}
    assert ids == list(range(ids[0], ids[0] + 3))


def test_runs_of_ids_and_their_limit(plain: Path) -> None:
    engine = open_case(load_settings(plain.parents[2]), "k").engine
    sql(plain, "DELETE FROM items WHERE id = 2")
    with engine.connect() as conn:
        found = items.digest(conn)
    assert (found.count, found.last_id, found.ids) == (2, 3, ((1, 1), (3, 3)))
    assert items.recorded({"items_digest": found.details()}) == found
    assert items.recorded({"items_digest": {"rule": 2}}) is None
    assert items.recorded({}) is None
    engine.dispose()


def test_an_edited_item_fails(cli: Callable[..., CliResult], plain: Path) -> None:
    finished = seq_of(plain, "scan.finished")
    sql(plain, "UPDATE items SET md5 = '00000000000000000000000000000000' "
               "WHERE path = 'b.png'")
    assert _failed(cli("audit", "verify", "k")) == [
        PREFIX + f"the items differ from what scan.finished (event {finished}) recorded: the "
                 "same 3 item ids, so a record was edited"]


def test_an_edited_status_fails(cli: Callable[..., CliResult], plain: Path) -> None:
    finished = seq_of(plain, "scan.finished")
    sql(plain, "UPDATE items SET status = 'error' WHERE path = 'a.jpg'")
    assert _failed(cli("audit", "verify", "k"))[0].startswith(
        PREFIX + f"the items differ from what scan.finished (event {finished}) recorded")


def test_a_deleted_item_is_named(cli: Callable[..., CliResult], plain: Path) -> None:
    finished = seq_of(plain, "scan.finished")
    (gone,) = query(plain, "SELECT id FROM items WHERE path = 'b.png'")[0]
    sql(plain, f"DELETE FROM items WHERE id = {gone}")
    assert _failed(cli("audit", "verify", "k")) == [
        PREFIX + f"item {gone} was deleted after scan.finished (event {finished})"]
    assert cli("audit", "verify", "k", "--json").json()["items"] == {
        "count": 2, "ok": False, "event": finished, "action": "scan.finished"}


def test_deleted_items_are_counted(cli: Callable[..., CliResult], plain: Path) -> None:
    finished = seq_of(plain, "scan.finished")
    sql(plain, "DELETE FROM items WHERE id IN (1, 3)")
    assert _failed(cli("audit", "verify", "k")) == [
        PREFIX + f"item 1 and 1 more were deleted after scan.finished (event {finished})"]


def test_an_added_item_is_named_visibly(cli: Callable[..., CliResult], plain: Path) -> None:
    finished = seq_of(plain, "scan.finished")
    sql(plain, "INSERT INTO items (id, evidence_id, path, ordinal, depth, entry, deleted, "
               "extension_mismatch, status) VALUES (9, 1, 'x\x1b[2J.jpg', 0, 0, 'file', 0, 0, "
               "'done')")
    assert _failed(cli("audit", "verify", "k")) == [
        PREFIX + f"item 9 ('x\\x1b[2J.jpg') was added after scan.finished (event {finished})"]


def test_a_scan_with_no_end_leaves_the_items_unchecked(cli: Callable[..., CliResult],
                                                       plain: Path) -> None:
    """A scan.started with nothing after it: the scan runs, or was killed; its items are not
    committed yet, and the log cannot vouch for them."""
    engine = open_case(load_settings(plain.parents[2]), "k").engine
    with engine.begin() as conn:
        seq = append(conn, "scan.started", "/ev", {"scan": 2})
    engine.dispose()
    assert _failed(cli("audit", "verify", "k")) == [
        PREFIX + f"the items cannot be checked: scan.started (event {seq}) has no end in the "
                 "log (a scan is running, or it was killed: scanning again resumes it)"]


def test_every_scan_end_carries_a_digest(plain: Path) -> None:
    engine = open_case(load_settings(plain.parents[2]), "k").engine
    with engine.begin() as conn:
        for action in sorted(items.DIGEST_ACTIONS):
            append(conn, action, "/ev", {"scan": 1, "items": 3})
    engine.dispose()
    events = query(plain, "SELECT action, details FROM audit_events WHERE action LIKE 'scan.%' "
                          "AND action != 'scan.started'")
    digests = {action: json.loads(details)["items_digest"]["sha256"]
               for action, details in events}
    assert set(digests) == items.DIGEST_ACTIONS
    assert len(set(digests.values())) == 1
    assert all(json.loads(details)["items"] == 3 for _, details in events)


def test_a_case_scanned_before_digests_verifies_and_says_so(cli: Callable[..., CliResult],
                                                            plain: Path) -> None:
    """An older Safeguard's scan.finished has no digest: nothing to check the items against,
    and the output says so."""
    finished = seq_of(plain, "scan.finished")
    (details,) = query(plain, f"SELECT details FROM audit_events WHERE seq = {finished}")[0]
    old = json.loads(details)
    del old["items_digest"]
    rewrite(plain, finished, details=json.dumps(old, sort_keys=True, separators=(",", ":")))
    result = cli("audit", "verify", "k")
    assert result.code == 0, result.err
    assert result.out.splitlines()[1] == (
        f"items: 3 records, not committed by the log (scan.finished (event {finished}) "
        "predates item digests)")


@settings(deadline=None, max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 2**63), st.none() | st.integers(-5, 5),
                          st.text(), st.none() | st.text(max_size=3)), max_size=5))
def test_the_fast_encoding_is_the_canonical_json(rows: list[tuple]) -> None:
    assert items.lines(rows) == b"".join(items.encode(row) for row in rows)
