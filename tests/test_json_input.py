"""reviews.json_input: untrusted JSON text is refused with a ValueError a person
can read, never a RecursionError or a value the database would refuse."""

import pytest

from reviews.json_input import MAX_DEPTH, JSONSyntaxError, parse_json
from reviews.schema_forms import SchemaForm


def test_reads_plain_json():
    assert parse_json('{"a": [1, 2.5, "x[{", null, true]}') == {"a": [1, 2.5, "x[{", None, True]}
    assert parse_json(b'["\\u00e9"]') == ["é"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[" * 100_000, "nested 100000 levels"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), f"at most {MAX_DEPTH}"),
        ('{"a": 99999999999999999999999}', "too large"),
        ("9" * 10_000, "too large"),
        ("1e999", "too large"),
        ("NaN", "not a JSON value"),
        ('"a\x00b"', "NUL"),
        ('{"a\\u0000": 1}', "NUL"),
        ('["\\u0000"]', "NUL"),
        (b"\xff", "UTF-8"),
        ('{"a":', "Not valid JSON: Expecting value (line 1, column 6)."),
        ("x" * 11, "at most 10"),
    ],
)
def test_refuses_with_a_reason(text, says):
    with pytest.raises(ValueError) as caught:
        parse_json(text, max_chars=10) if says == "at most 10" else parse_json(text)
    assert says in str(caught.value)
    # Text that is JSON but refused for what it holds is told apart from text
    # that is not JSON at all.
    syntax = says in ("UTF-8", "Not valid JSON: Expecting value (line 1, column 6).")
    assert isinstance(caught.value, JSONSyntaxError) is syntax


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = '["' + "[" * 10_000 + '"]'
    assert parse_json(text) == ["[" * 10_000]
    assert parse_json("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None


def test_form_fields_refuse_what_json_input_refuses():
    schema = {
        "type": "object",
        "properties": {"count": {"type": "integer"}, "extra": {"type": "object"}},
    }
    bad = SchemaForm(
        schema, prefix="f", data={"f-count": "99999999999999999999999", "f-extra": "[" * 100_000}
    )
    assert not bad.is_valid()
    assert "too large" in bad.errors["count"][0]
    assert "nested 100000 levels" in bad.errors["extra"][0]
    good = SchemaForm(schema, prefix="f", data={"f-count": "-9223372036854775808", "f-extra": "{}"})
    assert good.is_valid() and good.value == {"count": -(2**63), "extra": {}}
