"""OpenAPI additions: request bodies that routes read themselves (uploads) are documented too,
and so is the 413 of every operation with a body."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from app.schemas.data import ExamplesIn, PredictionsIn

EXTRA_MODELS: tuple[type[BaseModel], ...] = (ExamplesIn, PredictionsIn)


def _declare_body_limits(schema: dict[str, Any]) -> None:
    """Every operation with a body may be refused with 413 (``RequestLimitsMiddleware``)."""
    too_large = {
        "description": "Request body over the route family's size limit (`payload_too_large`)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            if method in ("post", "put", "patch"):
                operation.setdefault("responses", {}).setdefault("413", too_large)


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in EXTRA_MODELS:
                model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(model_schema.pop("$defs", {}))
                components[model.__name__] = model_schema
            _declare_body_limits(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
