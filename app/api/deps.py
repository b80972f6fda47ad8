"""Request-scoped dependencies: settings, the database session (which commits), auth."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import AuthenticationError, PermissionDeniedError
from app.models import ApiKey
from app.observability import Metrics, get_metrics
from app.services import keys


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back on error."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
# scope="function": the commit happens before the response is sent, so a failed commit is an
# error answer rather than a success answer for lost data.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`")


def get_api_key(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    if credentials is None or not credentials.credentials:
        raise AuthenticationError("missing API key: send `Authorization: Bearer <key>`")
    row = keys.authenticate(session, credentials.credentials)
    if row is None:
        raise AuthenticationError("unknown or revoked API key")
    keys.touch(row)
    return row


def require_admin(key: Annotated[ApiKey, Depends(get_api_key)]) -> ApiKey:
    if key.role != "admin":
        raise PermissionDeniedError("this operation needs an admin key")
    return key


AnyKey = Annotated[ApiKey, Depends(get_api_key)]
AdminKey = Annotated[ApiKey, Depends(require_admin)]
