"""The admin dashboard: server-rendered pages under /admin, thin routes over the services.

Pages live in ``app/dashboard/routes/`` (one module per tab); ``pages`` renders them and
``routing`` turns login, CSRF and service failures into pages.
"""

from __future__ import annotations

from fastapi import APIRouter

from app.dashboard.routes import fit, jobs, login, tasks, versions

router = APIRouter()
for _module in (login, tasks, jobs, fit, versions):
    router.include_router(_module.router)
