"""Logout ends the session server-side, failed logins are rate-limited, and a setting forces
the Secure cookie flag behind a TLS-terminating proxy."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.dashboard.conftest import csrf_of, log_in, page_csrf


def test_a_cookie_saved_before_logout_no_longer_opens_the_dashboard(admin_client):
    saved = admin_client.cookies.get("verbcal_admin")
    assert admin_client.get("/admin", follow_redirects=False).status_code == 200
    token = page_csrf(admin_client)
    logout = admin_client.post("/admin/logout", data={"csrf_token": token}, follow_redirects=False)
    assert logout.status_code == 303
    admin_client.cookies.clear()
    admin_client.cookies.set("verbcal_admin", saved, path="/admin")
    replayed = admin_client.get("/admin", follow_redirects=False)
    assert replayed.status_code == 303
    assert replayed.headers["location"] == "/admin/login"


def test_logging_in_again_after_logout_works(admin_client, admin_key):
    token = page_csrf(admin_client)
    admin_client.post("/admin/logout", data={"csrf_token": token}, follow_redirects=False)
    log_in(admin_client, admin_key)
    assert admin_client.get("/admin", follow_redirects=False).status_code == 200


def test_failed_logins_beyond_the_limit_are_a_429(settings, admin_key):
    app = create_app(settings.model_copy(update={"login_attempts_per_minute": 3}))
    with TestClient(app, base_url="http://testserver") as client:
        token = csrf_of(client.get("/admin/login").text)

        def attempt(key: str):
            data = {"api_key": key, "csrf_token": token}
            return client.post("/admin/login", data=data, follow_redirects=False)

        assert [attempt(f"vc_wrong{i}").status_code for i in range(3)] == [401] * 3
        refused = attempt(admin_key)  # even the right key, while the client is throttled
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert "Too many failed logins" in refused.text
    app.state.engine.dispose()


def test_the_login_limit_counts_the_failures_of_every_process(settings, admin_key):
    """Two apps on one database stand for two API processes (`--workers 2`) or a restart."""
    limited = settings.model_copy(update={"login_attempts_per_minute": 3})
    first, second = create_app(limited), create_app(limited)
    with (
        TestClient(first, base_url="http://testserver") as one,
        TestClient(second, base_url="http://testserver") as other,
    ):

        def attempt(client: TestClient, key: str):
            data = {"api_key": key, "csrf_token": csrf_of(client.get("/admin/login").text)}
            return client.post("/admin/login", data=data, follow_redirects=False)

        assert [attempt(one, f"vc_wrong{i}").status_code for i in range(2)] == [401, 401]
        assert attempt(other, "vc_wrong2").status_code == 401
        assert attempt(other, admin_key).status_code == 429
        assert attempt(one, admin_key).status_code == 429
    for app in (first, second):
        app.state.engine.dispose()


def test_a_setting_forces_the_secure_cookie_over_plain_http(settings, admin_key):
    app = create_app(settings.model_copy(update={"cookie_secure": True}))
    with TestClient(app, base_url="http://testserver") as client:
        response = client.get("/admin/login")
        assert "secure" in response.headers["set-cookie"].lower()
    app.state.engine.dispose()
