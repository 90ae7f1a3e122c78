"""Accounts of the review web app: users, roles, case membership, sessions, exposure
(``HOME/accounts/accounts.db``, its own Alembic chain and audit chain)."""

from safeguard.accounts.store import (
    IDLE_MINUTES,
    MAX_FAILURES,
    MAX_HOURS,
    ROLES,
    WINDOW_MINUTES,
    AccountError,
    Accounts,
    LoginRefused,
    Session,
    User,
)

__all__ = [
    "IDLE_MINUTES",
    "MAX_FAILURES",
    "MAX_HOURS",
    "ROLES",
    "WINDOW_MINUTES",
    "AccountError",
    "Accounts",
    "LoginRefused",
    "Session",
    "User",
]
