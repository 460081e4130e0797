"""Analyst accounts and sessions for the web interface.

Passwords are hashed with argon2id (argon2-cffi). A session is a random token in an HttpOnly
cookie; the database keeps only the token's sha256, the user and a CSRF token, so a copy of
the database does not let anyone in. Roles: ``analyst`` decides, ``reader`` only reads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import math
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import sqlite_utils
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .dates import now_utc
from .store import new_id

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
    if db.table("users").count_where("name = ?", [name]):
        raise UserError(f"user {name!r} exists")
    row = {"name": name, "password_hash": _hasher.hash(password), "role": role, "disabled": 0,
           "created_utc": now_utc()}  # fmt: skip
    return User(new_id(db.table("users").insert(row)), name, role)


def list_users(db: sqlite_utils.Database) -> list[dict]:
    return list(db.query("select id, name, role, disabled, created_utc from users order by name"))


def has_active_users(db: sqlite_utils.Database) -> bool:
    """Whether any account may log in."""
    return bool(db["users"].count_where("disabled = 0"))


def disable_user(db: sqlite_utils.Database, name: str) -> None:
    """Disable an account and end its sessions; its past decisions stay attributed to it."""
    rows = list(db.table("users").rows_where("name = ?", [name]))
    if not rows:
        raise UserError(f"no user {name!r}: see `evidence users list`")
    with db.atomic():
        db.table("users").update(rows[0]["id"], {"disabled": 1})
        db.execute("delete from sessions where user_id = ?", [rows[0]["id"]])


def authenticate(db: sqlite_utils.Database, name: str, password: str) -> User | None:
    rows = list(db.table("users").rows_where("name = ?", [name]))
    row = rows[0] if rows else None
    try:
        _hasher.verify(row["password_hash"] if row else _DUMMY, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row["disabled"]:
        return None
    if _hasher.check_needs_rehash(row["password_hash"]):
        db.table("users").update(row["id"], {"password_hash": _hasher.hash(password)})
    return User(row["id"], row["name"], row["role"])


def _token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(db: sqlite_utils.Database, user: User) -> tuple[str, str]:
    """A new session: (token for the cookie, CSRF token for the forms)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=SESSION_HOURS)).isoformat(timespec="seconds")
    db.table("sessions").insert({"id": _token_id(token), "user_id": user.id, "csrf": csrf, "created_utc": now_utc(),
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


class LoginThrottle:
    """Failed logins, remembered in this process's memory, and who must wait before trying again.

    Two limits within a sliding window of ``window`` seconds:

    - ``per_pair`` failures for one name from one client address refuse that name *from that
      address* only: the analyst logs in from anywhere else, so nobody can lock an account
      out by failing on purpose;
    - ``per_address`` failures from one address, whatever the names, refuse that address for
      every name: trying many names (password spraying) is slowed as much as trying one.

    An address is the peer the server sees; an IPv6 address counts as its /64 network (one
    host usually holds a whole /64). A successful login forgets the failures of its name at
    its address, not those of the address (one's own account must not reset an attacker's
    count). Nothing is written anywhere: a restart forgets, and each server process counts
    for itself. The table is pruned so it stays at most ``max_keys`` entries.
    """

    def __init__(
        self,
        *,
        per_pair: int = 10,
        per_address: int = 20,
        window: float = 15 * 60,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.per_pair, self.per_address, self.window = per_pair, per_address, window
        self.max_keys, self.clock = max_keys, clock
        # key -> the times of its most recent failures (at most its limit: older ones cannot matter)
        self._failures: dict[tuple, deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def address_key(address: str | None) -> str:
        """The address as the throttle counts it: IPv4 as is, IPv6 by its /64, else the raw text."""
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:  # not an IP (a unix socket, a proxy's odd header): its text, bounded
            return (address or "unknown")[:64]
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped is not None:
                return str(ip.ipv4_mapped)
            return str(ipaddress.ip_network(f"{ip}/64", strict=False))
        return str(ip)

    def _keys(self, name: str, address: str | None) -> list[tuple[tuple, int]]:
        where = self.address_key(address)
        # the name's hash, not the name: a form can post a megabyte of name, the table keeps 32 bytes
        named = hashlib.sha256(name.encode("utf-8", "replace")).digest()
        return [(("pair", named, where), self.per_pair), (("address", where), self.per_address)]

    def _recent(self, key: tuple, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, name: str, address: str | None) -> int | None:
        """Seconds until ``name`` may try again from ``address``, or None if it may try now."""
        with self._lock:
            now = self.clock()
            waits = [
                self.window - (now - times[0])
                for key, limit in self._keys(name, address)
                if len(times := self._recent(key, now)) >= limit
            ]
        return max(1, math.ceil(max(waits))) if waits else None

    def failed(self, name: str, address: str | None) -> None:
        """Count one failed login for ``name`` from ``address``."""
        with self._lock:
            now = self.clock()
            for key, limit in self._keys(name, address):
                self._recent(key, now)
                self._failures.setdefault(key, deque(maxlen=limit)).append(now)
            if len(self._failures) > self.max_keys:
                self._prune(now)

    def succeeded(self, name: str, address: str | None) -> None:
        """Forget the failures of ``name`` from ``address`` (the address's own count stays)."""
        with self._lock:
            self._failures.pop(self._keys(name, address)[0][0], None)

    def _prune(self, now: float) -> None:
        for key in list(self._failures):
            self._recent(key, now)
        # still too many (a flood of addresses): forget the entries that were added first
        for key in list(self._failures)[: max(0, len(self._failures) - self.max_keys)]:
            del self._failures[key]
