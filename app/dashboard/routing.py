"""Dashboard route plumbing: login redirects, CSRF and service errors as pages, security headers.

Every dashboard router is made by ``dashboard_router()`` so all its routes share this handling.
Pages use the API's request transaction (``SessionDep``), and a failure rolls it back as an API
error does: a rejected form raises :class:`FormRejected`, whose answer page is drawn in a fresh
session.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session, sessionmaker

from app.api.capacity import DatabaseRoute
from app.api.deps import roll_back_request, run_in_db_thread
from app.dashboard import auth
from app.dashboard.auth import CsrfRejected, LoginRequired
from app.dashboard.pages import error_page
from app.db import transaction
from app.errors import ServiceError

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class FormRejected(Exception):
    """A form the services rejected; ``page(session)`` draws the answer (a redirect with a
    flash, or the form again with its errors) once the request's transaction rolled back."""

    def __init__(self, page: Callable[[Session], Response]) -> None:
        super().__init__("form rejected")
        self.page = page


def _draw(factory: sessionmaker[Session], page: Callable[[Session], Response]) -> Response:
    with transaction(factory) as session:
        return page(session)


async def _failure_page(request: Request, exc: Exception) -> Response:
    """The page answering a dashboard failure; re-raises what the dashboard does not handle."""
    if isinstance(exc, FormRejected):
        factory = request.app.state.session_factory
        return await run_in_db_thread(request, _draw, factory, exc.page)
    if isinstance(exc, LoginRequired):
        return login_redirect(request)
    if isinstance(exc, CsrfRejected):
        return error_page(
            request, 403, "The form has expired or did not come from this dashboard. "
            "Go back, reload the page and submit again.",
        )  # fmt: skip
    if isinstance(exc, ServiceError):
        return error_page(request, exc.status_code, exc.message)
    if isinstance(exc, RequestValidationError):
        message = "; ".join(str(e.get("msg", "")) for e in exc.errors()) or "bad request"
        return error_page(request, 422, f"Invalid address: {message}.")
    raise exc


class DashboardRoute(DatabaseRoute):
    """Turns dashboard failures into pages: login redirects, CSRF and service errors. Like
    API routes, a plain ``def`` page runs with its commit in one database slot."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def dashboard_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except Exception as exc:
                roll_back_request(request)
                response = await _failure_page(request, exc)
            auth.save_session(request, response)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return dashboard_handler


def dashboard_router() -> APIRouter:
    """A router for dashboard pages under /admin, outside the OpenAPI schema."""
    return APIRouter(prefix="/admin", include_in_schema=False, route_class=DashboardRoute)


def login_redirect(request: Request) -> Response:
    if request.url.path.endswith("/progress"):
        return JSONResponse({"error": "login required"}, status_code=401)
    target = "/admin/login"
    if request.method == "GET" and request.url.path != "/admin":
        target += "?next=" + quote(
            request.url.path + ("?" + request.url.query if request.url.query else "")
        )
    return RedirectResponse(target, status_code=303)
