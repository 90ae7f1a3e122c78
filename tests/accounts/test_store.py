"""Accounts: users, passwords, login rate limiting, sessions, case membership, exposure and
the accounts' audit chain. The clock is moved by replacing ``store._now``; nothing sleeps."""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from safeguard.accounts import (
    IDLE_MINUTES,
    MAX_HOURS,
    ROLES,
    AccountError,
    Accounts,
    LoginRefused,
    User,
    store,
)
from safeguard.accounts.models import LoginFailure, UserRow
from safeguard.audit.log import verify
from safeguard.config import load_settings
from safeguard.store.cases import create_case
from safeguard.store.models import AuditEvent

PASSWORD = "correct horse battery"
START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(autouse=True)
def cheap_hasher(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with small parameters: the same code path, a fraction of the time."""
    monkeypatch.setattr(store, "_hasher",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(store, "_dummy_hash", None)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(store, "_now", clock)
    return clock


@pytest.fixture
def accounts(home: Path) -> Accounts:
    return Accounts(load_settings(home))


def _events(accounts: Accounts) -> list[dict]:
    with accounts.engine.connect() as conn:
        return [dict(row) for row in conn.execute(
            select(AuditEvent).order_by(AuditEvent.seq)).mappings()]


def _db_bytes(accounts: Accounts) -> bytes:
    folder = accounts.folder
    return b"".join(p.read_bytes() for p in sorted(folder.glob("accounts.db*")))


# --- users -------------------------------------------------------------------------------


def test_add_user(accounts: Accounts, home: Path) -> None:
    user = accounts.add_user("alice", "reviewer", PASSWORD, actor="admin1")
    assert user == User(id=user.id, name="alice", role="reviewer", disabled=False, blur=3,
                        break_minutes=50)
    assert user.can_grade and not user.is_admin and not user.is_examiner
    assert accounts.user("alice") == user
    assert accounts.user("nobody") is None
    assert [u.name for u in accounts.users()] == ["alice"]
    assert (home / "accounts" / "accounts.db").is_file()


def test_roles() -> None:
    def make(role: str) -> User:
        return User(id=1, name="x", role=role, disabled=False, blur=3, break_minutes=50)

    assert ROLES == ("admin", "examiner", "reviewer", "auditor")
    assert [make(r).can_grade for r in ROLES] == [True, True, True, False]
    assert [make(r).is_admin for r in ROLES] == [True, False, False, False]
    assert [make(r).is_examiner for r in ROLES] == [True, True, False, False]


@pytest.mark.parametrize(("name", "role", "password", "message"), [
    ("alice", "reviewer", PASSWORD, "user 'alice' exists already"),
    ("../x", "reviewer", PASSWORD, "invalid user name '../x': use 1-64 letters, digits, '.', "
                                   "'_' or '-', starting with a letter or digit"),
    ("", "reviewer", PASSWORD, "invalid user name '': use 1-64 letters, digits, '.', "
                               "'_' or '-', starting with a letter or digit"),
    ("bob\n", "reviewer", PASSWORD, "invalid user name 'bob\\n': use 1-64 letters, digits, "
                                    "'.', '_' or '-', starting with a letter or digit"),
    ("b" * 65, "reviewer", PASSWORD, f"invalid user name '{'b' * 65}': use 1-64 letters, "
                                     "digits, '.', '_' or '-', starting with a letter or digit"),
    ("bob", "reviewer", "elevenchars", "the password is too short: use at least 12 characters"),
    ("bob", "reviewer", "\ud800" * 12, "the password is not valid text (unpaired "
                                         "surrogate)"),
    ("bob", "reviewer", "x" * 1025, "the password is too long: use at most 1024 characters"),
    ("bob", "grader", PASSWORD, "unknown role 'grader': use one of admin, examiner, "
                                "reviewer, auditor"),
])
def test_add_user_refused(accounts: Accounts, name: str, role: str, password: str,
                          message: str) -> None:
    accounts.add_user("alice", "reviewer", PASSWORD)
    with pytest.raises(AccountError) as caught:
        accounts.add_user(name, role, password)
    assert str(caught.value) == message
    assert [u.name for u in accounts.users()] == ["alice"]


def test_password_stored_as_argon2id_only(accounts: Accounts) -> None:
    accounts.add_user("alice", "reviewer", PASSWORD)
    with accounts.engine.connect() as conn:
        stored = conn.execute(select(UserRow.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert PASSWORD.encode() not in _db_bytes(accounts)


def test_set_password_role_disable_preferences(accounts: Accounts, clock: Clock) -> None:
    accounts.add_user("alice", "reviewer", PASSWORD)
    session = accounts.login("alice", PASSWORD, "10.0.0.1")
    accounts.set_password("alice", "another long secret")
    assert accounts.session(session.token) is None  # a new password ends the sessions
    with pytest.raises(LoginRefused):
        accounts.login("alice", PASSWORD, "10.0.0.1")
    accounts.login("alice", "another long secret", "10.0.0.1")
    accounts.set_role("alice", "auditor")
    assert accounts.user("alice").role == "auditor"
    accounts.set_blur("alice", 1)
    accounts.set_break("alice", 25)
    user = accounts.user("alice")
    assert (user.blur, user.break_minutes) == (1, 25)
    for call, message in [
        (lambda: accounts.set_blur("alice", 4), "blur level 4: use 0 (none) to 3 (strongest)"),
        (lambda: accounts.set_break("alice", -1), "break reminder -1: use 0 (off) to 480 "
                                                  "minutes"),
        (lambda: accounts.set_role("alice", "root"), "unknown role 'root': use one of admin, "
                                                     "examiner, reviewer, auditor"),
        (lambda: accounts.set_password("nobody", PASSWORD), "no such user: nobody"),
        (lambda: accounts.set_password("alice", "short"), "the password is too short: use "
                                                          "at least 12 characters"),
        (lambda: accounts.disable("nobody"), "no such user: nobody"),
    ]:
        with pytest.raises(AccountError) as caught:
            call()
        assert str(caught.value) == message
    accounts.disable("alice")
    accounts.disable("alice")  # idempotent
    assert accounts.user("alice").disabled
    accounts.enable("alice")
    assert not accounts.user("alice").disabled


# --- login and rate limiting -------------------------------------------------------------


def test_login(accounts: Accounts, clock: Clock) -> None:
    user = accounts.add_user("alice", "reviewer", PASSWORD)
    session = accounts.login("alice", PASSWORD, "10.0.0.1")
    assert session.user == user
    assert len(session.token) == 43 and len(session.csrf) == 43
    assert session.token != session.csrf
    assert session.created_at == "2026-11-25T09:00:00.000000Z"
    assert session.expires_at == "2026-11-25T09:30:00.000000Z"
    again = accounts.session(session.token)
    assert again is not None
    assert (again.token, again.user, again.csrf) == ("", user, session.csrf)
    assert accounts.login("alice", PASSWORD, "10.0.0.1").token != session.token


def test_wrong_password_and_unknown_user_look_the_same(accounts: Accounts,
                                                       clock: Clock) -> None:
    accounts.add_user("alice", "reviewer", PASSWORD)
    accounts.add_user("carol", "reviewer", PASSWORD)
    accounts.disable("carol")
    messages = []
    for name, password in [("alice", "wrong password!"), ("mallory", PASSWORD),
                           ("../bad name", PASSWORD), ("carol", PASSWORD)]:
        with pytest.raises(LoginRefused) as caught:
            accounts.login(name, password, "10.0.0.1")
        messages.append(str(caught.value))
    assert messages == ["wrong name or password"] * 4


def test_five_failures_lock_the_name(accounts: Accounts, clock: Clock) -> None:
    accounts.add_user("alice", "reviewer", PASSWORD)
    for attempt in range(4):
        with pytest.raises(LoginRefused, match=r"^wrong name or password$"):
            accounts.login("alice", "wrong password!", f"10.0.0.{attempt}")
        clock.advance(seconds=10)
    with pytest.raises(LoginRefused) as caught:  # the fifth locks, from any client
        accounts.login("alice", "wrong password!", "10.0.0.9")
    assert str(caught.value) == "too many failed logins: try again in 860 s"
    clock.advance(minutes=10)
    with pytest.raises(LoginRefused) as caught:  # the right password too
        accounts.login("alice", PASSWORD, "10.0.0.77")
    assert str(caught.value) == "too many failed logins: try again in 260 s"
    clock.advance(seconds=259)
    with pytest.raises(LoginRefused, match="try again in 1 s"):
        accounts.login("alice", PASSWORD, "10.0.0.77")
    clock.advance(seconds=1)  # the first failure is 15 minutes old: four remain
    session = accounts.login("alice", PASSWORD, "10.0.0.77")
    assert session.user.name == "alice"
    # a success clears the name's failures: four more do not lock it
    for _ in range(4):
        with pytest.raises(LoginRefused, match=r"^wrong name or password$"):
            accounts.login("alice", "wrong password!", "10.0.1.1")
    accounts.login("alice", PASSWORD, "10.0.1.2")


def test_five_failures_lock_the_client(accounts: Accounts, clock: Clock) -> None:
    accounts.add_user("alice", "reviewer", PASSWORD)
    for name in ("u1", "u2", "u3", "u4"):
        with pytest.raises(LoginRefused, match=r"^wrong name or password$"):
            accounts.login(name, PASSWORD, "10.6.6.6")
    with pytest.raises(LoginRefused, match=r"^too many failed logins: try again in 900 s$"):
        accounts.login("u5", PASSWORD, "10.6.6.6")
    with pytest.raises(LoginRefused, match=r"^too many failed logins: try again in 900 s$"):
        accounts.login("alice", PASSWORD, "10.6.6.6")  # right password, locked client
    assert accounts.login("alice", PASSWORD, "10.0.0.1").user.name == "alice"  # other client
    clock.advance(minutes=15)
    assert accounts.login("alice", PASSWORD, "10.6.6.6").user.name == "alice"


def test_old_failures_are_pruned(accounts: Accounts, clock: Clock) -> None:
    accounts.add_user("alice", "reviewer", PASSWORD)
    for _ in range(3):
        with pytest.raises(LoginRefused):
            accounts.login("bob", PASSWORD, "10.0.0.1")
    clock.advance(minutes=16)
    accounts.login("alice", PASSWORD, "10.0.0.2")
    with accounts.engine.connect() as conn:
        assert conn.execute(select(LoginFailure)).all() == []


def test_rehash_on_login(accounts: Accounts, monkeypatch: pytest.MonkeyPatch) -> None:
    accounts.add_user("alice", "reviewer", PASSWORD)
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    monkeypatch.setattr(store, "_hasher", stronger)
    accounts.login("alice", PASSWORD, "10.0.0.1")
    with accounts.engine.connect() as conn:
        stored = conn.execute(select(UserRow.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$v=19$m=2048,t=2,p=1$")
    assert accounts.login("alice", PASSWORD, "10.0.0.1").user.name == "alice"


# --- sessions ----------------------------------------------------------------------------


def test_session_idle_expiry(accounts: Accounts, clock: Clock) -> None:
    accounts.add_user("alice", "reviewer", PASSWORD)
    token = accounts.login("alice", PASSWORD, "10.0.0.1").token
    for _ in range(3):  # used every 29 minutes: alive well past the idle limit
        clock.advance(minutes=IDLE_MINUTES - 1)
        session = accounts.session(token)
        assert session is not None
        assert session.expires_at == (clock.now + timedelta(minutes=30)).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ")
    clock.advance(minutes=IDLE_MINUTES, seconds=1)
    assert accounts.session(token) is None
    clock.advance(minutes=-IDLE_MINUTES)  # an expired session is gone, not just hidden
    assert accounts.session(token) is None


def test_requests_arriving_together_after_a_gap_count_it_once(
        accounts: Accounts, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """A grid's thumbnails arrive together after a pause: each read the session's old
    last_seen, but only the request that moves it on counts the gap as time in review."""
    accounts.add_user("alice", "reviewer", PASSWORD)
    token = accounts.login("alice", PASSWORD, "10.0.0.1").token
    clock.advance(seconds=40)
    begin = accounts.engine.begin
    others: list[float] = []

    inside: list[bool] = []

    def interleaved() -> object:  # another request's whole session() lands between the two
        if not inside:
            inside.append(True)
            others.append(accounts.session(token).idle_seconds)  # type: ignore[union-attr]
        return begin()

    monkeypatch.setattr(accounts.engine, "begin", interleaved)
    first = accounts.session(token)
    assert first is not None
    assert (others, first.idle_seconds) == ([40.0], 0.0)


def test_session_absolute_expiry(accounts: Accounts, clock: Clock) -> None:
    accounts.add_user("alice", "reviewer", PASSWORD)
    token = accounts.login("alice", PASSWORD, "10.0.0.1").token
    while clock.now + timedelta(minutes=20) <= START + timedelta(hours=MAX_HOURS):
        clock.advance(minutes=20)
        assert accounts.session(token) is not None
    assert clock.now == START + timedelta(hours=MAX_HOURS)
    assert accounts.session(token).expires_at == "2026-11-25T21:00:00.000000Z"
    clock.advance(seconds=1)
    assert accounts.session(token) is None


def test_session_of_disabled_user_and_logout(accounts: Accounts, clock: Clock) -> None:
    accounts.add_user("alice", "reviewer", PASSWORD)
    accounts.add_user("bob", "reviewer", PASSWORD)
    alice = accounts.login("alice", PASSWORD, "10.0.0.1").token
    bob = accounts.login("bob", PASSWORD, "10.0.0.1").token
    accounts.disable("alice")
    assert accounts.session(alice) is None
    with pytest.raises(LoginRefused, match=r"^wrong name or password$"):
        accounts.login("alice", PASSWORD, "10.0.0.1")
    assert accounts.session(bob) is not None
    accounts.logout(bob)
    accounts.logout(bob)  # twice: nothing
    accounts.logout("")
    assert accounts.session(bob) is None
    assert accounts.session("") is None
    assert accounts.session("not a token") is None


def test_token_stored_hashed(accounts: Accounts) -> None:
    accounts.add_user("alice", "reviewer", PASSWORD)
    session = accounts.login("alice", PASSWORD, "10.0.0.1")
    raw = _db_bytes(accounts)
    assert session.token.encode() not in raw
    assert store._token_hash(session.token).encode() in raw
    assert PASSWORD.encode() not in raw


# --- cases -------------------------------------------------------------------------------


def test_grant_revoke_can_access(accounts: Accounts) -> None:
    settings = accounts.settings
    for case in ("op-alpha", "op-beta"):
        create_case(settings, case)
    admin = accounts.add_user("root", "admin", PASSWORD)
    rev = accounts.add_user("rev", "reviewer", PASSWORD)
    aud = accounts.add_user("aud", "auditor", PASSWORD)
    accounts.grant("rev", "op-alpha")
    accounts.grant("rev", "op-alpha")  # idempotent
    accounts.grant("aud", "op-beta")
    assert accounts.cases_of("rev") == ["op-alpha"]
    assert accounts.cases_of("root") == []
    assert accounts.members("op-alpha") == ["rev"]
    assert accounts.members("op-beta") == ["aud"]
    assert [accounts.can_access(admin, c) for c in ("op-alpha", "op-beta")] == [True, True]
    assert [accounts.can_access(rev, c) for c in ("op-alpha", "op-beta")] == [True, False]
    assert [accounts.can_access(aud, c) for c in ("op-alpha", "op-beta")] == [False, True]
    assert not aud.can_grade  # auditors read, never grade
    accounts.revoke("rev", "op-alpha")
    accounts.revoke("rev", "op-alpha")  # idempotent
    assert not accounts.can_access(rev, "op-alpha")
    assert accounts.cases_of("rev") == []
    accounts.grant("rev", "op-beta")
    accounts.disable("rev")
    assert not accounts.can_access(rev, "op-beta")  # the stale User object does not help


def test_grant_refused(accounts: Accounts) -> None:
    create_case(accounts.settings, "op-alpha")
    accounts.add_user("rev", "reviewer", PASSWORD)
    (accounts.settings.cases_dir / "half-made").mkdir(parents=True)
    for name, case, message in [
        ("rev", "op-missing", "no such case: op-missing"),
        ("rev", "half-made", "no such case: half-made"),
        ("rev", "../op-alpha", "invalid case name '../op-alpha': use 1-64 letters, digits, "
                               "'.', '_' or '-', starting with a letter or digit"),
        ("nobody", "op-alpha", "no such user: nobody"),
    ]:
        with pytest.raises(AccountError) as caught:
            accounts.grant(name, case)
        assert str(caught.value) == message
    assert accounts.cases_of("rev") == []
    with pytest.raises(AccountError, match=r"^no such user: nobody$"):
        accounts.cases_of("nobody")


# --- exposure ----------------------------------------------------------------------------


def test_exposure_accumulates_per_day(accounts: Accounts, clock: Clock) -> None:
    alice = accounts.add_user("alice", "reviewer", PASSWORD)
    bob = accounts.add_user("bob", "reviewer", PASSWORD)
    accounts.record_review(alice, reveals=2, seconds=30.5)
    accounts.record_review(alice, reveals=1)
    accounts.record_review(alice, seconds=60)
    accounts.record_review(alice, reveals=4, seconds=100, day="2026-11-20")
    accounts.record_review(alice, reveals=9, seconds=9, day="2026-11-11")  # 15 days ago
    accounts.record_review(bob, reveals=7, seconds=1)
    assert accounts.exposure("alice") == [
        {"day": "2026-11-25", "reveals": 3, "seconds": 90.5},
        {"day": "2026-11-20", "reveals": 4, "seconds": 100.0},
    ]
    assert accounts.exposure("alice", days=30)[-1] == {
        "day": "2026-11-11", "reveals": 9, "seconds": 9.0}
    assert accounts.exposure("alice", days=1) == [
        {"day": "2026-11-25", "reveals": 3, "seconds": 90.5}]
    clock.advance(hours=15)  # past midnight UTC: a new day
    accounts.record_review(alice, reveals=1, seconds=5)
    assert accounts.exposure("alice", days=2) == [
        {"day": "2026-11-26", "reveals": 1, "seconds": 5.0},
        {"day": "2026-11-25", "reveals": 3, "seconds": 90.5},
    ]
    expected = [{"day": "2026-11-25", "reveals": 7, "seconds": 1.0}]
    assert accounts.exposure("bob") == expected
    for kwargs in ({"reveals": -1}, {"seconds": -1.0}, {"day": "yesterday"}):
        with pytest.raises(AccountError):
            accounts.record_review(alice, **kwargs)
    with pytest.raises(AccountError, match=r"^no such user: nobody$"):
        accounts.exposure("nobody")


# --- audit -------------------------------------------------------------------------------


def test_audit_chain_records_every_change(accounts: Accounts, clock: Clock) -> None:
    create_case(accounts.settings, "op-alpha")
    accounts.add_user("alice", "reviewer", PASSWORD, actor="boss")
    accounts.set_password("alice", "second long secret", actor="boss")
    accounts.set_role("alice", "examiner", actor="boss")
    accounts.grant("alice", "op-alpha", actor="boss")
    accounts.revoke("alice", "op-alpha", actor="boss")
    session = accounts.login("alice", "second long secret", "10.0.0.1")
    accounts.logout(session.token)
    for _ in range(5):
        with pytest.raises(LoginRefused):
            accounts.login("alice", "wrong password!", "10.0.0.2")
    with pytest.raises(LoginRefused):
        accounts.login("someone-else", "perhaps a password", "10.0.0.3")
    accounts.disable("alice", actor="boss")
    events = _events(accounts)
    assert [(e["actor"], e["action"], e["object"]) for e in events] == [
        ("boss", "user.added", "alice"),
        ("boss", "user.password_set", "alice"),
        ("boss", "user.role_set", "alice"),
        ("boss", "user.granted", "alice"),
        ("boss", "user.revoked", "alice"),
        ("alice", "user.login", "alice"),
        ("alice", "user.logout", "alice"),
        *[("alice", "user.login_failed", "alice")] * 5,
        ("alice", "user.locked_out", "alice"),
        ("(unknown)", "user.login_failed", "(unknown)"),
        ("boss", "user.disabled", "alice"),
    ]
    details = [json.loads(e["details"]) for e in events]
    assert details[0] == {"role": "reviewer"}
    assert details[2] == {"from": "reviewer", "to": "examiner"}
    assert details[3] == {"case": "op-alpha"}
    assert details[5]["client"] == "10.0.0.1"
    assert details[7] == {"client": "10.0.0.2", "reason": "wrong password"}
    lockout = {"client": "10.0.0.2", "seconds": 900, "until": "2026-11-25T09:15:00.000000Z"}
    assert details[12] == lockout
    assert details[13] == {"client": "10.0.0.3", "reason": "unknown user"}
    text = json.dumps(events)
    for secret in (PASSWORD, "second long secret", "wrong password!", "perhaps a password",
                   session.token, session.csrf, store._token_hash(session.token),
                   "someone-else"):
        assert secret not in text
    with accounts.engine.connect() as conn:
        result = verify(conn)
    assert result.ok and result.events == len(events)


def test_audit_chain_detects_tampering(accounts: Accounts) -> None:
    accounts.add_user("alice", "reviewer", PASSWORD)
    accounts.add_user("bob", "reviewer", PASSWORD)
    with accounts.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_events SET details = '{\"role\":\"admin\"}' "
                             "WHERE seq = 1")
    with accounts.engine.connect() as conn:
        result = verify(conn)
    assert (result.ok, result.first_bad) == (False, 1)


def test_reopened_database(home: Path) -> None:
    Accounts(load_settings(home)).add_user("alice", "admin", PASSWORD)
    again = Accounts(load_settings(home))
    assert again.user("alice").is_admin


# --- never a crash -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.one_of(st.text(max_size=70),
                      st.text(string.ascii_letters + string.digits + "._-", max_size=70)),
       password=st.text(max_size=40), role=st.sampled_from([*ROLES, "root", ""]))
def test_add_user_never_crashes(accounts: Accounts, name: str, password: str,
                                role: str) -> None:
    try:
        user = accounts.add_user(name, role, password)
    except AccountError:
        return
    assert user.name == name and user.role == role and len(password) >= 12
