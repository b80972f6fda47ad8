"""The admin dashboard: server-rendered pages under /admin (see ``router``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.dashboard.auth import ensure_secret

STATIC_DIR = Path(__file__).resolve().parent / "static"


def install_dashboard(app: FastAPI) -> None:
    """Mount the dashboard's pages and static files on ``app``."""
    from app.dashboard.router import router

    ensure_secret(app)
    app.include_router(router)
    app.mount("/admin/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
