"""Request ids: kept when sane, made otherwise, echoed on every answer."""

from __future__ import annotations

import pytest

from app.observability import (
    sane_request_id,
)


def test_incoming_request_id_is_echoed(anon_client):
    response = anon_client.get("/healthz", headers={"X-Request-ID": "abc.DEF-123_4"})
    assert response.headers["X-Request-ID"] == "abc.DEF-123_4"


@pytest.mark.parametrize("incoming", [None, "x" * 101, "has space", "semi;colon", ""])
def test_missing_or_insane_request_id_is_replaced(anon_client, incoming):
    headers = {} if incoming is None else {"X-Request-ID": incoming}
    response = anon_client.get("/healthz", headers=headers)
    generated = response.headers["X-Request-ID"]
    assert generated and generated != incoming
    assert sane_request_id(generated) == generated


def test_request_ids_differ_between_requests(anon_client):
    first = anon_client.get("/healthz").headers["X-Request-ID"]
    assert anon_client.get("/healthz").headers["X-Request-ID"] != first


def test_error_answers_carry_the_request_id(anon_client):
    response = anon_client.get("/no/such/path")
    assert response.status_code == 404
    assert response.headers["X-Request-ID"]
