"""Signed checkpoints: with a lab key the events that record results are signed, and
``audit verify`` finds a log cut short, a rewritten stretch with recomputed hashes, a
deleted checkpoint and a signature by another key."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from safeguard.audit.checkpoints import ACTIONS, message
from safeguard.audit.keys import PublicKey
from safeguard.audit.log import append
from safeguard.config import load_settings
from safeguard.exports.cases import export_case
from safeguard.hashsets.categories import load_schemes
from safeguard.reports.report import make_report
from safeguard.review.grading import grade, undo
from safeguard.store.cases import open_case
from tests.audit.helpers import query, rewrite, seq_of, sql
from tests.helpers import CliResult

PREFIX = "audit log of case k: "


def _failed(result: CliResult) -> list[str]:
    assert result.code == 1, result.out
    assert result.out == ""
    return result.err.splitlines()


def _key(db: Path) -> PublicKey:
    (hexed,) = query(db, "SELECT DISTINCT public_key FROM checkpoints")[0]
    return PublicKey.from_hex(hexed)


def _hash(db: Path, seq: int) -> str:
    return query(db, f"SELECT hash FROM audit_events WHERE seq = {seq}")[0][0]


def _other_key() -> tuple[Ed25519PrivateKey, PublicKey]:
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
    return private, PublicKey(raw)


def test_the_signed_events_and_their_checkpoints(signed: Path, home: Path) -> None:
    finished = seq_of(signed, "scan.finished")
    key = _key(signed)
    assert (home / "keys" / "lab-ed25519.pub").is_file()
    rows = query(signed, "SELECT seq, hash, public_key, signature FROM checkpoints ORDER BY seq")
    assert [row[0] for row in rows] == [1, finished]
    for seq, hashed, public, signature in rows:
        assert hashed == _hash(signed, seq) and public == key.hex
        assert key.verifies(bytes.fromhex(signature), message(seq, hashed))
        assert message(seq, hashed) == f"safeguard audit checkpoint 1\n{seq}\n{hashed}\n".encode()
    signed_by = query(signed, "SELECT seq, json_extract(details, '$.signed_by') FROM "
                              "audit_events ORDER BY seq")
    assert signed_by == [(1, key.fingerprint), (2, None), (3, None), (finished, key.fingerprint)]


def test_a_signed_case_verifies_and_names_its_last_checkpoint(cli: Callable[..., CliResult],
                                                              signed: Path) -> None:
    finished = seq_of(signed, "scan.finished")
    key = _key(signed)
    result = cli("audit", "verify", "k")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        f"audit log of case k: {finished} events, chain intact",
        f"items: 3 records match scan.finished (event {finished})",
        f"checkpoints: 2 signatures verified, key {key.fingerprint[:16]} (this home's lab key); "
        f"the last signs event {finished} (hash {_hash(signed, finished)[:16]})"]
    assert cli("audit", "verify", "k", "--json").json()["checkpoints"] == {
        "count": 2, "keys": [key.fingerprint],
        "last": {"seq": finished, "hash": _hash(signed, finished), "key": key.fingerprint}}


def test_a_log_cut_after_a_checkpoint_fails(cli: Callable[..., CliResult], signed: Path) -> None:
    finished = seq_of(signed, "scan.finished")
    sql(signed, f"DELETE FROM audit_events WHERE seq = {finished}")
    assert _failed(cli("audit", "verify", "k")) == [
        PREFIX + f"the log ends at event {finished - 1} but a checkpoint signs event {finished}: "
                 "events were cut off",
        PREFIX + f"the items cannot be checked: scan.started (event {finished - 1}) has no end "
                 "in the log (a scan is running, or it was killed: scanning again resumes it)"]


def test_a_log_cut_to_its_first_event_fails(cli: Callable[..., CliResult], signed: Path) -> None:
    finished = seq_of(signed, "scan.finished")
    sql(signed, "DELETE FROM audit_events WHERE seq > 1")
    assert _failed(cli("audit", "verify", "k")) == [
        PREFIX + f"the log ends at event 1 but a checkpoint signs event {finished}: events were "
                 "cut off",
        PREFIX + "3 item records but no scan event in the log records them"]


def test_an_emptied_log_with_its_checkpoints_fails(cli: Callable[..., CliResult],
                                                   signed: Path) -> None:
    finished = seq_of(signed, "scan.finished")
    sql(signed, "DELETE FROM audit_events")
    assert _failed(cli("audit", "verify", "k")) == [
        PREFIX + "the log is empty: every case starts with case.created",
        PREFIX + f"the log is empty but a checkpoint signs event {finished}: events were cut off",
        PREFIX + "3 item records but no scan event in the log records them"]


def test_a_forged_tail_with_recomputed_hashes_fails(cli: Callable[..., CliResult],
                                                    signed: Path) -> None:
    """Event 2 rewritten and every hash after it recomputed: the chain alone verifies, the
    checkpoint of the scan's end does not."""
    finished = seq_of(signed, "scan.finished")
    rewrite(signed, 2, object="/somewhere/else")
    assert _failed(cli("audit", "verify", "k")) == [
        PREFIX + f"event {finished} is not the event its checkpoint signed: the log was "
                 f"rewritten between event 2 and event {finished}"]


def test_a_rewritten_first_event_is_placed(cli: Callable[..., CliResult], signed: Path) -> None:
    rewrite(signed, 1, actor="mallory")
    assert _failed(cli("audit", "verify", "k")) == [
        PREFIX + "event 1 is not the event its checkpoint signed: the log was rewritten at "
                 "event 1"]


def test_a_deleted_checkpoint_fails(cli: Callable[..., CliResult], signed: Path) -> None:
    finished = seq_of(signed, "scan.finished")
    sql(signed, f"DELETE FROM checkpoints WHERE seq = {finished}")
    assert _failed(cli("audit", "verify", "k")) == [
        PREFIX + f"event {finished} says it was signed by key {_key(signed).short} but its "
                 "checkpoint is missing"]


def test_a_damaged_signature_fails(cli: Callable[..., CliResult], signed: Path) -> None:
    finished = seq_of(signed, "scan.finished")
    sql(signed, f"UPDATE checkpoints SET signature = '{'ab' * 64}' WHERE seq = {finished}")
    assert _failed(cli("audit", "verify", "k")) == [
        PREFIX + f"the signature of checkpoint {finished} does not verify (key "
                 f"{_key(signed).short})"]


def test_a_checkpoint_signed_again_by_another_key_fails(cli: Callable[..., CliResult],
                                                        signed: Path) -> None:
    finished = seq_of(signed, "scan.finished")
    lab = _key(signed)
    private, other = _other_key()
    signature = private.sign(message(finished, _hash(signed, finished))).hex()
    sql(signed, f"UPDATE checkpoints SET public_key = '{other.hex}', signature = '{signature}' "
                f"WHERE seq = {finished}")
    assert _failed(cli("audit", "verify", "k")) == [
        PREFIX + f"checkpoint {finished} is signed by key {other.short}, not by the case's key "
                 f"{lab.short} (its first checkpoint's)",
        PREFIX + f"event {finished} says it was signed by key {lab.short} but its checkpoint is "
                 f"by key {other.short}"]


def test_a_log_forged_and_signed_from_the_start_by_another_key(
        cli: Callable[..., CliResult], signed: Path, home: Path, tmp_path: Path) -> None:
    """A forger with a key of their own rewrites every event and signs it all again: the log
    verifies on its own terms, the output says the key is not this home's, and the lab's
    public key (--key) refuses it."""
    finished = seq_of(signed, "scan.finished")
    lab = _key(signed)
    private, other = _other_key()
    for seq in (1, finished):
        (details,) = query(signed, f"SELECT details FROM audit_events WHERE seq = {seq}")[0]
        changed = dict(json.loads(details), signed_by=other.fingerprint)
        rewrite(signed, seq, details=json.dumps(changed, sort_keys=True, separators=(",", ":")))
    rewrite(signed, 2, object="/somewhere/else")
    sql(signed, "DELETE FROM checkpoints")
    for seq in (1, finished):
        hashed = _hash(signed, seq)
        sql(signed, f"INSERT INTO checkpoints VALUES ({seq}, '{hashed}', '{other.hex}', "
                    f"'{private.sign(message(seq, hashed)).hex()}')")
    result = cli("audit", "verify", "k")
    assert result.code == 0
    assert result.out.splitlines()[2] == (
        f"checkpoints: 2 signatures verified, key {other.short} (not this home's lab key "
        f"{lab.short}); the last signs event {finished} (hash {_hash(signed, finished)[:16]})")
    assert _failed(cli("audit", "verify", "k", "--key", home / "keys" / "lab-ed25519.pub")) == [
        PREFIX + f"checkpoint 1 is signed by key {other.short}, not by the key given "
                 f"({lab.short})",
        PREFIX + f"checkpoint {finished} is signed by key {other.short}, not by the key given "
                 f"({lab.short})"]


def test_key_names_the_keys_that_must_have_signed(cli: Callable[..., CliResult], signed: Path,
                                                  plain_template: Path, home: Path,
                                                  tmp_path: Path) -> None:
    public = home / "keys" / "lab-ed25519.pub"
    assert cli("audit", "verify", "k", "--key", public).code == 0
    assert cli("audit", "verify", "k", "--key", home / "keys" / "lab-ed25519.pem").code == 0
    private, other = _other_key()
    stranger = tmp_path / "stranger.pub"
    stranger.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    finished = seq_of(signed, "scan.finished")
    lab = _key(signed)
    assert _failed(cli("audit", "verify", "k", "--key", stranger)) == [
        PREFIX + f"checkpoint 1 is signed by key {lab.short}, not by the key given "
                 f"({other.short})",
        PREFIX + f"checkpoint {finished} is signed by key {lab.short}, not by the key given "
                 f"({other.short})"]
    # a case that was never signed fails when a key is required
    (home / "cases" / "k").rename(tmp_path / "signed-k")
    shutil.copytree(plain_template / "cases" / "k", home / "cases" / "k")
    assert _failed(cli("audit", "verify", "k", "--key", public)) == [
        PREFIX + "no checkpoint is signed by the key given: the log has no checkpoints"]
    assert cli("audit", "verify", "--library", "--key", public).err.strip() == (
        "error: --key is for a case: the hash library's log is not signed")
    text_file = tmp_path / "not-a-key.pub"
    text_file.write_text("hello\n")
    assert cli("audit", "verify", "k", "--key", text_file).err.strip() == (
        f"error: {text_file} holds no Ed25519 key in PEM")


def test_an_unsigned_event_claiming_a_signature_fails(cli: Callable[..., CliResult],
                                                      signed: Path) -> None:
    """An event appended by hand with ``signed_by`` but no checkpoint (a forger without the
    key)."""
    lab = _key(signed)
    engine = open_case(load_settings(signed.parents[2]), "k").engine
    with engine.begin() as conn:
        seq = append(conn, "test.note", "k", {"signed_by": lab.fingerprint})
    engine.dispose()
    assert _failed(cli("audit", "verify", "k")) == [
        PREFIX + f"event {seq} says it was signed by key {lab.short} but its checkpoint is "
                 "missing"]


def test_scan_report_export_and_grades_verify_with_every_signature(
        cli: Callable[..., CliResult], signed: Path, home: Path, tmp_path: Path) -> None:
    settings = load_settings(home)
    case = open_case(settings, "k")
    lab = _key(signed)
    uk = load_schemes(home).get("uk")
    (a,) = query(signed, "SELECT id FROM items WHERE path = 'a.jpg'")[0]
    grade(case, "rev1", [a], "A", uk)
    (batch,) = query(signed, "SELECT batch FROM grades")[0]
    undo(case, "rev1", batch)
    graded_at = seq_of(signed, "review.undo")
    report = make_report(case, settings, "html", tmp_path / "r.html")
    reported = seq_of(signed, "case.reported")
    exported = export_case(case, settings, "csv", tmp_path / "x.csv", graded_only=False)
    export_event = seq_of(signed, "case.exported")
    case.engine.dispose()

    # the report rests on the head it was made from (the undo), signed before it was written
    assert report.checkpoint is not None and report.checkpoint.seq == graded_at
    assert reported == graded_at + 1
    # the export rests on the report's event, signed as the report's checkpoint
    assert exported.checkpoint is not None and exported.checkpoint.seq == reported
    head = _hash(signed, graded_at)
    html = (tmp_path / "r.html").read_text()
    assert (f'<tr><th>Signed checkpoint</th><td>event {graded_at}, hash <span class="hex">'
            f'{head[:16]}</span>, lab key <span class="hex">{lab.short}</span></td></tr>'
            ) in html
    (details,) = query(signed, f"SELECT details FROM audit_events WHERE seq = {reported}")[0]
    assert json.loads(details)["rests_on"] == {"seq": graded_at, "hash": head,
                                               "key": lab.fingerprint}
    (details,) = query(signed, f"SELECT details FROM audit_events WHERE seq = {export_event}")[0]
    assert json.loads(details)["rests_on"] == {"seq": reported,
                                               "hash": _hash(signed, reported),
                                               "key": lab.fingerprint}
    signed_events = [row[0] for row in query(signed, "SELECT seq FROM checkpoints ORDER BY seq")]
    actions = dict(query(signed, "SELECT seq, action FROM audit_events"))
    assert [actions[seq] for seq in signed_events] == [
        "case.created", "scan.finished", "review.grade", "review.undo", "case.reported",
        "case.exported"]
    assert {actions[seq] for seq in signed_events} <= ACTIONS

    result = cli("audit", "verify", "k", "--key", home / "keys" / "lab-ed25519.pub")
    assert result.code == 0, result.err
    assert result.out.splitlines()[2] == (
        f"checkpoints: 6 signatures verified, key {lab.short} (this home's lab key); the last "
        f"signs event {export_event} (hash {_hash(signed, export_event)[:16]})")


def test_a_report_without_a_lab_key_says_so(plain: Path, home: Path, tmp_path: Path) -> None:
    settings = load_settings(home)
    case = open_case(settings, "k")
    report = make_report(case, settings, "html", tmp_path / "r.html")
    exported = export_case(case, settings, "csv", tmp_path / "x.csv", graded_only=False)
    case.engine.dispose()
    assert report.checkpoint is None and exported.checkpoint is None
    assert ("<tr><th>Signed checkpoint</th><td>none: no lab key signs this case's audit "
            "log</td></tr>") in (tmp_path / "r.html").read_text()
    assert query(plain, "SELECT count(*) FROM checkpoints") == [(0,)]


def test_report_and_export_print_the_checkpoint_they_rest_on(
        cli: Callable[..., CliResult], signed: Path, tmp_path: Path) -> None:
    finished = seq_of(signed, "scan.finished")
    key = _key(signed)
    line = (f"rests on signed checkpoint: event {finished}, hash "
            f"{_hash(signed, finished)[:16]}, lab key {key.short}")
    report = cli("report", "k", "--format", "html", "--out", tmp_path / "r.html")
    assert report.code == 0, report.err
    assert report.out.splitlines()[-1] == line
    reported = seq_of(signed, "case.reported")
    exported = cli("export", "k", "--format", "csv", "--out", tmp_path / "x.csv", "--json")
    assert exported.code == 0, exported.err
    assert exported.json()["checkpoint"] == {"seq": reported, "hash": _hash(signed, reported),
                                             "key": key.fingerprint}


def test_report_and_export_without_a_lab_key_print_that_none_signs_them(
        cli: Callable[..., CliResult], plain: Path, tmp_path: Path) -> None:
    none = "rests on no signed checkpoint: no lab key signs this case's audit log"
    export = cli("export", "k", "--format", "csv", "--out", tmp_path / "x.csv")
    assert export.code == 0, export.err
    assert export.out.splitlines()[-1] == none
    report = cli("report", "k", "--format", "html", "--out", tmp_path / "r.html", "--json")
    assert report.code == 0, report.err
    assert report.json()["checkpoint"] is None
