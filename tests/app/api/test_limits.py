"""Request limits: the key is checked before the body is read, bodies are bounded per route
family while they stream (413), and uploads are parsed as they arrive (row and cell limits)."""

from __future__ import annotations

import json

import anyio
import pytest

from app.main import create_app
from tests.app.factories import LABELS


class Exchange:
    """One request sent straight to the ASGI app, counting the body chunks the app read."""

    def __init__(self, app, method: str, path: str, headers: dict[str, str], chunks: list[bytes]):
        self.app, self.method, self.path = app, method, path
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self.chunks = chunks
        self.chunks_read = 0
        self.status: int | None = None
        self.response_headers: dict[str, str] = {}
        self.body = b""

    async def _receive(self):
        if self.chunks_read < len(self.chunks):
            self.chunks_read += 1
            more = self.chunks_read < len(self.chunks)
            return {
                "type": "http.request",
                "body": self.chunks[self.chunks_read - 1],
                "more_body": more,
            }
        await anyio.sleep_forever()

    async def _send(self, message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.response_headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    def run(self) -> Exchange:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": self.method,
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": self.headers,
            "client": ("127.0.0.1", 1234),
            "server": ("testserver", 80),
        }
        anyio.run(self.app, scope, self._receive, self._send)
        return self

    def error(self) -> dict:
        return json.loads(self.body)["error"]


@pytest.fixture
def limited_app(settings, client):
    client.post("/tasks", json={"name": "t", "labels": LABELS}).raise_for_status()
    limited = settings.model_copy(
        update={
            "max_body_bytes": 1_000,
            "max_upload_bytes": 5_000,
            "max_upload_rows": 10,
            "max_text_length": 100,
        }
    )
    app = create_app(limited, start_worker=False)
    yield app
    app.state.engine.dispose()


def _chunks(total: int, size: int = 100) -> list[bytes]:
    return [b"x" * size for _ in range(total // size)]


@pytest.mark.parametrize("authorization", [None, "Bearer vc_unknown", "Basic abc"])
def test_a_body_is_not_read_before_the_key_is_checked(limited_app, authorization):
    headers = {"content-type": "application/json", "content-length": "200"}
    if authorization:
        headers["authorization"] = authorization
    exchange = Exchange(limited_app, "POST", "/calibrate", headers, _chunks(200)).run()
    assert exchange.status == 401
    assert exchange.chunks_read == 0
    assert exchange.error()["code"] == "unauthenticated"
    assert exchange.response_headers["www-authenticate"] == "Bearer"


def test_a_declared_length_over_the_limit_is_refused_unread(limited_app, admin_key):
    headers = {"authorization": f"Bearer {admin_key}", "content-length": "1001"}
    exchange = Exchange(limited_app, "POST", "/calibrate", headers, _chunks(1_100)).run()
    assert exchange.status == 413
    assert exchange.chunks_read == 0
    assert exchange.error() == {
        "code": "payload_too_large",
        "message": "request body larger than 1000 bytes",
        "details": None,
    }


@pytest.mark.parametrize(
    ("path", "content_type", "limit"),
    [
        ("/calibrate", "application/json", 1_000),
        ("/tasks/t/examples", "application/json", 5_000),
        ("/tasks/t/predictions", "text/csv", 5_000),
    ],
)
def test_a_streamed_body_stops_at_its_route_family_limit(
    limited_app, admin_key, path, content_type, limit
):
    headers = {"authorization": f"Bearer {admin_key}", "content-type": content_type}
    if content_type == "text/csv":
        # Rows within the cell and row limits: only the byte limit can stop them.
        row = b",".join([b"y" * 99] * 6) + b"\n"
        chunks = [b"text,a,b,c,d,e\n"] + [row] * 12
    else:
        chunks = _chunks(20_000)
    exchange = Exchange(limited_app, "POST", path, headers, chunks).run()
    assert exchange.status == 413, exchange.body
    assert exchange.error()["code"] == "payload_too_large"
    assert str(limit) in exchange.error()["message"]
    assert exchange.chunks_read < len(chunks)


def test_a_csv_cell_over_the_limit_is_a_422_naming_the_row(limited_app, admin_key):
    headers = {"authorization": f"Bearer {admin_key}", "content-type": "text/csv"}
    rows = [b"id,text,label\n", b"e1,short,a\n", b"e2," + b"z" * 101 + b",b\n", b"e3,ok,c\n"]
    exchange = Exchange(limited_app, "POST", "/tasks/t/examples", headers, rows).run()
    assert exchange.status == 422, exchange.body
    assert exchange.error()["details"] == [{"field": "text", "message": "cell too long", "row": 1}]
    assert exchange.chunks_read == 3  # the row after it was never read


def test_a_quoted_cell_that_never_ends_is_a_422_before_the_body_limit(limited_app, admin_key):
    headers = {"authorization": f"Bearer {admin_key}", "content-type": "text/csv"}
    chunks = [b"id,text,label\n", b'e1,"'] + [b"w" * 100 for _ in range(45)]
    exchange = Exchange(limited_app, "POST", "/tasks/t/examples", headers, chunks).run()
    assert exchange.status == 422, exchange.body
    assert exchange.error()["details"] == [{"field": "row", "message": "too long", "row": 0}]


def test_rows_over_the_limit_stop_the_upload_as_they_arrive(limited_app, admin_key):
    headers = {"authorization": f"Bearer {admin_key}", "content-type": "application/x-ndjson"}
    lines = [
        json.dumps({"id": f"e{i}", "text": "t", "label": "a"}).encode() + b"\n" for i in range(40)
    ]
    exchange = Exchange(limited_app, "POST", "/tasks/t/examples", headers, lines).run()
    assert exchange.status == 422, exchange.body
    assert exchange.error()["message"] == "too many rows: more than 10"
    assert exchange.chunks_read == 11


def test_uploads_within_the_limits_still_import(limited_app, admin_key):
    headers = {"authorization": f"Bearer {admin_key}", "content-type": "text/csv"}
    rows = [b"id,text,label\n", b'e1,"two\nlines",a\n', b'e2,"a ""quoted"" word",b\n']
    exchange = Exchange(limited_app, "POST", "/tasks/t/examples", headers, rows).run()
    assert exchange.status == 200, exchange.body
    assert json.loads(exchange.body)["inserted"] == 2


def test_every_401_carries_www_authenticate(anon_client):
    response = anon_client.get("/tasks")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    wrong = anon_client.get("/tasks", headers={"Authorization": "Bearer vc_unknown"})
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == "Bearer"
