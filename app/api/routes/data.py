"""Labelled examples and imported predictions: JSON bodies or CSV/JSONL uploads."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Query, Request

from app.api.capacity import DatabaseRoute
from app.api.deps import AdminKey, AnyKey, SessionDep, SettingsDep, run_in_db_thread
from app.api.errors import error_responses
from app.config import Settings
from app.errors import InvalidInputError, field_error
from app.schemas.common import MAX_ROW_ID
from app.schemas.data import ExampleOut, ImportResult
from app.services import examples as example_service
from app.services import predictions as prediction_service
from app.services import uploads
from app.services.tasks import get_task

router = APIRouter(prefix="/tasks/{name}", tags=["data"], route_class=DatabaseRoute)

_UPLOAD_BODY = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/{model}"}},
            "text/csv": {"schema": {"type": "string"}},
            "application/x-ndjson": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
        "required": True,
    }
}


def _upload_doc(model: str) -> dict[str, Any]:
    return json.loads(json.dumps(_UPLOAD_BODY).replace("{model}", model))


async def _read_rows(request: Request, json_key: str, settings: Settings) -> tuple[list[Any], bool]:
    """Rows from a JSON body (its ``json_key`` list), a raw CSV/JSONL body, or a multipart file.

    CSV and JSONL are parsed as they stream in, so the row and cell limits stop a too-large
    upload early (the body size limit is ``RequestLimitsMiddleware``'s). Returns (rows, from_csv).
    """
    content_type = request.headers.get("content-type", "").lower()
    limits = uploads.UploadLimits.of(settings)
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidInputError(
                "multipart upload needs a `file` field", [field_error("file", "missing")]
            )
        kind = upload.content_type or ""
        parser = uploads.upload_parser(kind, upload.filename, limits)
        while chunk := await upload.read(uploads.UPLOAD_CHUNK_BYTES):
            parser.feed(chunk)
        return parser.close(), parser.kind == "csv"
    if content_type.startswith("application/json") or not content_type:
        body = await request.body()
        try:
            payload = json.loads(body, parse_constant=uploads.reject_json_constant)
        except (ValueError, RecursionError) as exc:
            raise InvalidInputError(
                f"invalid JSON: {exc}", [field_error("body", str(exc))]
            ) from exc
        if not isinstance(payload, dict) or not isinstance(payload.get(json_key), list):
            raise InvalidInputError(
                f"the body must be an object with a `{json_key}` list",
                [field_error(json_key, "missing or not a list")],
            )
        extra = sorted(set(payload) - {json_key})
        if extra:
            raise InvalidInputError(
                f"unknown field(s) {extra}", [field_error(extra[0], "unknown field")]
            )
        return payload[json_key], False
    parser = uploads.upload_parser(content_type, None, limits)
    async for chunk in request.stream():
        parser.feed(chunk)
    return parser.close(), parser.kind == "csv"


@router.post(
    "/examples",
    response_model=ImportResult,
    responses=error_responses(403, 404),
    openapi_extra=_upload_doc("ExamplesIn"),
    summary="Upsert labelled examples (JSON, CSV or JSONL); all or nothing",
)
async def import_examples(
    name: str, request: Request, session: SessionDep, settings: SettingsDep, _key: AdminKey
) -> ImportResult:
    rows, _ = await _read_rows(request, "examples", settings)
    return await run_in_db_thread(
        request, uploads.import_rows, session, name, rows, settings, example_service.import_examples
    )


@router.get("/examples", response_model=list[ExampleOut], responses=error_responses(404))
def list_examples(
    name: str,
    session: SessionDep,
    _key: AnyKey,
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=MAX_ROW_ID),
) -> list[ExampleOut]:
    task = get_task(session, name)
    return [
        ExampleOut(id=e.external_id, text=e.text, label=e.label)
        for e in example_service.list_examples(session, task, limit, offset)
    ]


@router.post(
    "/predictions",
    response_model=ImportResult,
    responses=error_responses(403, 404),
    openapi_extra=_upload_doc("PredictionsIn"),
    summary="Import distributions elicited elsewhere (JSON, CSV or JSONL); all or nothing",
)
async def import_predictions(
    name: str, request: Request, session: SessionDep, settings: SettingsDep, _key: AdminKey
) -> ImportResult:
    rows, from_csv = await _read_rows(request, "items", settings)
    if from_csv:
        rows = [uploads.csv_probability_row(r) for r in rows]
    return await run_in_db_thread(
        request,
        uploads.import_rows,
        session,
        name,
        rows,
        settings,
        prediction_service.import_predictions,
    )
