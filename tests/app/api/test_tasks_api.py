"""Tasks CRUD, auth and validation, on SQLite and PostgreSQL."""

import pytest

TASK = {"name": "tickets", "labels": ["billing", "technical", "account", "other"]}


def test_create_read_update_delete(client):
    created = client.post("/tasks", json={**TASK, "description": "support"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["labels"] == TASK["labels"]
    assert body["prompt_version"].startswith("sha256:")
    assert body["counts"]["examples"] == 0
    assert body["active_calibration"] is None

    assert [t["name"] for t in client.get("/tasks").json()] == ["tickets"]
    patched = client.patch("/tasks/tickets", json={"description": "new"})
    assert patched.status_code == 200
    assert patched.json()["description"] == "new"
    assert client.get("/tasks/tickets").json()["description"] == "new"

    assert client.delete("/tasks/tickets").status_code == 204
    missing = client.get("/tasks/tickets")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_duplicate_name_conflicts(client):
    assert client.post("/tasks", json=TASK).status_code == 201
    again = client.post("/tasks", json=TASK)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**TASK, "labels": ["a", "a"]}, "labels"),
        ({**TASK, "labels": ["only"]}, "labels"),
        ({**TASK, "labels": ["a", ""]}, "labels[1]"),
        ({**TASK, "name": "Bad Name"}, "name"),
        ({**TASK, "labels": ["a", "b\x00"]}, "labels[1]"),
        ({**TASK, "unknown": 1}, "unknown"),
        ({**TASK, "prompt_template": "no placeholders"}, "prompt_template"),
        ({**TASK, "llm": {"base_url": "http://x", "model": "m", "samples": 0}}, "llm.samples"),
    ],
)
def test_invalid_task_is_422_naming_the_field(client, body, field):
    response = client.post("/tasks", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert any(d["field"] == field for d in error["details"]), error
    assert client.get("/tasks").json() == []


def test_auth_required_and_roles(anon_client, app_client, client):
    assert anon_client.get("/tasks").status_code == 401
    assert anon_client.get("/tasks").json()["error"]["code"] == "unauthenticated"
    bad = anon_client.get("/tasks", headers={"Authorization": "Bearer vc_nope"})
    assert bad.status_code == 401
    forbidden = app_client.post("/tasks", json=TASK)
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "forbidden"
    assert client.post("/tasks", json=TASK).status_code == 201
    assert app_client.get("/tasks/tickets").status_code == 200
    assert app_client.delete("/tasks/tickets").status_code == 403


def test_llm_config_is_stored_without_secrets(client, monkeypatch):
    monkeypatch.setenv("VERBCAL_LLM_KEY_MINE", "sk-secret-value")
    llm = {"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key_env": "VERBCAL_LLM_KEY_MINE"}
    body = client.post("/tasks", json={**TASK, "llm": llm}).json()
    assert body["llm"]["api_key_env"] == "VERBCAL_LLM_KEY_MINE"
    assert "sk-secret-value" not in client.get("/tasks/tickets").text


def test_openapi_declares_error_responses(client):
    spec = client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert "422" in operation["responses"], (method, path)
            assert "401" in operation["responses"], (method, path)
    assert "/healthz" not in spec["paths"]


def test_revoked_key_is_refused_without_cache(settings, admin_key):
    from fastapi.testclient import TestClient
    from sqlalchemy import update

    from app.main import create_app
    from app.models import ApiKey, utcnow

    settings.auth_cache_ttl_s = 0
    app = create_app(settings, start_worker=False)
    with TestClient(app, headers={"Authorization": f"Bearer {admin_key}"}) as c:
        assert c.get("/tasks").status_code == 200
        with app.state.session_factory.begin() as session:
            session.execute(update(ApiKey).values(revoked_at=utcnow()))
        assert c.get("/tasks").status_code == 401


def test_principal_cache_expires(monkeypatch):
    from app.services import keys

    now = [100.0]
    monkeypatch.setattr(keys.time, "monotonic", lambda: now[0])
    cache = keys.PrincipalCache(ttl_s=10)
    principal = keys.Principal(id=1, name="k", role="app", prefix="vc_x")
    cache.put("vc_secret", principal)
    assert cache.get("vc_secret") == principal
    assert cache.get("vc_other") is None
    now[0] += 10.5
    assert cache.get("vc_secret") is None
    assert keys.PrincipalCache(ttl_s=0).get("vc_secret") is None


@pytest.mark.parametrize(
    "patch",
    [
        {"description": None},
        {"description": "bad\x00"},
        {"prompt_template": "{text} {labels}\x00"},
        {"llm": {"base_url": "http://1\u00f6/v1", "model": "m"}},
        {"llm": {"base_url": "http://x/v1", "model": "m", "extra_body": {"k": "\x00"}}},
        {"llm": {"base_url": "http://x/v1", "model": "m", "api_key_env": "NOT A NAME"}},
        {"labels": ["x", "y"]},
    ],
)
def test_invalid_patch_is_422_and_changes_nothing(client, patch):
    assert client.post("/tasks", json={**TASK, "description": "kept"}).status_code == 201
    r = client.patch("/tasks/tickets", json=patch)
    assert r.status_code == 422, r.text
    task = client.get("/tasks/tickets").json()
    assert (task["description"], task["llm"], task["labels"]) == ("kept", None, TASK["labels"])


# --- what an LLM config may reach (operator policy) ---------------------------------------------


@pytest.mark.parametrize(
    ("llm", "field", "words"),
    [
        ({"api_key_env": "VERBCAL_DATABASE_URL"}, "llm.api_key_env", "verbcal's own settings"),
        ({"api_key_env": "VERBCAL_SECRET_KEY"}, "llm.api_key_env", "verbcal's own settings"),
        ({"api_key_env": "PATH"}, "llm.api_key_env", "not an allowed LLM key variable"),
        ({"api_key_env": "HOME"}, "llm.api_key_env", "VERBCAL_ALLOWED_LLM_KEY_ENVS"),
        ({"base_url": "http://169.254.169.254/v1"}, "llm.base_url", "cloud-metadata"),
        ({"base_url": "http://[fd00:ec2::254]/v1"}, "llm.base_url", "cloud-metadata"),
        ({"base_url": "http://[::ffff:169.254.1.1]:80/v1"}, "llm.base_url", "link-local"),
        ({"base_url": "http://metadata.google.internal/v1"}, "llm.base_url", "cloud-metadata"),
    ],
)
def test_llm_configs_the_operator_does_not_allow_are_refused(client, llm, field, words):
    config = {"base_url": "http://127.0.0.1:9/v1", "model": "m", **llm}
    created = client.post("/tasks", json={**TASK, "llm": config})
    assert created.status_code == 422, created.text
    error = created.json()["error"]
    assert error["details"][0]["field"] == field and words in error["message"]
    assert client.get("/tasks/tickets").status_code == 404
    client.post("/tasks", json=TASK)
    patched = client.patch("/tasks/tickets", json={"llm": config})
    assert patched.status_code == 422 and patched.json()["error"]["details"][0]["field"] == field
    assert client.get("/tasks/tickets").json()["llm"] is None


def test_allowed_key_variables_and_hosts_come_from_the_settings(settings, admin_key):
    from fastapi.testclient import TestClient

    from app.main import create_app

    settings = settings.model_copy(
        update={
            "allowed_llm_key_envs": "TEAM_KEY,OTHER_*",
            "allowed_llm_hosts": "llm.internal,*.example.com",
            "llm_allow_link_local": True,
        }
    )
    headers = {"Authorization": f"Bearer {admin_key}"}
    with TestClient(create_app(settings, start_worker=False), headers=headers) as client:

        def status(**llm) -> int:
            config = {"base_url": "http://llm.internal/v1", "model": "m", **llm}
            body = {"name": "t", "labels": ["a", "b"], "llm": config}
            code = client.post("/tasks", json=body).status_code
            client.delete("/tasks/t")
            return code

        assert status(api_key_env="TEAM_KEY") == 201
        assert status(api_key_env="OTHER_ANYTHING") == 201
        assert status(api_key_env="OPENAI_API_KEY") == 422  # not in this operator's list
        assert status(api_key_env="VERBCAL_LLM_KEY_X") == 422
        assert status(base_url="https://api.example.com/v1") == 201
        assert status(base_url="https://example.com.evil.org/v1") == 422
        assert status(base_url="http://169.254.169.254/v1") == 422  # allowed hosts still apply
        assert status(base_url="http://127.0.0.1:9/v1") == 422


def test_a_stored_config_that_the_policy_now_refuses_fails_at_call_time(
    client, app_client, app, monkeypatch
):
    from app.db import transaction
    from app.models import Task

    client.post("/tasks", json=TASK)
    with transaction(app.state.session_factory) as session:  # stored before the policy existed
        task = session.query(Task).filter_by(name="tickets").one()
        task.llm = {"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key_env": "PATH"}
    result = app_client.post("/calibrate", json={"task": "tickets", "text": "hello"})
    assert result.status_code == 502
    error = result.json()["error"]
    assert error["details"]["kind"] == "config"
    assert "PATH is not an allowed LLM key variable" in error["message"]
    assert "/usr" not in result.text
