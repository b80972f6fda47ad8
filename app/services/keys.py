"""API keys: random secrets shown once, stored as SHA-256 hashes, with a role."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.models import ApiKey, utcnow

Role = Literal["admin", "app"]
ROLES: tuple[Role, ...] = ("admin", "app")
KEY_PREFIX = "vc_"
_PREFIX_LENGTH = 11
LAST_USED_RESOLUTION = timedelta(minutes=5)


def hash_key(key: str) -> str:
    # Keys carry 256 bits of randomness, so an unsalted fast hash is enough (no brute force).
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, role: Role, name: str = "") -> tuple[ApiKey, str]:
    """Create a key; returns the row and the secret, which is never retrievable again."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}; got {role!r}")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        name=name or role, role=role, prefix=secret[:_PREFIX_LENGTH], key_hash=hash_key(secret)
    )
    session.add(row)
    session.flush()
    return row, secret


def authenticate(session: Session, secret: str) -> ApiKey | None:
    """The active key matching ``secret``, or None."""
    digest = hash_key(secret)
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, digest):
        return None
    return row


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: an authenticated key, without its hash."""

    id: int
    name: str
    role: Role
    prefix: str


class PrincipalCache:
    """Authenticated keys by hash, remembered for ``ttl_s`` seconds (0 disables it).

    It spares most requests a database lookup; the price is that a revoked key keeps working
    in a process for up to ``ttl_s``.
    """

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def get(self, secret: str) -> Principal | None:
        if not self.ttl_s:
            return None
        with self._lock:
            entry = self._entries.get(hash_key(secret))
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, secret: str, principal: Principal) -> None:
        if self.ttl_s:
            with self._lock:
                self._entries[hash_key(secret)] = (principal, time.monotonic() + self.ttl_s)


def authenticate_principal(session_factory: sessionmaker[Session], secret: str) -> Principal | None:
    """Look a key up and stamp its ``last_used_at`` (at most once per LAST_USED_RESOLUTION).

    Unlike other services this commits, in its own short transaction: the stamp is not part of
    the request's work, and an early write in the request's transaction would hold SQLite's
    write lock for the whole request.
    """
    with session_factory.begin() as session:
        row = authenticate(session, secret)
        if row is None:
            return None
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
            row.last_used_at = now
        return Principal(id=row.id, name=row.name, role=row.role, prefix=row.prefix)


def stamp_use(row: ApiKey) -> None:
    """Stamp ``last_used_at`` on a key loaded in the caller's session (dashboard login)."""
    row.last_used_at = utcnow()
