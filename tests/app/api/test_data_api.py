"""Examples and predictions import: formats, upserts, per-row errors, all-or-nothing."""

import json

import pytest

LABELS = ["billing", "technical", "account", "other"]


@pytest.fixture
def task(client):
    assert client.post("/tasks", json={"name": "t", "labels": LABELS}).status_code == 201
    return "t"


def counts(client):
    return client.get("/tasks/t").json()["counts"]


def test_json_examples_upsert_by_id_and_text(client, task):
    rows = [
        {"id": "a", "text": "refund please", "label": "billing"},
        {"text": "app crashes", "label": "technical"},
    ]
    first = client.post("/tasks/t/examples", json={"examples": rows})
    assert first.status_code == 200, first.text
    assert first.json() == {"received": 2, "inserted": 2, "updated": 0, "unchanged": 0}
    again = client.post(
        "/tasks/t/examples",
        json={
            "examples": [
                {"id": "a", "text": "refund please", "label": "account"},  # by id
                {"text": "app crashes", "label": "technical"},  # by text, unchanged
                {"text": "new one", "label": "other"},
            ]
        },
    ).json()
    assert again == {"received": 3, "inserted": 1, "updated": 1, "unchanged": 1}
    c = counts(client)
    assert c["examples"] == 3
    assert c["per_label"] == {"billing": 0, "technical": 1, "account": 1, "other": 1}


def test_csv_multipart_and_raw_and_jsonl(client, task):
    csv_text = 'id,text,label\n1,refund,billing\n2,"crash, again",technical\n'
    up = client.post("/tasks/t/examples", files={"file": ("ex.csv", csv_text, "text/csv")})
    assert up.status_code == 200, up.text
    assert up.json()["inserted"] == 2
    raw = client.post(
        "/tasks/t/examples",
        content="text,label\nlogin fails,account\n",
        headers={"Content-Type": "text/csv"},
    )
    assert raw.json()["inserted"] == 1
    jsonl = "\n".join(json.dumps(r) for r in [{"text": "hello", "label": "other"}]) + "\n"
    up = client.post(
        "/tasks/t/examples", files={"file": ("ex.jsonl", jsonl, "application/x-ndjson")}
    )
    assert up.json()["inserted"] == 1
    texts = {e["text"] for e in client.get("/tasks/t/examples").json()}
    assert texts == {"refund", "crash, again", "login fails", "hello"}


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"text": "x", "label": "nope"}, "label"),
        ({"text": "", "label": "billing"}, "text"),
        ({"text": "   ", "label": "billing"}, "text"),
        ({"text": "a\x00b", "label": "billing"}, "text"),
        ({"text": "x"}, "label"),
        ({"text": 5, "label": "billing"}, "text"),
        ({"text": "x", "label": "billing", "extra": 1}, "extra"),
    ],
)
def test_bad_example_row_rejects_whole_import(client, task, row, field):
    rows = [{"text": "fine", "label": "billing"}, row]
    response = client.post("/tasks/t/examples", json={"examples": rows})
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert details[0]["row"] == 1
    assert details[0]["field"] == field
    assert counts(client)["examples"] == 0


def test_csv_errors_name_rows_and_import_nothing(client, task):
    csv_text = "text,label\nok,billing\nbad,nonsense\n,technical\n"
    response = client.post("/tasks/t/examples", files={"file": ("e.csv", csv_text, "text/csv")})
    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert [(d["row"], d["field"]) for d in details] == [(1, "label"), (2, "text")]
    assert counts(client)["examples"] == 0


def test_text_too_long_and_too_many_rows(client, task, settings):
    long = "x" * (settings.max_text_length + 1)
    r = client.post("/tasks/t/examples", json={"examples": [{"text": long, "label": "other"}]})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "text"
    settings.max_upload_rows = 2
    rows = [{"text": f"t{i}", "label": "other"} for i in range(3)]
    r = client.post("/tasks/t/examples", json={"examples": rows})
    assert r.status_code == 422
    assert "too many rows" in r.json()["error"]["message"]


def test_duplicate_ids_in_one_import(client, task):
    rows = [{"id": "x", "text": "a", "label": "other"}, {"id": "x", "text": "b", "label": "other"}]
    r = client.post("/tasks/t/examples", json={"examples": rows})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0] == {
        "field": "id",
        "message": "duplicate id 'x' (also row 0)",
        "row": 1,
    }


def test_predictions_import_and_counts(client, task):
    items = [
        {
            "text": "refund",
            "label": "billing",
            "probabilities": dict(zip(LABELS, [2, 1, 1, 0], strict=False)),
        },
        {"text": "crash", "probabilities": dict(zip(LABELS, [0, 0.5, 0.5, 0], strict=False))},
    ]
    r = client.post("/tasks/t/predictions", json={"items": items})
    assert r.status_code == 200, r.text
    assert r.json()["inserted"] == 2
    c = counts(client)
    assert c["examples"] == 2
    assert c["labelled"] == 1
    assert c["distributions"]["imported"] == 2
    # Re-import updates the stored distribution instead of duplicating it.
    items[0]["probabilities"] = dict(zip(LABELS, [1, 0, 0, 0], strict=False))
    assert client.post("/tasks/t/predictions", json={"items": items}).json() == {
        "received": 2,
        "inserted": 0,
        "updated": 1,
        "unchanged": 1,
    }


@pytest.mark.parametrize(
    ("probabilities", "needle"),
    [
        ({"billing": -0.1, "technical": 1, "account": 0, "other": 0}, "greater than or equal"),
        ({"billing": True, "technical": 1, "account": 0, "other": 0}, "valid number"),
        ({"billing": "0.5", "technical": 1, "account": 0, "other": 0}, "valid number"),
        ({"billing": 0, "technical": 0, "account": 0, "other": 0}, "all probabilities are zero"),
        ({"billing": 1, "technical": 0}, "missing label(s) ['account', 'other']"),
        ({"billing": 1, "technical": 0, "account": 0, "other": 0, "x": 0}, "unknown label(s)"),
    ],
)
def test_bad_predictions_are_422(client, task, probabilities, needle):
    items = [{"text": "ok", "probabilities": dict.fromkeys(LABELS, 0.25)}]
    items.append({"text": "bad", "probabilities": probabilities})
    r = client.post("/tasks/t/predictions", json={"items": items})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert needle in json.dumps(error)
    assert all(d["row"] == 1 for d in error["details"])
    assert counts(client)["examples"] == 0


def test_nan_and_infinity_literals_are_rejected(client, task):
    body = (
        '{"items": [{"text": "a", "probabilities": '
        '{"billing": NaN, "technical": 1, "account": 0, "other": 0}}]}'
    )
    r = client.post(
        "/tasks/t/predictions", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422
    assert "NaN" in r.json()["error"]["message"]
    assert counts(client)["examples"] == 0


def test_predictions_by_example_id_must_exist(client, task):
    client.post(
        "/tasks/t/examples", json={"examples": [{"id": "e1", "text": "a", "label": "other"}]}
    )
    good = {"example_id": "e1", "probabilities": dict.fromkeys(LABELS, 1)}
    bad = {"example_id": "nope", "probabilities": dict.fromkeys(LABELS, 1)}
    r = client.post("/tasks/t/predictions", json={"items": [good, bad]})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "example_id"
    assert counts(client)["distributions"]["imported"] == 0
    assert client.post("/tasks/t/predictions", json={"items": [good]}).status_code == 200
    assert counts(client)["distributions"]["imported"] == 1


def test_predictions_csv_one_column_per_label(client, task):
    csv_text = "text,label,billing,technical,account,other\nrefund,billing,0.7,0.1,0.1,0.1\n"
    r = client.post("/tasks/t/predictions", files={"file": ("p.csv", csv_text, "text/csv")})
    assert r.status_code == 200, r.text
    assert counts(client)["distributions"]["imported"] == 1
    bad = "text,billing,technical,account,other\nx,0.7,abc,0.1,0.1\n"
    r = client.post("/tasks/t/predictions", files={"file": ("p.csv", bad, "text/csv")})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["row"] == 0


def test_rows_swapping_texts_are_rejected_cleanly(client, task):
    rows = [
        {"id": "a", "text": "one", "label": "other"},
        {"id": "b", "text": "two", "label": "other"},
    ]
    assert client.post("/tasks/t/examples", json={"examples": rows}).status_code == 200
    swapped = [
        {"id": "a", "text": "two", "label": "other"},
        {"id": "b", "text": "one", "label": "other"},
    ]
    r = client.post("/tasks/t/examples", json={"examples": swapped})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"
    texts = {e["id"]: e["text"] for e in client.get("/tasks/t/examples").json()}
    assert texts == {"a": "one", "b": "two"}
