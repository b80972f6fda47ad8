"""All API routers, assembled."""

from fastapi import APIRouter

from app.api.routes import (
    calibrate,
    calibrations,
    data,
    elicitation,
    health,
    jobs,
    monitoring,
    tasks,
)

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(tasks.router)
api_router.include_router(data.router)
api_router.include_router(elicitation.router)
api_router.include_router(jobs.router)
api_router.include_router(calibrations.router)
api_router.include_router(calibrate.router)
api_router.include_router(monitoring.router)
