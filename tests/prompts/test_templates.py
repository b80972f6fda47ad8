"""Prompt templates: loading, versioning, rendering, and recovering the fields of the default."""

import dataclasses
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prompts import (
    DEFAULT_TEMPLATE_NAME,
    Template,
    TemplateError,
    default_template,
    load_template,
    prompt_version,
    recover_prompt_fields,
    render_messages,
    template_from_text,
)
from prompts.templates import REASONING_FLAVOUR_MARK, template_version

LABELS = ["billing", "technical", "not spam"]
VERSION_FORMAT = re.compile(r"sha256:[0-9a-f]{12}")

tricky_fragments = st.sampled_from(
    [
        "</text>",
        "<text>",
        "{labels}",
        "{text}",
        "{",
        "}",
        '{"a": 0.5}',
        "\n",
        "\r\n",
        "=== user ===",
        '"',
        "\\",
        "é",
        "日本語",
        "\U0001f600",
        "\x00",
        " ",
    ]
)
tricky_texts = st.one_of(
    st.text(),
    st.lists(st.one_of(tricky_fragments, st.text(max_size=5)), max_size=12).map("".join),
)
label_lists = st.lists(st.one_of(st.text(max_size=12), tricky_fragments), max_size=6, unique=True)


# --- loading and versioning ---------------------------------------------------------------------


def test_default_template_loads_with_a_content_hash_version():
    template = load_template()
    assert template == load_template(DEFAULT_TEMPLATE_NAME)
    assert DEFAULT_TEMPLATE_NAME == "default"
    assert template.name == "default"
    assert VERSION_FORMAT.fullmatch(template.version)
    assert template.version == template_version(template.text)


def test_default_template_asks_for_incremental_elicitation_as_one_json_object():
    text = load_template().text
    assert text.count("{labels}") == 1
    assert text.count("{text}") == 1
    assert text.index("{labels}") < text.index("{text}")
    lowered = text.lower()
    for phrase in ("most likely", "confident", "probability for every label", "json object"):
        assert phrase in lowered
    assert "<text>\n{text}\n</text>" in text


def test_version_is_stable_for_the_same_content_and_changes_with_the_content():
    text = "Labels: {labels}\nText: {text}"
    first = template_from_text(text, name="one")
    assert template_from_text(text, name="two").version == first.version
    assert template_from_text(text + " ", name="one").version != first.version
    assert template_from_text(text.replace("Labels", "Classes")).version != first.version
    assert first.version == template_version(text)
    assert VERSION_FORMAT.fullmatch(first.version)


def test_template_is_frozen():
    template = load_template()
    with pytest.raises(dataclasses.FrozenInstanceError):
        template.text = "changed"  # type: ignore[misc]


@pytest.mark.parametrize("name", ["nope", "../default", "default.txt", "", "a/b", ".hidden"])
def test_unknown_or_malformed_template_names_raise_template_error(name):
    with pytest.raises(TemplateError):
        load_template(name)


def test_template_error_is_a_value_error():
    assert issubclass(TemplateError, ValueError)


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("Classify {text}", ["{labels}"]),
        ("Choose from {labels}", ["{text}"]),
        ("Nothing to fill in", ["{text}", "{labels}"]),
        ("{ text } and { labels }", ["{text}", "{labels}"]),
        ("", ["{text}", "{labels}"]),
    ],
)
def test_custom_template_missing_a_placeholder_names_it(text, missing):
    with pytest.raises(TemplateError) as excinfo:
        template_from_text(text)
    named = str(excinfo.value).split(":")[0]
    for placeholder in ("{text}", "{labels}"):
        assert (placeholder in named) == (placeholder in missing)


def test_custom_template_must_be_a_string():
    with pytest.raises(TemplateError, match="must be a string"):
        template_from_text(None)  # type: ignore[arg-type]


def test_custom_template_with_two_user_markers_is_rejected():
    with pytest.raises(TemplateError, match="more than one"):
        template_from_text("=== user ===\n{labels}\n=== user ===\n{text}")


def test_custom_template_with_a_misplaced_system_marker_is_rejected():
    with pytest.raises(TemplateError, match="first line"):
        template_from_text("{labels}\n=== system ===\n{text}")


# --- rendering ----------------------------------------------------------------------------------


def test_default_rendering_gives_system_and_user_messages_with_labels_and_text():
    messages = render_messages(load_template(), "My invoice is wrong.", LABELS)
    assert [message["role"] for message in messages] == ["system", "user"]
    assert all(set(message) == {"role", "content"} for message in messages)
    system, user = (message["content"] for message in messages)
    assert "{labels}" not in system and "{text}" not in system
    assert '["billing", "technical", "not spam"]' in user
    assert "<text>\nMy invoice is wrong.\n</text>" in user
    assert user.endswith("</text>")
    assert "===" not in system + user


def test_template_without_system_part_renders_only_a_user_message():
    template = template_from_text("Labels: {labels}\nText: {text}")
    assert render_messages(template, "hello", ["a", "b"]) == [
        {"role": "user", "content": 'Labels: ["a", "b"]\nText: hello'}
    ]


def test_custom_template_with_markers_renders_both_parts_stripped():
    template = template_from_text(
        "=== system ===\nBe calibrated.\n\n=== user ===\n\nPick from {labels}: {text}\n"
    )
    assert render_messages(template, "x", ["a"]) == [
        {"role": "system", "content": "Be calibrated."},
        {"role": "user", "content": 'Pick from ["a"]: x'},
    ]


def test_system_marker_is_optional_before_the_user_marker():
    template = template_from_text("Be calibrated.\n=== user ===\n{labels} {text}")
    assert render_messages(template, "x", ["a"])[0] == {
        "role": "system",
        "content": "Be calibrated.",
    }


def test_braces_and_placeholders_in_the_text_are_left_alone():
    text = 'Order {labels} {text} {0} {"a": 1} }{'
    template = template_from_text("L={labels} T={text}")
    (message,) = render_messages(template, text, ["a", "b"])
    assert message["content"] == f'L=["a", "b"] T={text}'


def test_a_label_containing_a_placeholder_is_not_expanded():
    template = template_from_text("L={labels} T={text}")
    (message,) = render_messages(template, "body", ["{text}", "{labels}"])
    assert message["content"] == 'L=["{text}", "{labels}"] T=body'


def test_json_example_braces_in_the_template_survive_rendering():
    template = template_from_text('Answer like {"a": 0.5}. {labels} {text}')
    (message,) = render_messages(template, "t", ["a"])
    assert message["content"] == 'Answer like {"a": 0.5}. ["a"] t'


def test_labels_are_rendered_as_a_json_list_keeping_unicode():
    (message,) = render_messages(template_from_text("{labels}|{text}"), "", ["café", 'a"b'])
    labels_json = message["content"].split("|")[0]
    assert json.loads(labels_json) == ["café", 'a"b']
    assert "café" in labels_json


@pytest.mark.parametrize("labels", ["billing", b"ab", [1, 2]])
def test_rendering_rejects_labels_that_are_not_a_list_of_strings(labels):
    with pytest.raises(TypeError):
        render_messages(load_template(), "text", labels)


def test_rendering_rejects_a_non_string_text():
    with pytest.raises(TypeError):
        render_messages(load_template(), None, LABELS)  # type: ignore[arg-type]


# --- recovery -----------------------------------------------------------------------------------


@given(text=tricky_texts, labels=label_lists)
def test_recovery_inverts_default_rendering_exactly(text, labels):
    messages = render_messages(load_template(), text, labels)
    assert recover_prompt_fields(messages) == (text, labels, False)


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        "",
        "a </text> in the middle",
        "</text>",
        "ends with\n</text>",
        "<text>\nnested\n</text>",
        '["fake", "labels"]\n\nThe text',
        "{labels} and {text}",
        "line\nbreaks\r\n and unicode é 日本語 \U0001f600",
    ],
)
def test_recovery_handles_delimiters_and_placeholders_inside_the_text(text):
    labels = ["</text>", "{text}", "not spam", 'quote"d']
    assert recover_prompt_fields(render_messages(load_template(), text, labels)) == (
        text,
        labels,
        False,
    )


def test_recovery_accepts_tuples_of_messages():
    messages = tuple(render_messages(load_template(), "t", LABELS))
    assert recover_prompt_fields(messages) == ("t", LABELS, False)


def _default_messages() -> list[dict]:
    return render_messages(load_template(), "My invoice is wrong.", LABELS)


def _edited(edit) -> list[dict]:
    messages = [dict(message) for message in _default_messages()]
    edit(messages)
    return messages


@pytest.mark.parametrize(
    "messages",
    [
        None,
        "a string",
        [],
        [{"role": "user", "content": "Classify this"}],
        _default_messages()[1:],
        _default_messages()[::-1],
        [*_default_messages(), {"role": "assistant", "content": "{}"}],
        _edited(lambda m: m[0].update(content=m[0]["content"] + " ")),
        _edited(lambda m: m[1].update(content=m[1]["content"] + "\n")),
        _edited(lambda m: m[1].update(content="x" + m[1]["content"])),
        _edited(lambda m: m[1].update(role="assistant")),
        _edited(lambda m: m[1].update(name="someone")),
        _edited(lambda m: m[1].update(content=[{"type": "text", "text": "hi"}])),
        _edited(lambda m: m[1].update(content=m[1]["content"].replace('", "', '","'))),
        _edited(lambda m: m[1].update(content=m[1]["content"].replace('["billing"', "[1"))),
        _edited(lambda m: m[1].update(content=m[1]["content"].replace('["billing", ', "{"))),
        [{"role": "system", "content": 1}, {"role": "user", "content": 2}],
        ["system", "user"],
    ],
)
def test_recovery_returns_none_for_anything_but_the_default_prompt(messages):
    assert recover_prompt_fields(messages) is None


def test_recovery_returns_none_for_other_templates():
    custom = template_from_text("=== user ===\nLabels {labels}\n<text>\n{text}\n</text>")
    assert recover_prompt_fields(render_messages(custom, "t", LABELS)) is None


def test_recovery_returns_none_for_ascii_escaped_labels():
    messages = render_messages(load_template(), "t", ["café"])
    messages[1]["content"] = messages[1]["content"].replace('"café"', json.dumps("café"))
    assert recover_prompt_fields(messages) is None


@given(
    messages=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.sampled_from(["role", "content", "x"]), children, max_size=3)
        ),
        max_leaves=10,
    )
)
def test_recovery_never_raises_on_arbitrary_structures(messages):
    assert recover_prompt_fields(messages) is None


def test_template_fields_are_plain_strings():
    template = Template(name="x", text="{labels}{text}", version=template_version("{labels}{text}"))
    assert template == template_from_text("{labels}{text}", name="x")


# --- the reasoning flavour ---------------------------------------------------------------------


def test_default_templates_of_both_flavours():
    plain, reasoning = default_template(), default_template(reasoning=True)
    assert plain == load_template() and plain.name == "default"
    assert reasoning.name == "default-reasoning"
    assert '"reasoning"' in reasoning.text and '"reasoning"' not in plain.text
    assert plain.version != reasoning.version


def test_prompt_version_covers_template_and_schema_flavour():
    template = template_from_text("=== user ===\n{labels}\n{text}")
    assert prompt_version(template, reasoning=False) == template.version
    flavoured = prompt_version(template, reasoning=True)
    assert flavoured == template_version(template.text + REASONING_FLAVOUR_MARK)
    assert flavoured != template.version
    assert flavoured.startswith("sha256:") and len(flavoured) == len("sha256:") + 12
    other = template_from_text("=== user ===\n{labels}\n{text}\n")
    assert prompt_version(other, reasoning=True) != flavoured


@given(text=tricky_texts, labels=label_lists)
def test_recovery_tells_the_reasoning_template_apart(text, labels):
    recovered = recover_prompt_fields(
        render_messages(default_template(reasoning=True), text, labels)
    )
    assert recovered == (text, labels, True)
    assert recovered.reasoning is True and recovered.text == text and recovered.labels == labels
