"""Cases from the command line: create, list, show, and the errors a person can meet."""

from __future__ import annotations

from pathlib import Path


def test_create_list_show(cli, home: Path) -> None:
    assert cli("case", "create", "op-alpha").code == 0
    assert cli("case", "create", "op-beta", "--json").json() == {
        "case": "op-beta", "folder": str(home / "cases" / "op-beta")}
    assert (home / "cases" / "op-alpha" / "case.db").is_file()
    listed = cli("case", "list", "--json")
    assert listed.json_lines() == [{"case": "op-alpha"}, {"case": "op-beta"}]
    assert cli("case", "list").out.split() == ["op-alpha", "op-beta"]
    shown = cli("case", "show", "op-alpha", "--json").json()
    assert shown["case"] == "op-alpha"
    assert shown["counts"] == {
        "items": 0, "done": 0, "errors": 0, "pending": 0, "pictures": 0, "pdq": 0,
        "pdq_low_quality": 0, "extension_mismatch": 0, "archive_members": 0,
    }
    assert shown["evidence"] == [] and shown["by_type"] == {} and shown["scans"] == 0
    text = cli("case", "show", "op-alpha")
    assert text.code == 0 and "Case op-alpha" in text.out


def test_home_from_environment(tmp_path: Path, monkeypatch, capsys) -> None:
    from safeguard.cli import main

    monkeypatch.setenv("SAFEGUARD_HOME", str(tmp_path / "envhome"))
    assert main(["case", "create", "x"]) == 0
    assert (tmp_path / "envhome" / "cases" / "x" / "case.db").is_file()


def test_errors_are_one_line(cli, home: Path) -> None:
    cli("case", "create", "dup")
    cases = [
        (("case", "create", "dup"), f"error: case 'dup' exists already ({home}/cases/dup)"),
        (("case", "show", "nope"), f"error: case 'nope' does not exist in {home}/cases "
                                   "(create it with: safeguard case create nope)"),
        (("items", "nope"), f"error: case 'nope' does not exist in {home}/cases "
                            "(create it with: safeguard case create nope)"),
        (("case", "create", "../escape"), "error: invalid case name '../escape': use 1-64 "
         "letters, digits, '.', '_' or '-', starting with a letter or digit"),
    ]
    for args, message in cases:
        result = cli(*args)
        assert result.code == 1
        assert result.err.strip() == message
        assert "Traceback" not in result.err
    assert not (home / "escape").exists()


def test_audit_verify_after_create(cli) -> None:
    cli("case", "create", "audited")
    result = cli("audit", "verify", "audited", "--json")
    assert result.code == 0
    shown = result.json()
    assert {k: shown[k] for k in ("case", "events", "ok", "first_bad", "reason")} == {
        "case": "audited", "events": 1, "ok": True, "first_bad": None, "reason": None}
    assert shown["problems"] == []
