"""API keys: random secrets shown once, stored as SHA-256 hashes, with a role."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ApiKey, utcnow

Role = Literal["admin", "app"]
ROLES: tuple[Role, ...] = ("admin", "app")
KEY_PREFIX = "vc_"
_PREFIX_LENGTH = 11


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


def touch(row: ApiKey) -> None:
    row.last_used_at = utcnow()
