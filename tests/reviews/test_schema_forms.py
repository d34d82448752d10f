"""reviews.schema_forms: a JSON schema as a Django form. Inputs keep their
JSON types, the schema's rules are told at the field they concern, and the
input points at its help and its error."""

from __future__ import annotations

from reviews.schema_forms import SchemaForm

FEEDBACK = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean", "description": "Publish as it is?"},
        "tone": {"enum": ["formal", "friendly"]},
        "max_words": {"type": "integer", "minimum": 10, "title": "Word limit"},
        "notes": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["approved", "max_words"],
}


def answer(**data) -> SchemaForm:
    return SchemaForm(FEEDBACK, prefix="t5-f", data={f"t5-f-{k}": v for k, v in data.items()})


def test_values_keep_their_json_types():
    form = answer(approved="on", tone='"friendly"', max_words="30", notes="", tags='["a"]')
    assert form.is_valid(), form.errors
    assert form.value == {
        "approved": True,
        "tone": "friendly",
        "max_words": 30,
        "notes": None,  # sent empty where the schema allows null
        "tags": ["a"],
    }


def test_the_schemas_rules_are_told_at_their_field_and_read_with_the_input():
    form = answer(approved="on", max_words="3", tags='["a", 1]')
    assert not form.is_valid()
    assert form.errors["max_words"] == ["3 is less than the minimum of 10"]
    assert "1 is not of type 'string'" in form.errors["tags"][0]
    words = str(form["max_words"])
    assert 'aria-invalid="true"' in words and 'aria-describedby="id_t5-f-max_words_error"' in words
    assert 'aria-required="true"' in words and " required" not in words  # the server says why


def test_a_value_of_the_wrong_type_and_a_missing_one_are_refused():
    form = answer(max_words="ten", tone='"shouty"')
    assert not form.is_valid()
    assert form.errors["max_words"] == ["'ten' is not a whole number."]
    assert form.errors["tone"] == ["Choose one of: formal, friendly."]
    assert "approved" not in form.errors  # unticked is an answer: false


def test_what_the_graph_wrote_unchanged_is_not_held_against_the_person():
    state = {"max_words": 3, "approved": True}  # the graph's own value breaks the minimum
    shown = SchemaForm(FEEDBACK, state, prefix="s")
    data = {b.html_name: b.value() for b in shown if b.value() not in (None, False, "")}
    assert data == {"s-approved": True, "s-max_words": "3"}
    assert SchemaForm(FEEDBACK, state, prefix="s", data=data).is_valid()
    changed = SchemaForm(FEEDBACK, state, prefix="s", data={**data, "s-max_words": "4"})
    assert not changed.is_valid() and "minimum of 10" in changed.errors["max_words"][0]
