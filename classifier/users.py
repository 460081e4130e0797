"""Analyst accounts and sessions for the web interface.

Passwords are hashed with argon2id (argon2-cffi). A session is a random token in an HttpOnly
cookie; the database keeps only the token's sha256, the user and a CSRF token, so a copy of
the database does not let anyone in. Roles: ``analyst`` decides, ``reader`` only reads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

import sqlite_utils
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .dates import now_utc

ROLES = ("analyst", "reader")
SESSION_HOURS = 12
MIN_PASSWORD = 10
_hasher = PasswordHasher()
# A real hash to verify against when the name is unknown, so both cases take the same time.
_DUMMY = _hasher.hash("not a password of anyone")


class UserError(Exception):
    """An account that cannot be created or used as asked."""


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str

    @property
    def can_decide(self) -> bool:
        return self.role == "analyst"


def add_user(db: sqlite_utils.Database, name: str, password: str, role: str = "analyst") -> User:
    if not re.fullmatch(r"[A-Za-z0-9._@-]{1,64}", name or ""):
        raise UserError("a user name is 1-64 letters, digits or . _ @ -")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    if db["users"].count_where("name = ?", [name]):
        raise UserError(f"user {name!r} exists")
    row = {"name": name, "password_hash": _hasher.hash(password), "role": role, "disabled": 0,
           "created_utc": now_utc()}  # fmt: skip
    user_id = db["users"].insert(row).last_pk
    return User(user_id, name, role)


def list_users(db: sqlite_utils.Database) -> list[dict]:
    return list(db.query("select id, name, role, disabled, created_utc from users order by name"))


def disable_user(db: sqlite_utils.Database, name: str) -> None:
    """Disable an account and end its sessions; its past decisions stay attributed to it."""
    rows = list(db["users"].rows_where("name = ?", [name]))
    if not rows:
        raise UserError(f"no user {name!r}: see `evidence users list`")
    with db.atomic():
        db["users"].update(rows[0]["id"], {"disabled": 1})
        db.execute("delete from sessions where user_id = ?", [rows[0]["id"]])


def authenticate(db: sqlite_utils.Database, name: str, password: str) -> User | None:
    rows = list(db["users"].rows_where("name = ?", [name]))
    row = rows[0] if rows else None
    try:
        _hasher.verify(row["password_hash"] if row else _DUMMY, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row["disabled"]:
        return None
    if _hasher.check_needs_rehash(row["password_hash"]):
        db["users"].update(row["id"], {"password_hash": _hasher.hash(password)})
    return User(row["id"], row["name"], row["role"])


def _token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(db: sqlite_utils.Database, user: User) -> tuple[str, str]:
    """A new session: (token for the cookie, CSRF token for the forms)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=SESSION_HOURS)).isoformat(timespec="seconds")
    db["sessions"].insert({"id": _token_id(token), "user_id": user.id, "csrf": csrf, "created_utc": now_utc(),
                           "expires_utc": expires})  # fmt: skip
    return token, csrf


def session_user(db: sqlite_utils.Database, token: str | None) -> tuple[User, str] | None:
    """The live session's user and CSRF token, or None (unknown, expired, or the user disabled)."""
    if not token:
        return None
    sql = (
        "select u.id, u.name, u.role, s.csrf from sessions s join users u on u.id = s.user_id "
        "where s.id = ? and s.expires_utc > ? and u.disabled = 0"
    )
    row = db.execute(sql, [_token_id(token), now_utc()]).fetchone()
    return (User(row[0], row[1], row[2]), row[3]) if row else None


def end_session(db: sqlite_utils.Database, token: str | None) -> None:
    if token:
        db.execute("delete from sessions where id = ?", [_token_id(token)])
