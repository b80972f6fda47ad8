"""Tasks: create, list, read, update, delete."""

from fastapi import APIRouter, Response, status

from app.api.capacity import DatabaseRoute
from app.api.deps import AdminKey, AnyKey, SessionDep, SettingsDep
from app.api.errors import error_responses
from app.schemas.tasks import TaskCreate, TaskOut, TaskUpdate
from app.services import tasks as task_service

router = APIRouter(prefix="/tasks", tags=["tasks"], route_class=DatabaseRoute)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TaskOut,
    responses=error_responses(403, 409),
)
def create_task(
    body: TaskCreate, session: SessionDep, settings: SettingsDep, _key: AdminKey
) -> TaskOut:
    task = task_service.create_task(session, body.model_dump(mode="json"), settings.llm_policy)
    return task_service.task_out(session, task)


@router.get("", response_model=list[TaskOut], responses=error_responses())
def list_tasks(session: SessionDep, _key: AnyKey) -> list[TaskOut]:
    return [task_service.task_out(session, t) for t in task_service.list_tasks(session)]


@router.get("/{name}", response_model=TaskOut, responses=error_responses(404))
def get_task(name: str, session: SessionDep, _key: AnyKey) -> TaskOut:
    return task_service.task_out(session, task_service.get_task(session, name))


@router.patch("/{name}", response_model=TaskOut, responses=error_responses(403, 404))
def update_task(
    name: str, body: TaskUpdate, session: SessionDep, settings: SettingsDep, _key: AdminKey
) -> TaskOut:
    task = task_service.get_task(session, name)
    changes = body.model_dump(mode="json", exclude_unset=True)
    task = task_service.update_task(session, task, changes, settings.llm_policy)
    return task_service.task_out(session, task)


@router.delete(
    "/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(403, 404)
)
def delete_task(name: str, session: SessionDep, _key: AdminKey) -> Response:
    task_service.delete_task(session, task_service.get_task(session, name))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
