"""Dashboard sessions: a signed cookie holding a random session id and the admin key's id.

The cookie never holds the API key itself. Every visitor gets a session id (also before login)
so that every form, the login form included, carries a CSRF token: the HMAC of the session id.
Logging in rotates the session id, so a token seen before login is useless after it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.api.deps import SessionDep
from app.models import ApiKey, EndedDashboardSession, FailedLogin, utcnow

SESSION_COOKIE = "verbcal_admin"
SESSION_MAX_AGE_S = 12 * 3600
COOKIE_PATH = "/admin"
CSRF_FIELD = "csrf_token"
_SALT = "verbcal-dashboard-session"


class LoginRequired(Exception):
    """No valid admin session: the dashboard answers with a redirect to the login page."""


class CsrfRejected(Exception):
    """A form arrived without the session's CSRF token."""


@dataclass
class DashboardSession:
    sid: str
    key_id: int | None = None
    flashes: list[dict[str, str]] = field(default_factory=list)
    changed: bool = False

    def flash(self, message: str, kind: str = "info") -> None:
        self.flashes.append({"kind": kind, "message": message})
        self.changed = True

    def pop_flashes(self) -> list[dict[str, str]]:
        flashes, self.flashes = self.flashes, []
        if flashes:
            self.changed = True
        return flashes


def dashboard_secret(request: Request) -> str:
    return request.app.state.dashboard_secret


def ensure_secret(app: Any) -> None:
    """The signing key: the configured secret, else a random key for this process."""
    configured = app.state.settings.secret_key
    app.state.dashboard_secret = configured or secrets.token_urlsafe(32)


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(dashboard_secret(request), salt=_SALT)


def _new_session() -> DashboardSession:
    return DashboardSession(sid=secrets.token_urlsafe(24), changed=True)


def current_session(request: Request) -> DashboardSession:
    """This request's session: from the cookie when it is valid, else a fresh anonymous one."""
    cached = getattr(request.state, "dashboard_session", None)
    if cached is not None:
        return cached
    session = None
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        try:
            data = _serializer(request).loads(cookie, max_age=SESSION_MAX_AGE_S)
            session = DashboardSession(
                sid=str(data["sid"]),
                key_id=data.get("key_id"),
                flashes=list(data.get("flashes", [])),
            )
        except (BadSignature, KeyError, TypeError, ValueError):
            session = None
    session = session or _new_session()
    request.state.dashboard_session = session
    return session


def log_in(request: Request, key: ApiKey) -> DashboardSession:
    session = current_session(request)
    session.sid = secrets.token_urlsafe(24)
    session.key_id = key.id
    session.changed = True
    return session


def log_out(request: Request, db: Session) -> DashboardSession:
    """End the current session server-side (a saved copy of its cookie stops working) and
    start a fresh anonymous one."""
    ended = current_session(request)
    now = utcnow()
    db.execute(delete(EndedDashboardSession).where(EndedDashboardSession.expires_at < now))
    if db.get(EndedDashboardSession, _sid_hash(ended.sid)) is None:
        expires_at = now + timedelta(seconds=SESSION_MAX_AGE_S)
        db.add(EndedDashboardSession(sid_hash=_sid_hash(ended.sid), expires_at=expires_at))
    session = _new_session()
    request.state.dashboard_session = session
    return session


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def save_session(request: Request, response: Response) -> None:
    """Write the session cookie when the session changed during this request."""
    session = getattr(request.state, "dashboard_session", None)
    if session is None or not session.changed:
        return
    payload = {"sid": session.sid, "key_id": session.key_id, "flashes": session.flashes}
    response.set_cookie(
        SESSION_COOKIE,
        _serializer(request).dumps(payload),
        max_age=SESSION_MAX_AGE_S,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=_cookie_secure(request),
    )


def _cookie_secure(request: Request) -> bool:
    forced = request.app.state.settings.cookie_secure
    return forced if forced is not None else request.url.scheme == "https"


LOGIN_WINDOW_S = 60


def login_retry_after_s(db: Session, address: str, per_minute: int) -> int | None:
    """Seconds until ``address`` may try to log in again, or None when it may now: it may not
    while it has ``per_minute`` failed logins in the last minute (stored, so every process
    counts the same failures)."""
    since = utcnow() - timedelta(seconds=LOGIN_WINDOW_S)
    recent = db.scalars(
        select(FailedLogin.failed_at)
        .where(FailedLogin.address == address, FailedLogin.failed_at > since)
        .order_by(FailedLogin.failed_at.desc())
        .limit(per_minute)
    ).all()
    if len(recent) < per_minute:
        return None
    # Allowed again when the oldest of the last `per_minute` failures leaves the window.
    return max(1, math.ceil((recent[-1] - since).total_seconds()))


def record_failed_login(db: Session, address: str) -> None:
    """Store a failed login of ``address`` (and forget its failures older than the window)."""
    now = utcnow()
    since = now - timedelta(seconds=LOGIN_WINDOW_S)
    db.execute(
        delete(FailedLogin).where(FailedLogin.address == address, FailedLogin.failed_at <= since)
    )
    db.add(FailedLogin(address=address, failed_at=now))


def client_address(request: Request) -> str:
    """The client's address, cut to what ``FailedLogin.address`` holds (an IPv6 text is 45)."""
    return (request.client.host if request.client else "unknown")[:64]


def csrf_token(request: Request) -> str:
    sid = current_session(request).sid
    key = dashboard_secret(request).encode()
    return hmac.new(key, b"csrf:" + sid.encode(), hashlib.sha256).hexdigest()


async def verified_form(request: Request):
    """The POSTed form, after checking its CSRF token against the session."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    if (
        not isinstance(sent, str)
        or request.cookies.get(SESSION_COOKIE) is None
        or not hmac.compare_digest(sent, csrf_token(request))
    ):
        raise CsrfRejected()
    return form


@dataclass(frozen=True)
class Admin:
    key_id: int
    name: str
    prefix: str


def require_admin(request: Request, session: SessionDep) -> Admin:
    """The logged-in admin; LoginRequired when there is none or the key lost admin rights."""
    current = current_session(request)
    key = _admin_key(session, current.key_id)
    if key is None or session.get(EndedDashboardSession, _sid_hash(current.sid)) is not None:
        raise LoginRequired()
    return Admin(key_id=key.id, name=key.name, prefix=key.prefix)


def _admin_key(session: Session, key_id: int | None) -> ApiKey | None:
    if key_id is None:
        return None
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None or key.role != "admin":
        return None
    return key


AdminDep = Annotated[Admin, Depends(require_admin)]
