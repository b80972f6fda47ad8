"""docs/configuration.md documents exactly the settings `app.config.Settings` has."""

from __future__ import annotations

import re
import types
import typing

import annotated_types
from pydantic import SecretStr

from app.config import Settings
from tests.e2e.processes import REPO_ROOT

CONFIG_DOC = REPO_ROOT / "docs" / "configuration.md"
BASE_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def documented_settings() -> dict[str, dict[str, str]]:
    """The reference table's rows, by variable name (backticks stripped)."""
    rows: dict[str, dict[str, str]] = {}
    lines = CONFIG_DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index("| variable | type | default | description |")
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        name, kind, default, description = (cell.strip() for cell in line.strip("|").split("|"))
        rows[name.strip("`")] = {
            "type": kind,
            "default": default.strip("`"),
            "description": description,
        }
    return rows


def rendered_default(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "":
        return "empty"
    return str(value)


def type_words(annotation: object, metadata: list[object], name: str) -> list[str]:
    """Words the documented type must contain: base type, choices, bounds, optionality."""
    words: list[str] = []
    arguments = typing.get_args(annotation)
    optional = isinstance(annotation, types.UnionType) and type(None) in arguments
    if optional:
        (annotation,) = [a for a in arguments if a is not type(None)]
        words.append("or unset")
    if typing.get_origin(annotation) is typing.Literal:
        words += ["one of", *map(str, typing.get_args(annotation))]
    elif annotation is SecretStr or name.endswith("secret_key"):
        words.append("secret string")
    else:
        words.append(BASE_TYPES[annotation])
    for constraint in metadata:
        if isinstance(constraint, annotated_types.Ge):
            words.append(f"≥ {constraint.ge}")
        elif isinstance(constraint, annotated_types.Gt):
            words.append(f"> {constraint.gt}")
    return words


def test_the_table_lists_exactly_the_settings():
    expected = {f"VERBCAL_{name.upper()}" for name in Settings.model_fields}
    documented = set(documented_settings())
    assert documented == expected, (
        f"missing from docs/configuration.md: {sorted(expected - documented)}; "
        f"documented but not in Settings: {sorted(documented - expected)}"
    )


def test_defaults_types_and_descriptions_match():
    rows = documented_settings()
    for name, field in Settings.model_fields.items():
        row = rows[f"VERBCAL_{name.upper()}"]
        assert row["default"] == rendered_default(field.default), name
        for word in type_words(field.annotation, field.metadata, name):
            assert word in row["type"], f"{name}: type {row['type']!r} lacks {word!r}"
        assert row["description"], name


def test_every_setting_variable_the_docs_mention_exists():
    known = {f"VERBCAL_{name.upper()}" for name in Settings.model_fields}
    # Read by the test suite or docker-compose.yml, not by the service's settings.
    known |= {"VERBCAL_TEST_POSTGRES_URL", "VERBCAL_REQUIRE_POSTGRES"}
    known |= {"VERBCAL_PORT", "VERBCAL_VERSION", "VERBCAL_URL", "VERBCAL_KEY"}
    for path in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        mentioned = set(re.findall(r"VERBCAL_[A-Z_]+[A-Z]", path.read_text(encoding="utf-8")))
        # LLM key variables an operator may name (VERBCAL_ALLOWED_LLM_KEY_ENVS), not settings.
        mentioned = {name for name in mentioned if not name.startswith("VERBCAL_LLM_KEY")}
        assert mentioned <= known, f"{path.name} mentions unknown {sorted(mentioned - known)}"
