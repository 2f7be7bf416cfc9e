"""The answer shape of extraction: fields, their JSON schema and the check of an answer."""

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from app.answer_shapes import (
    FieldSpec,
    check_extraction,
    extraction_schema,
    fields_from_json_schema,
    parse_fields_text,
)

FIELDS = [
    FieldSpec(name="date", description="the booking date"),
    FieldSpec(name="party_size", description="number of people", type="number"),
    FieldSpec(name="rooms", type="integer"),
    FieldSpec(name="vip", type="boolean"),
    FieldSpec(name="dishes", type="list"),
    FieldSpec(name="note", span=False),
]
TEXT = "Table for  TWELVE people on May 1st, we'd like the Paella and the soup. Ten rooms please."


def _valid(schema: dict[str, Any], instance: Any) -> bool:
    return Draft202012Validator(schema).is_valid(instance)


# --- extraction fields ---------------------------------------------------------------------------


def test_parse_fields_text_reads_names_descriptions_and_types():
    assert parse_fields_text("date:the booking date,party_size:number of people:number") == [
        FieldSpec(name="date", description="the booking date", type="string"),
        FieldSpec(name="party_size", description="number of people", type="number"),
    ]
    assert parse_fields_text(" a , b::int, c:at 10:30:list,") == [
        FieldSpec(name="a"), FieldSpec(name="b", type="integer"),
        FieldSpec(name="c", description="at 10:30", type="list"),
    ]


@pytest.mark.parametrize(("text", "message"), [
    ("", "no fields given"),
    (" , ", "no fields given"),
    ("1date", "field '1date': name: String should match pattern"),
    ("my-field:x", "field 'my-field': name: String should match pattern"),
    ("date:d:datetime", "field 'date': unknown type 'datetime' (one of string, number, integer, boolean, list"),
    ("time:at 10:30", "field 'time': unknown type '30'"),
    ("a,b,a", "duplicate field name 'a'"),
    ("x:" + "d" * 301, "field 'x': description: String should have at most 300 characters"),
    ("n" * 65, "name: String should have at most 64 characters"),
])
def test_parse_fields_text_rejects_bad_input(text, message):
    with pytest.raises(ValueError) as e:
        parse_fields_text(text)
    assert message in str(e.value)


def test_field_spec_forbids_unknown_keys_and_bad_types():
    with pytest.raises(ValueError):
        FieldSpec.model_validate({"name": "a", "kind": "string"})
    with pytest.raises(ValueError):
        FieldSpec.model_validate({"name": "a", "type": "date"})


def test_extraction_schema_is_strict_nullable_and_simple():
    schema = extraction_schema(FIELDS[:2] + FIELDS[4:5])
    assert schema == {
        "type": "object",
        "properties": {
            "date": {"type": ["string", "null"], "description": "the booking date"},
            "party_size": {"type": ["number", "null"], "description": "number of people"},
            "dishes": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
        },
        "required": ["date", "party_size", "dishes"],
        "additionalProperties": False,
    }
    Draft202012Validator.check_schema(schema)
    assert "$ref" not in json.dumps(schema) and "format" not in json.dumps(schema)
    assert _valid(schema, {"date": "May 1", "party_size": 12, "dishes": ["soup"]})
    assert _valid(schema, {"date": None, "party_size": None, "dishes": None})
    assert not _valid(schema, {"date": "May 1", "party_size": 12})  # every key required
    assert not _valid(schema, {"date": "May 1", "party_size": "12", "dishes": None})
    assert not _valid(schema, {"date": None, "party_size": None, "dishes": [1]})
    assert not _valid(schema, {"date": None, "party_size": None, "dishes": None, "extra": 1})


def test_fields_from_json_schema_reads_plain_and_nullable_properties():
    schema = {"type": "object", "properties": {
        "name": {"type": "string", "description": "who"}, "age": {"type": "integer"}, "score": {"type": "number"},
        "ok": {"type": ["boolean", "null"]}, "tags": {"type": "array", "items": {"type": "string"}}}}
    assert fields_from_json_schema(schema) == [
        FieldSpec(name="name", description="who"), FieldSpec(name="age", type="integer"),
        FieldSpec(name="score", type="number"), FieldSpec(name="ok", type="boolean"),
        FieldSpec(name="tags", type="list"),
    ]
    assert fields_from_json_schema(extraction_schema(FIELDS)) == [f.model_copy(update={"span": True}) for f in FIELDS]


@pytest.mark.parametrize(("schema", "message"), [
    ([], "the schema must be a JSON object"),
    ({"type": "array"}, "the schema must have type 'object', not 'array'"),
    ({"type": "object"}, "the schema must have a non-empty 'properties' object"),
    ({"type": "object", "properties": {}}, "the schema must have a non-empty 'properties' object"),
    ({"properties": {"a": {"type": "object"}}}, "property 'a': unsupported type 'object'"),
    ({"properties": {"a": {"type": "array", "items": {"type": "integer"}}}},
     "property 'a': an array must have items of type string"),
    ({"properties": {"a": {"type": ["string", "integer"]}}},
     "property 'a': type must be one type or that type and null"),
    ({"properties": {"a": "string"}}, "property 'a': not a JSON schema object"),
    ({"properties": {"a-b": {"type": "string"}}}, "field 'a-b': name: String should match pattern"),
])
def test_fields_from_json_schema_rejects_other_schemas(schema, message):
    with pytest.raises(ValueError) as e:
        fields_from_json_schema(schema)
    assert message in str(e.value)


def test_check_extraction_cleans_coerces_and_drops_values_not_in_the_input():
    answer = {"date": "may  1st", "party_size": "1,000", "rooms": "10", "vip": "false",
              "dishes": ["paella", "Paella ", "soup", "pizza", ""], "note": "invented, but not a span"}
    result = check_extraction(answer, FIELDS, TEXT)
    assert result.problems == []
    assert result.value == {"date": "may  1st", "party_size": 1000, "rooms": 10, "vip": False,
                            "dishes": ["paella", "soup"], "note": "invented, but not a span"}
    assert result.dropped_values == ["dishes"]


def test_check_extraction_sets_invented_spans_to_none_and_fills_missing_keys():
    answer = '{"date": "June 3rd", "party_size": 12.5, "dishes": ["pizza"], "vip": true}'
    result = check_extraction(answer, FIELDS, TEXT)
    assert result.value == {"date": None, "party_size": 12.5, "rooms": None, "vip": True, "dishes": None, "note": None}
    assert result.dropped_values == ["date", "dishes"] and result.problems == []


def test_check_extraction_reads_empty_values_as_none_and_tolerates_a_fence():
    fenced = '```json\n{"date": "", "party_size": null, "rooms": 12.0, "dishes": [], "note": "  "}\n```'
    result = check_extraction(fenced, FIELDS, TEXT)
    assert result.value == {"date": None, "party_size": None, "rooms": 12, "vip": None, "dishes": None, "note": None}
    assert result.problems == [] and result.dropped_values == []


@pytest.mark.parametrize(("answer", "problems"), [
    ("Sure! The date is May 1st.", ["not a JSON object"]),
    ('["May 1st"]', ["not a JSON object"]),
    ([{"date": "May 1st"}], ["not a JSON object"]),
    ({"date": "May 1st", "time": "noon"}, ["unknown field 'time'"]),
    ({"rooms": "1.5"}, ["field 'rooms': '1.5' is not an integer"]),
    ({"party_size": "twelve"}, ["field 'party_size': 'twelve' is not a number"]),
    ({"party_size": True}, ["field 'party_size': True is not a number"]),
    ({"vip": "maybe"}, ["field 'vip': 'maybe' is not a boolean"]),
    ({"date": {"day": 1}}, ["field 'date': {'day': 1} is not a string"]),
    ({"dishes": ["soup", ["paella"]]}, ["field 'dishes': ['paella'] is not a string"]),
])
def test_check_extraction_reports_problems_and_gives_no_value(answer, problems):
    result = check_extraction(answer, FIELDS, TEXT)
    assert result.value is None and result.problems == problems
