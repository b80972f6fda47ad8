"""`verbcal serve` believes X-Forwarded-* headers only from the proxies in
VERBCAL_FORWARDED_ALLOW_IPS: the dashboard cookie is Secure for HTTPS as told by a trusted
proxy, and a client cannot claim HTTPS (or another address) itself."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.processes import processes, serve_migrated

pytestmark = [pytest.mark.slow]

FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


def _login_cookie(tmp_path, settings: dict[str, str]) -> str:
    with processes(tmp_path) as started:
        base_url, _, _ = serve_migrated(started, f"sqlite:///{tmp_path / 'p.db'}", settings)
        response = httpx.get(f"{base_url}/admin/login", headers=FORWARDED, timeout=10)
        assert response.status_code == 200
        return response.headers["set-cookie"].lower()


def test_forwarded_https_from_a_trusted_proxy_makes_the_cookie_secure(tmp_path):
    assert "secure" in _login_cookie(tmp_path, {"VERBCAL_FORWARDED_ALLOW_IPS": "127.0.0.1"})


def test_forwarded_headers_from_anyone_else_are_ignored(tmp_path):
    assert "secure" not in _login_cookie(tmp_path, {"VERBCAL_FORWARDED_ALLOW_IPS": "10.9.9.9"})
