"""Dashboard login, logout, redirects to login, session cookie, CSRF, security headers."""

from __future__ import annotations

import json

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from app.db import transaction
from tests.app.dashboard.conftest import TASK_PAGES, log_in, page_csrf


@pytest.mark.parametrize("path", ["/admin", *[f"/admin/tasks/t{page}" for page in TASK_PAGES]])
def test_every_page_redirects_to_login_without_a_session(browser_client, path):
    response = browser_client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/login")


@pytest.mark.parametrize(
    "path",
    [
        "/admin/tasks/t/examples",
        "/admin/tasks/t/elicitations",
        "/admin/tasks/t/fit",
        "/admin/tasks/t/calibrations/1/activate",
        "/admin/jobs/x/cancel",
        "/admin/logout",
    ],
)
def test_every_form_redirects_to_login_without_a_session(browser_client, path):
    token = page_csrf(browser_client, "/admin/login")
    response = browser_client.post(path, data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login"


def test_login_redirect_keeps_the_page_and_rejects_foreign_next(browser_client, admin_key):
    response = browser_client.get("/admin/tasks/t/versions", follow_redirects=False)
    assert response.headers["location"] == "/admin/login?next=/admin/tasks/t/versions"
    token = page_csrf(browser_client, "/admin/login")
    evil = browser_client.post(
        "/admin/login",
        data={"api_key": admin_key, "csrf_token": token, "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert evil.status_code == 303
    assert evil.headers["location"] == "/admin"


def test_login_sets_a_signed_http_only_cookie_without_the_key(browser_client, admin_key, app):
    log_in(browser_client, admin_key)
    response = browser_client.get("/admin")
    assert response.status_code == 200
    assert "Tasks" in response.text
    cookie = browser_client.cookies.get("verbcal_admin")
    assert admin_key not in cookie
    payload = URLSafeTimedSerializer("test-secret", salt="verbcal-dashboard-session").loads(cookie)
    assert set(payload) == {"sid", "key_id", "flashes"}
    assert admin_key not in json.dumps(payload)


def test_login_cookie_attributes(browser_client, admin_key):
    token = page_csrf(browser_client, "/admin/login")
    response = browser_client.post(
        "/admin/login", data={"api_key": admin_key, "csrf_token": token}, follow_redirects=False
    )
    set_cookie = response.headers["set-cookie"].lower()
    assert "httponly" in set_cookie
    assert "samesite=lax" in set_cookie
    assert "path=/admin" in set_cookie
    assert "secure" not in set_cookie  # plain http here; https requests get Secure


def test_secure_cookie_over_https(app, admin_key):
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://testserver") as client:
        response = client.get("/admin/login")
        assert "secure" in response.headers["set-cookie"].lower()


def test_app_key_cannot_log_in(browser_client, app_key):
    token = page_csrf(browser_client, "/admin/login")
    response = browser_client.post(
        "/admin/login", data={"api_key": app_key, "csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 401
    assert "admin key" in response.text
    assert browser_client.get("/admin", follow_redirects=False).status_code == 303


def test_unknown_key_cannot_log_in(browser_client):
    token = page_csrf(browser_client, "/admin/login")
    response = browser_client.post(
        "/admin/login", data={"api_key": "vc_nope", "csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 401
    assert "Unknown or revoked" in response.text


def test_login_without_or_with_a_foreign_csrf_token_is_rejected(app, admin_key):
    from fastapi.testclient import TestClient

    with TestClient(app) as first, TestClient(app) as second:
        foreign = page_csrf(first, "/admin/login")
        page_csrf(second, "/admin/login")
        for data in ({"api_key": admin_key}, {"api_key": admin_key, "csrf_token": foreign}):
            response = second.post("/admin/login", data=data, follow_redirects=False)
            assert response.status_code == 403
        assert second.get("/admin", follow_redirects=False).status_code == 303


def test_login_rotates_the_session_id(browser_client, admin_key):
    before = page_csrf(browser_client, "/admin/login")
    log_in(browser_client, admin_key)
    assert page_csrf(browser_client) != before


def test_logout(admin_client):
    token = page_csrf(admin_client)
    assert admin_client.post("/admin/logout", data={}, follow_redirects=False).status_code == 403
    response = admin_client.post(
        "/admin/logout", data={"csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login"
    assert admin_client.get("/admin", follow_redirects=False).status_code == 303
    assert "Logged out" in admin_client.get("/admin/login").text


def test_revoked_key_loses_its_session(admin_client, app):
    from app.models import ApiKey, utcnow

    assert admin_client.get("/admin", follow_redirects=False).status_code == 200
    with transaction(app.state.session_factory) as session:
        for key in session.scalars(select(ApiKey)):
            key.revoked_at = utcnow()
    assert admin_client.get("/admin", follow_redirects=False).status_code == 303


def test_a_tampered_cookie_is_no_session(admin_client):
    cookie = admin_client.cookies.get("verbcal_admin")
    tampered = cookie[:-4] + ("AAAA" if not cookie.endswith("AAAA") else "BBBB")
    admin_client.cookies.clear()
    admin_client.cookies.set("verbcal_admin", tampered)
    assert admin_client.get("/admin", follow_redirects=False).status_code == 303


def test_security_headers(admin_client):
    response = admin_client.get("/admin")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


def test_static_files_are_served(browser_client):
    css = browser_client.get("/admin/static/dashboard.css")
    assert css.status_code == 200
    assert "text/css" in css.headers["content-type"]
    js = browser_client.get("/admin/static/progress.js")
    assert js.status_code == 200
    assert "fetch(" in js.text
