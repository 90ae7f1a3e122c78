"""Accounts of the review web app: users and roles, case membership, login with rate
limiting, sessions, and each reviewer's exposure.

Layout under ``HOME/accounts/``::

    accounts.db         users, memberships, sessions, failed logins, exposure and the
                        accounts' own audit chain (SQLite, WAL; or SAFEGUARD_DATABASE_URL
                        with ``{case}`` replaced by ``accounts``)

All state is in the database, none in process memory, so several ``safeguard serve``
processes may share it. Passwords are kept only as argon2id hashes, session tokens only as
their SHA-256. Every change (users, passwords, roles, grants, logins, lockouts, logouts) is
an event in the audit chain; no event carries a password or a token.

Time comes from :func:`_now`, which tests replace to move the clock.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, delete, insert, select, update

from safeguard.audit import log as audit
from safeguard.config import Settings
from safeguard.errors import AccountError, LoginRefused
from safeguard.store import db
from safeguard.store.cases import ACCOUNTS_DB_NAME, MARKER

from .models import Exposure, LoginFailure, Membership, SessionRow, UserRow

MIGRATIONS = Path(__file__).with_name("migrations")
DB_FILE = "accounts.db"

ROLES = ("admin", "examiner", "reviewer", "auditor")
#: a session ends after this many minutes without a request ...
IDLE_MINUTES = 30
#: ... and this many hours after login, whatever its use
MAX_HOURS = 12
#: failed logins for one name, or from one client, within the window that lock it ...
MAX_FAILURES = 5
#: ... for the rest of the window (sliding: until the fifth-newest failure is this old)
WINDOW_MINUTES = 15
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
BLUR_LEVELS = range(0, 4)
DEFAULT_BLUR = 3
DEFAULT_BREAK = 50
MAX_BREAK = 480
#: a session's last_seen is written at most this often (one write per request otherwise)
TOUCH_SECONDS = 15

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
WRONG = "wrong name or password"
UNKNOWN = "(unknown)"

#: argon2id with argon2-cffi's default (RFC 9106 low-memory) parameters; tests may swap it
_hasher = PasswordHasher()
_dummy_hash: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    disabled: bool
    blur: int = DEFAULT_BLUR
    break_minutes: int = DEFAULT_BREAK

    @property
    def can_grade(self) -> bool:
        return self.role in ("admin", "examiner", "reviewer")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_examiner(self) -> bool:
        return self.role in ("admin", "examiner")


@dataclass(frozen=True)
class Session:
    token: str  # only from login(); "" from session()
    user: User
    csrf: str
    created_at: str
    #: when it ends unless used again: the idle limit or the absolute limit, the earlier
    expires_at: str
    #: seconds since the session's last use was recorded, when this request recorded it
    #: (0 otherwise: uses less than TOUCH_SECONDS apart are counted at the next one)
    idle_seconds: float = 0.0


def _user(row: Any) -> User:
    return User(id=row.id, name=row.name, role=row.role, disabled=bool(row.disabled),
                blur=row.blur, break_minutes=row.break_minutes)


def check_name(name: str, what: str = "user name") -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise AccountError(f"invalid {what} {name!r}: use 1-64 letters, digits, '.', '_' or "
                           "'-', starting with a letter or digit")
    return name


def check_password(password: str) -> str:
    if not isinstance(password, str):
        raise AccountError("the password must be text")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password is too short: use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"the password is too long: use at most {MAX_PASSWORD} characters")
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise AccountError("the password is not valid text (unpaired surrogate)") from None
    return password


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _dummy() -> str:
    """A hash to verify against when the name is unknown: same work, same answer time."""
    global _dummy_hash
    if _dummy_hash is None or _hasher.check_needs_rehash(_dummy_hash):
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(24))
    return _dummy_hash


class Accounts:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = settings.home / "accounts"
        self._engine: Engine | None = None

    # --- opening --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``accounts.db`` in the accounts folder, or ``SAFEGUARD_DATABASE_URL`` with
        ``{case}`` = ``accounts``."""
        url = self.settings.database_url
        if url:
            return url.replace("{case}", ACCOUNTS_DB_NAME)
        return db.sqlite_url(self.folder / DB_FILE)

    @property
    def engine(self) -> Engine:
        """The accounts database, created and migrated on first use (``audit.log.verify``
        reads its chain like a case's)."""
        if self._engine is None:
            url = self.url
            if not self.settings.database_url:
                self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._engine = db.open_store(url, MIGRATIONS, AccountError, "accounts database")
        return self._engine

    def audit_log(self, action: str, obj: str, details: dict[str, Any],
                  actor: str | None = None) -> None:
        """Append one event to the accounts' audit chain (for the web layer's own events)."""
        with self.engine.begin() as conn:
            audit.append(conn, action, obj, details, actor)

    # --- users ----------------------------------------------------------------------------

    def add_user(self, name: str, role: str, password: str, actor: str | None = None) -> User:
        check_name(name)
        check_role(role)
        check_password(password)
        password_hash = _hasher.hash(password)
        actor = actor or audit.current_actor()
        with self.engine.begin() as conn:
            if self._row(conn, name) is not None:
                raise AccountError(f"user {name!r} exists already")
            now = _iso(_now())
            conn.execute(insert(UserRow), {
                "name": name, "role": role, "password_hash": password_hash, "disabled": False,
                "blur": DEFAULT_BLUR, "break_minutes": DEFAULT_BREAK, "created_at": now,
                "created_by": actor, "password_changed_at": now})
            audit.append(conn, "user.added", name, {"role": role}, actor)
            return _user(self._row(conn, name))

    def set_password(self, name: str, password: str, actor: str | None = None) -> None:
        """Replace a password; the user's sessions end (log in again)."""
        check_password(password)
        password_hash = _hasher.hash(password)
        with self.engine.begin() as conn:
            row = self._need(conn, name)
            conn.execute(update(UserRow).where(UserRow.id == row.id).values(
                password_hash=password_hash, password_changed_at=_iso(_now())))
            ended = self._end_sessions(conn, row.id)
            audit.append(conn, "user.password_set", name, {"sessions_ended": ended}, actor)

    def set_role(self, name: str, role: str, actor: str | None = None) -> None:
        check_role(role)
        with self.engine.begin() as conn:
            row = self._need(conn, name)
            if row.role == role:
                return
            conn.execute(update(UserRow).where(UserRow.id == row.id).values(role=role))
            audit.append(conn, "user.role_set", name, {"from": row.role, "to": role}, actor)

    def disable(self, name: str, actor: str | None = None) -> None:
        """Refuse the user's logins and end their sessions (idempotent)."""
        with self.engine.begin() as conn:
            row = self._need(conn, name)
            if row.disabled:
                return
            conn.execute(update(UserRow).where(UserRow.id == row.id).values(disabled=True))
            ended = self._end_sessions(conn, row.id)
            audit.append(conn, "user.disabled", name, {"sessions_ended": ended}, actor)

    def enable(self, name: str, actor: str | None = None) -> None:
        """Undo :meth:`disable` (idempotent)."""
        with self.engine.begin() as conn:
            row = self._need(conn, name)
            if not row.disabled:
                return
            conn.execute(update(UserRow).where(UserRow.id == row.id).values(disabled=False))
            audit.append(conn, "user.enabled", name, {}, actor)

    def set_blur(self, name: str, level: int, actor: str | None = None) -> None:
        if isinstance(level, bool) or not isinstance(level, int) or level not in BLUR_LEVELS:
            raise AccountError(f"blur level {level!r}: use 0 (none) to 3 (strongest)")
        self._set_preference(name, "blur", level, actor)

    def set_break(self, name: str, minutes: int, actor: str | None = None) -> None:
        if (isinstance(minutes, bool) or not isinstance(minutes, int)
                or not 0 <= minutes <= MAX_BREAK):
            raise AccountError(f"break reminder {minutes!r}: use 0 (off) to {MAX_BREAK} "
                               "minutes")
        self._set_preference(name, "break_minutes", minutes, actor)

    def _set_preference(self, name: str, column: str, value: int, actor: str | None) -> None:
        with self.engine.begin() as conn:
            row = self._need(conn, name)
            if getattr(row, column) == value:
                return
            conn.execute(update(UserRow).where(UserRow.id == row.id).values({column: value}))
            audit.append(conn, "user.preference_set", name,
                         {column: value, "from": getattr(row, column)}, actor or name)

    def user(self, name: str) -> User | None:
        with self.engine.connect() as conn:
            row = self._row(conn, name)
        return _user(row) if row is not None else None

    def existing_user(self, name: str) -> User | None:
        """``name``'s account; None when there is none, or no accounts database at all (a
        home without users: asking does not create one)."""
        if not self.settings.database_url and not (self.folder / DB_FILE).exists():
            return None
        return self.user(name)

    def users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(UserRow).order_by(UserRow.name)).all()
        return [_user(row) for row in rows]

    # --- cases ----------------------------------------------------------------------------

    def grant(self, name: str, case: str, actor: str | None = None) -> None:
        """Make a user a member of an existing case (idempotent: no event when granted)."""
        check_name(case, "case name")
        if not (self.settings.cases_dir / case / MARKER).is_file():
            raise AccountError(f"no such case: {case}")
        actor = actor or audit.current_actor()
        with self.engine.begin() as conn:
            row = self._need(conn, name)
            if self._member(conn, row.id, case):
                return
            conn.execute(insert(Membership), {"user_id": row.id, "case_name": case,
                                              "granted_at": _iso(_now()), "granted_by": actor})
            audit.append(conn, "user.granted", name, {"case": case}, actor)

    def revoke(self, name: str, case: str, actor: str | None = None) -> None:
        """End a membership (idempotent; the case need not exist any more)."""
        check_name(case, "case name")
        with self.engine.begin() as conn:
            row = self._need(conn, name)
            if not self._member(conn, row.id, case):
                return
            conn.execute(delete(Membership).where(Membership.user_id == row.id,
                                                  Membership.case_name == case))
            audit.append(conn, "user.revoked", name, {"case": case}, actor)

    def cases_of(self, name: str) -> list[str]:
        """The cases granted to a user (an admin reaches every case, granted or not)."""
        with self.engine.connect() as conn:
            row = self._need(conn, name)
            return list(conn.execute(select(Membership.case_name).where(
                Membership.user_id == row.id).order_by(Membership.case_name)).scalars())

    def members(self, case: str) -> list[str]:
        """The users granted a case (admins, who reach it anyway, only when granted)."""
        with self.engine.connect() as conn:
            return list(conn.execute(
                select(UserRow.name).join(Membership, Membership.user_id == UserRow.id)
                .where(Membership.case_name == case).order_by(UserRow.name)).scalars())

    def can_access(self, user: User, case: str) -> bool:
        """Admins: every case; everyone else: the cases granted. Read from the database,
        so a revocation in another process counts at once; disabled users: none."""
        with self.engine.connect() as conn:
            row = conn.execute(select(UserRow).where(UserRow.id == user.id)).first()
            if row is None or row.disabled:
                return False
            if row.role == "admin":
                return True
            return self._member(conn, row.id, case)

    # --- login and sessions ---------------------------------------------------------------

    def login(self, name: str, password: str, client: str) -> Session:
        """Check a password and open a session, or raise :class:`LoginRefused`.

        An unknown name, a wrong password and a disabled user take the same path (a
        dummy hash is verified for unknown names) and give the same message. After
        ``MAX_FAILURES`` failures for one name or from one client within
        ``WINDOW_MINUTES``, logins are refused, the right password too, until the window
        has passed.

        The attempt is counted before its password is checked: in one write transaction
        (which holds the database's write lock, so concurrent logins, in this process or
        another, are counted one after the other) the lockout is checked and, when there is
        none, the attempt is recorded as a failure; a success then takes it back. So at most
        ``MAX_FAILURES`` passwords are checked in a window, however many arrive at once;
        an attempt beyond them is refused without checking its password."""
        name = name if isinstance(name, str) else ""
        key_name, key_client = name[:128], str(client)[:128]
        now = _now()
        fills = False
        with self._writing() as conn:
            wait = self._locked(conn, key_name, key_client, now)
            if not wait:
                conn.execute(insert(LoginFailure), {"name": key_name, "client": key_client,
                                                    "at": _iso(now)})
                # this attempt is the one that fills the window: should it fail, the
                # lockout starts with it
                fills = self._locked(conn, key_name, key_client, now) > 0
            row = self._row(conn, name) if NAME.fullmatch(name) else None
        if wait:
            raise LoginRefused(f"too many failed logins: try again in {wait} s")
        good = _verify(row.password_hash if row is not None else _dummy(),
                       password if isinstance(password, str) else "")
        if row is None or not good or row.disabled:
            reason = ("unknown user" if row is None else "disabled" if row.disabled
                      else "wrong password")
            self._failed(key_name, key_client, row, reason, fills)
        rehash = _hasher.check_needs_rehash(row.password_hash)
        new_hash = _hasher.hash(password) if rehash else None
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        token_hash = _token_hash(token)
        with self.engine.begin() as conn:
            conn.execute(delete(LoginFailure).where(LoginFailure.name == key_name))
            self._prune(conn, now)
            if new_hash:
                conn.execute(update(UserRow).where(UserRow.id == row.id).values(
                    password_hash=new_hash))
            conn.execute(insert(SessionRow), {
                "token_hash": token_hash, "user_id": row.id, "csrf": csrf,
                "client": key_client, "created_at": _iso(now), "last_seen": _iso(now)})
            details: dict[str, Any] = {"client": key_client, "session": token_hash[:16]}
            if rehash:
                details["rehashed"] = True
            audit.append(conn, "user.login", name, details, name)
        return Session(token=token, user=_user(row), csrf=csrf, created_at=_iso(now),
                       expires_at=_iso(_expiry(now, now)))

    def _failed(self, name: str, client: str, row: Any, reason: str, fills: bool) -> NoReturn:
        """Audit a failed login (recorded already, by :meth:`login`) and the lockout it
        starts when it ``fills`` the window, and refuse."""
        now = _now()
        known = row is not None
        with self._writing() as conn:
            # an unknown name may be a password typed in the wrong field: never record it
            obj = name if known else UNKNOWN
            audit.append(conn, "user.login_failed", obj, {"client": client, "reason": reason},
                         obj)
            wait = self._locked(conn, name, client, now) if fills else 0
            if wait:
                audit.append(conn, "user.locked_out", obj, {
                    "client": client, "seconds": wait,
                    "until": _iso(now + timedelta(seconds=wait))}, obj)
        if wait:
            raise LoginRefused(f"too many failed logins: try again in {wait} s")
        raise LoginRefused(WRONG)

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction that holds the write lock from its first statement, so that
        what it reads stays true until it commits (SQLite: BEGIN IMMEDIATE, which waits up
        to the busy timeout; PostgreSQL: the audit chain's advisory lock, the one every
        audit append takes first)."""
        with audit.locked_transaction(self.engine) as conn:
            yield conn

    @staticmethod
    def _locked(conn: Connection, name: str, client: str, now: datetime) -> int:
        """Seconds until a login for this name from this client is allowed again; 0: now."""
        cutoff = _iso(now - timedelta(minutes=WINDOW_MINUTES))
        until = now
        for column, value in ((LoginFailure.name, name), (LoginFailure.client, client)):
            times = conn.execute(
                select(LoginFailure.at).where(column == value, LoginFailure.at > cutoff)
                .order_by(LoginFailure.at.desc()).limit(MAX_FAILURES)).scalars().all()
            if len(times) >= MAX_FAILURES:
                until = max(until, _parse(times[-1]) + timedelta(minutes=WINDOW_MINUTES))
        return max(1, math.ceil((until - now).total_seconds())) if until > now else 0

    @staticmethod
    def _prune(conn: Connection, now: datetime) -> None:
        """Forget failures older than the window and sessions past their limits."""
        conn.execute(delete(LoginFailure).where(
            LoginFailure.at <= _iso(now - timedelta(minutes=WINDOW_MINUTES))))
        conn.execute(delete(SessionRow).where(
            (SessionRow.last_seen < _iso(now - timedelta(minutes=IDLE_MINUTES)))
            | (SessionRow.created_at < _iso(now - timedelta(hours=MAX_HOURS)))))

    def session(self, token: str) -> Session | None:
        """The live session of a token, its last use moved to now; None when the token is
        unknown, the session idle or too old, or the user disabled."""
        if not isinstance(token, str) or not token:
            return None
        token_hash = _token_hash(token)
        now = _now()
        with self.engine.connect() as conn:
            session = conn.execute(select(SessionRow).where(
                SessionRow.token_hash == token_hash)).first()
            row = conn.execute(select(UserRow).where(
                UserRow.id == session.user_id)).first() if session is not None else None
        if session is None or row is None:
            return None
        created, last_seen = _parse(session.created_at), _parse(session.last_seen)
        if row.disabled or now > _expiry(created, last_seen):
            with self.engine.begin() as conn:
                conn.execute(delete(SessionRow).where(SessionRow.token_hash == token_hash))
            return None
        idle = (now - last_seen).total_seconds()
        took = False
        if idle >= TOUCH_SECONDS:
            # compare and set: of requests arriving together after a gap (a grid's
            # thumbnails), only the one that moves last_seen on counts the gap
            with self.engine.begin() as conn:
                took = conn.execute(update(SessionRow).where(
                    SessionRow.token_hash == token_hash,
                    SessionRow.last_seen == session.last_seen)
                    .values(last_seen=_iso(now))).rowcount == 1
            last_seen = now
        return Session(token="", user=_user(row), csrf=session.csrf,
                       created_at=session.created_at,
                       expires_at=_iso(_expiry(created, last_seen)),
                       idle_seconds=idle if took else 0.0)

    def logout(self, token: str) -> None:
        if not isinstance(token, str) or not token:
            return
        token_hash = _token_hash(token)
        with self.engine.begin() as conn:
            found = conn.execute(
                select(UserRow.name).join(SessionRow, UserRow.id == SessionRow.user_id)
                .where(SessionRow.token_hash == token_hash)).first()
            if found is None:
                return
            conn.execute(delete(SessionRow).where(SessionRow.token_hash == token_hash))
            audit.append(conn, "user.logout", found.name, {"session": token_hash[:16]},
                         found.name)

    # --- exposure -------------------------------------------------------------------------

    def record_review(self, user: User, *, reveals: int = 0, seconds: float = 0.0,
                      day: str | None = None) -> None:
        """Add reveals and seconds in review to the user's total of a UTC day (today)."""
        if isinstance(reveals, bool) or not isinstance(reveals, int) or reveals < 0:
            raise AccountError(f"reveals must be a whole number >= 0, not {reveals!r}")
        if not isinstance(seconds, int | float) or not 0 <= seconds < math.inf:
            raise AccountError(f"seconds must be a number >= 0, not {seconds!r}")
        if day is None:
            day = _now().date().isoformat()
        else:
            try:
                day = date.fromisoformat(day).isoformat()
            except (TypeError, ValueError):
                raise AccountError(f"day must be YYYY-MM-DD, not {day!r}") from None
        with self.engine.begin() as conn:
            conn.execute(db.insert_ignore(conn, Exposure.__table__), {  # type: ignore[arg-type]
                "user_id": user.id, "day": day, "reveals": 0, "seconds": 0.0})
            conn.execute(update(Exposure).where(Exposure.user_id == user.id,
                                                Exposure.day == day).values(
                reveals=Exposure.reveals + reveals, seconds=Exposure.seconds + float(seconds)))

    def exposure(self, name: str, days: int = 14) -> list[dict[str, Any]]:
        """Reveals and seconds in review per UTC day, newest first, over the last ``days``
        days (today included); days without review are left out."""
        first = (_now().date() - timedelta(days=max(days, 1) - 1)).isoformat()
        with self.engine.connect() as conn:
            row = self._need(conn, name)
            rows = conn.execute(select(Exposure).where(
                Exposure.user_id == row.id, Exposure.day >= first)
                .order_by(Exposure.day.desc())).all()
        return [{"day": r.day, "reveals": r.reveals, "seconds": r.seconds} for r in rows]

    # --- helpers --------------------------------------------------------------------------

    @staticmethod
    def _row(conn: Connection, name: str) -> Any:
        return conn.execute(select(UserRow).where(UserRow.name == name)).first()

    def _need(self, conn: Connection, name: str) -> Any:
        row = self._row(conn, name)
        if row is None:
            raise AccountError(f"no such user: {name}")
        return row

    @staticmethod
    def _member(conn: Connection, user_id: int, case: str) -> bool:
        return conn.execute(select(Membership.user_id).where(
            Membership.user_id == user_id, Membership.case_name == case)).first() is not None

    @staticmethod
    def _end_sessions(conn: Connection, user_id: int) -> int:
        return conn.execute(delete(SessionRow).where(SessionRow.user_id == user_id)).rowcount


def _expiry(created: datetime, last_seen: datetime) -> datetime:
    return min(last_seen + timedelta(minutes=IDLE_MINUTES), created + timedelta(hours=MAX_HOURS))
