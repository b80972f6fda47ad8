"""The task list and a task's data page (examples upload, elicitation panel)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData, UploadFile

from app.api.deps import SessionDep, SettingsDep
from app.dashboard import auth, views
from app.dashboard.auth import AdminDep
from app.dashboard.pages import redirect, render, task_url
from app.dashboard.routing import FormRejected, dashboard_router
from app.errors import InvalidInputError
from app.llm.check import ServerCheck
from app.services import examples as example_service
from app.services import uploads
from app.services.tasks import get_task

router = dashboard_router()


@router.get("")
def tasks_page(
    request: Request, session: SessionDep, settings: SettingsDep, admin: AdminDep
) -> Response:
    rows = views.tasks_overview(session, settings)
    return render(request, "tasks.html", {"rows": rows}, admin=admin)


def task_data_page(
    request: Request,
    session,
    admin: auth.Admin,
    name: str,
    status_code: int = 200,
    upload: dict[str, Any] | None = None,
    check: ServerCheck | None = None,
) -> Response:
    task = get_task(session, name)
    context = {"tab": "data", **views.task_data(session, task), "upload": upload, "check": check}
    return render(request, "task_data.html", context, status_code, admin=admin)


@router.get("/tasks/{name}")
def task_page(request: Request, name: str, session: SessionDep, admin: AdminDep) -> Response:
    return task_data_page(request, session, admin, name)


@router.post("/tasks/{name}/examples")
def upload_examples(
    request: Request,
    name: str,
    session: SessionDep,
    settings: SettingsDep,
    admin: AdminDep,
    form: FormData = Depends(auth.verified_form),
) -> Response:
    """The file is parsed as it is read, with the API's row and cell limits (its size limit is
    the upload routes' `VERBCAL_MAX_UPLOAD_BYTES`), and imported like `POST /examples`."""
    get_task(session, name)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        failure = {"message": "Choose a CSV or JSONL file to upload.", "errors": []}
        return task_data_page(request, session, admin, name, 422, failure)
    limits = uploads.UploadLimits.of(settings)
    try:
        parser = uploads.upload_parser(upload.content_type or "", upload.filename, limits)
        while chunk := upload.file.read(uploads.UPLOAD_CHUNK_BYTES):
            parser.feed(chunk)
        rows = parser.close()
        importer = example_service.import_examples
        result = uploads.import_rows(session, name, rows, settings, importer)
    except InvalidInputError as exc:
        # Raised, so that nothing of a rejected file is committed by the request's session.
        failure = {
            "message": exc.message,
            "errors": exc.details if isinstance(exc.details, list) else [],
            "filename": upload.filename,
        }
        raise FormRejected(
            lambda fresh: task_data_page(request, fresh, admin, name, 422, failure)
        ) from exc
    message = (
        f"Imported {upload.filename}: {result.received} rows, {result.inserted} new, "
        f"{result.updated} updated, {result.unchanged} unchanged."
    )
    return redirect(request, task_url(name), message, "success")
