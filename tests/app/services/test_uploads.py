"""The streaming upload parser reads CSV exactly as csv.DictReader reads the whole file,
however the bytes are split into chunks."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.errors import InvalidInputError
from app.services.uploads import UploadLimits, UploadParser

LIMITS = UploadLimits(max_rows=1_000, max_cell_chars=1_000)
cells = st.text(alphabet=st.sampled_from('ab ,"\n\r\xe9'), max_size=12)


def dict_reader_rows(text: str) -> list[dict]:
    rows = []
    for record in csv.DictReader(io.StringIO(text, newline="")):
        if None in record:
            rows.append({"__error__": "row has more cells than the header"})
            continue
        rows.append({k.strip(): v for k, v in record.items()})
    return rows


def csv_text(table: list[list[str]]) -> str:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows(table)
    return buffer.getvalue()


@given(
    header=st.lists(
        st.text(alphabet="xyz", min_size=1, max_size=3), min_size=1, max_size=4, unique=True
    ),
    body=st.lists(st.lists(cells, min_size=1, max_size=5), max_size=8),
    chunk=st.integers(min_value=1, max_value=64),
)
def test_chunked_parsing_equals_dict_reader(header, body, chunk):
    text = csv_text([header, *body])
    data = text.encode()
    parser = UploadParser("csv", LIMITS)
    for start in range(0, len(data), chunk):
        parser.feed(data[start : start + chunk])
    assert parser.close() == dict_reader_rows(text)


def test_a_multibyte_character_split_across_chunks_is_decoded():
    data = "\ufefftext,label\ncaf\xe9,a\n".encode()
    parser = UploadParser("csv", LIMITS)
    for byte in data:
        parser.feed(bytes([byte]))
    assert parser.close() == [{"text": "caf\xe9", "label": "a"}]


def test_invalid_utf8_is_a_422():
    parser = UploadParser("jsonl", LIMITS)
    with pytest.raises(InvalidInputError, match="not valid UTF-8"):
        parser.feed(b'{"text": "\xff"}\n')
