"""Page rendering for the dashboard: templates, filters, error pages, redirects with flashes."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from app.dashboard import auth

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


templates.env.filters["fmt"] = fmt


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    admin: auth.Admin | None = None,
) -> Response:
    session = auth.current_session(request)
    page = {
        "request": request,
        "admin": admin,
        "csrf_field": auth.CSRF_FIELD,
        "csrf_token": auth.csrf_token(request),
        "flashes": session.pop_flashes(),
        **(context or {}),
    }
    return templates.TemplateResponse(request, template, page, status_code=status_code)


def error_page(request: Request, status_code: int, message: str) -> Response:
    session = auth.current_session(request)
    context = {"status_code": status_code, "message": message}
    admin = None
    if session.key_id is not None:  # a logged-in visitor keeps the navigation
        admin = auth.Admin(key_id=session.key_id, name="", prefix="")
    return render(request, "error.html", context, status_code=status_code, admin=admin)


def redirect(request: Request, url: str, message: str | None = None, kind: str = "info"):
    if message:
        auth.current_session(request).flash(message, kind)
    return RedirectResponse(url, status_code=303)


def task_url(name: str, page: str = "") -> str:
    return f"/admin/tasks/{quote(name)}" + (f"/{page}" if page else "")
