"""The accounts database's tables (one ``accounts.db`` per home, shared by every case and
every ``safeguard serve`` process).

Passwords are stored only as argon2id hashes and session tokens only as their SHA-256;
everything a web process needs (sessions, failed logins, exposure) lives here, not in
process memory. The audit chain has the same table and hashing as a case's.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from safeguard.store.models import AuditColumns


class AccountsBase(DeclarativeBase):
    pass


class UserRow(AccountsBase):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(Text)  # argon2id, PHC string format
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    #: safe-view strength 0..3 (3: strongest); a user may turn it down for themselves
    blur: Mapped[int] = mapped_column(Integer, default=3)
    #: minutes of review before a break reminder (0: no reminder)
    break_minutes: Mapped[int] = mapped_column(Integer, default=50)
    created_at: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(128))
    password_changed_at: Mapped[str] = mapped_column(String(32))


class Membership(AccountsBase):
    """A user granted a case (admins need none: they reach every case)."""

    __tablename__ = "memberships"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    case_name: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    granted_at: Mapped[str] = mapped_column(String(32))
    granted_by: Mapped[str] = mapped_column(String(128))


class SessionRow(AccountsBase):
    __tablename__ = "sessions"

    #: SHA-256 (hex) of the session token; the token itself is never stored
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[str] = mapped_column(String(32))
    last_seen: Mapped[str] = mapped_column(String(32))


class LoginFailure(AccountsBase):
    """One failed login, kept for the rate-limit window (pruned after it)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), index=True)  # as typed, cut to 128
    client: Mapped[str] = mapped_column(String(128), index=True)
    at: Mapped[str] = mapped_column(String(32), index=True)


class Exposure(AccountsBase):
    """A reviewer's reveals and seconds in review on one UTC day."""

    __tablename__ = "exposure"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, UTC
    reveals: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)


class AccountsAuditEvent(AuditColumns, AccountsBase):
    """Same columns as the case store's ``audit_events`` so ``audit.log`` serves both."""

    __tablename__ = "audit_events"
