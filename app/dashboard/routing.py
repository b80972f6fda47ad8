"""Dashboard route plumbing: login redirects, CSRF and service errors as pages, security headers.

Every dashboard router is made by ``dashboard_router()`` so all its routes share this handling.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response

from app.api.capacity import DatabaseRoute
from app.dashboard import auth
from app.dashboard.auth import CsrfRejected, LoginRequired
from app.dashboard.pages import error_page
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


class DashboardRoute(DatabaseRoute):
    """Turns dashboard failures into pages: login redirects, CSRF and service errors. Like
    API routes, a plain ``def`` page runs with its commit in one database slot."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def dashboard_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired:
                response = login_redirect(request)
            except CsrfRejected:
                response = error_page(
                    request, 403, "The form has expired or did not come from this dashboard. "
                    "Go back, reload the page and submit again.",
                )  # fmt: skip
            except ServiceError as exc:
                response = error_page(request, exc.status_code, exc.message)
            except RequestValidationError as exc:
                message = "; ".join(str(e.get("msg", "")) for e in exc.errors()) or "bad request"
                response = error_page(request, 422, f"Invalid address: {message}.")
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
