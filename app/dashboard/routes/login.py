"""Logging in to the dashboard with an admin API key, and out."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from app.api.deps import SessionDep
from app.dashboard import auth
from app.dashboard.auth import AdminDep
from app.dashboard.pages import redirect, render
from app.dashboard.routing import dashboard_router
from app.services import keys as key_service

router = dashboard_router()


def _safe_next(value: str | None) -> str:
    # Only local dashboard paths: no scheme, no host, no protocol-relative //host.
    if value and value.startswith("/admin") and not value.startswith("//") and "\\" not in value:
        return value
    return "/admin"


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login")
def login(
    request: Request, session: SessionDep, form: FormData = Depends(auth.verified_form)
) -> Response:
    secret = str(form.get("api_key") or "").strip()
    next_url = _safe_next(str(form.get("next") or ""))
    client = auth.client_address(request)
    per_minute = request.app.state.settings.login_attempts_per_minute
    wait_s = auth.login_retry_after_s(session, client, per_minute)
    if wait_s is not None:
        error = f"Too many failed logins: try again in {wait_s} seconds."
        page = render(request, "login.html", {"next": next_url, "error": error}, 429)
        page.headers["Retry-After"] = str(wait_s)
        return page
    key = key_service.authenticate(session, secret) if secret else None
    if key is None or key.role != "admin":
        auth.record_failed_login(session, client)
        error = (
            "This key cannot log in: the dashboard needs an admin key."
            if key is not None
            else "Unknown or revoked API key."
        )
        return render(request, "login.html", {"next": next_url, "error": error}, 401)
    key_service.stamp_use(key)
    auth.log_in(request, key)
    return redirect(request, next_url, f"Logged in with key {key.prefix}… ({key.name}).")


@router.post("/logout")
def logout(
    request: Request,
    session: SessionDep,
    _admin: AdminDep,
    _form: FormData = Depends(auth.verified_form),
) -> Response:
    auth.log_out(request, session)
    return redirect(request, "/admin/login", "Logged out.")
