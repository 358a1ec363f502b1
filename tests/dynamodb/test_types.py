"""Every attribute type: round trips, numbers' precision and range, sets, empty values."""

from decimal import Decimal

import pytest
from conftest import B, N, S, code_of, doc, get

TYPES_PAGE = "Supported data types and naming rules in Amazon DynamoDB"

NUMBER_MAX = "9.9999999999999999999999999999999999999E+125"
NUMBER_MIN_POSITIVE = "1E-130"


def roundtrip(ddb, table_name, uid, value):
    ddb.put_item(TableName=table_name, Item={"pk": S(uid), "v": value})
    return get(ddb, table_name, {"pk": S(uid)})["v"]


def sorted_set(value):
    ((kind, members),) = value.items()
    return {kind: sorted(members)}


@pytest.mark.parametrize(
    "value",
    [
        S("hello"),
        S("ünïcödé ☃ 𝄞"),
        N("123.45"),
        N("-7"),
        B(b"\x00\xff\x10binary"),
        {"BOOL": True},
        {"BOOL": False},
        {"NULL": True},
        {"L": [S("a"), N("1"), {"L": []}, {"M": {}}]},
        {"M": {"a": S("x"), "b": {"M": {"c": {"NULL": True}}}}},
        {"L": []},
        {"M": {}},
    ],
    ids=["S", "S-unicode", "N", "N-negative", "B", "BOOL-true", "BOOL-false", "NULL", "L", "M", "L-empty", "M-empty"],
)
@doc(TYPES_PAGE, "Data types: scalar and document types")
def test_scalar_and_document_types_round_trip(ddb, t_s, uid, value):
    assert roundtrip(ddb, t_s, uid, value) == value


@pytest.mark.parametrize(
    "value",
    [{"SS": ["b", "a", "c"]}, {"NS": ["3", "1.5", "-2"]}, {"BS": [b"\x02", b"\x01", b"\x00"]}],
    ids=["SS", "NS", "BS"],
)
@doc(TYPES_PAGE, "Sets: the order of the values within a set is not preserved")
def test_set_types_round_trip_as_sets(ddb, t_s, uid, value):
    assert sorted_set(roundtrip(ddb, t_s, uid, value)) == sorted_set(value)


@pytest.mark.parametrize(
    "value",
    [{"SS": []}, {"NS": []}, {"BS": []}],
    ids=["SS", "NS", "BS"],
)
@doc(TYPES_PAGE, "Sets: DynamoDB does not support empty sets")
def test_empty_sets_are_rejected(ddb, t_s, uid, value):
    assert code_of(ddb.put_item, TableName=t_s, Item={"pk": S(uid), "v": value}) == "ValidationException"


@pytest.mark.parametrize(
    "value",
    [{"SS": ["a", "a"]}, {"NS": ["1", "1"]}, {"NS": ["1", "1.0"]}, {"BS": [b"x", b"x"]}],
    ids=["SS", "NS", "NS-same-value", "BS"],
)
@doc(TYPES_PAGE, "Sets: each value within a set must be unique")
def test_sets_with_duplicates_are_rejected(ddb, t_s, uid, value):
    assert code_of(ddb.put_item, TableName=t_s, Item={"pk": S(uid), "v": value}) == "ValidationException"


@pytest.mark.parametrize("value", [{"SS": [""]}, {"BS": [b""]}], ids=["SS", "BS"])
@doc(TYPES_PAGE, "Sets: empty string and binary values are allowed within a set")
def test_empty_values_inside_sets_are_allowed(ddb, t_s, uid, value):
    assert roundtrip(ddb, t_s, uid, value) == value


@pytest.mark.parametrize("value", [S(""), B(b"")], ids=["S", "B"])
@doc(TYPES_PAGE, "String/Binary: non-key attributes may have zero length")
def test_empty_string_and_binary_in_non_key_attributes(ddb, t_s, uid, value):
    assert roundtrip(ddb, t_s, uid, value) == value


@doc(TYPES_PAGE, "String/Binary: empty values in lists and maps")
def test_empty_values_nested_in_documents(ddb, t_s, uid):
    value = {"M": {"s": S(""), "l": {"L": [S(""), B(b"")]}}}
    assert roundtrip(ddb, t_s, uid, value) == value


@doc(TYPES_PAGE, "Number: up to 38 digits of precision")
def test_38_digit_integer_is_exact(ddb, t_s, uid):
    digits = "12345678901234567890123456789012345678"
    assert roundtrip(ddb, t_s, uid, N(digits)) == N(digits)


@doc(TYPES_PAGE, "Number: up to 38 digits of precision")
def test_38_digit_fraction_is_exact(ddb, t_s, uid):
    digits = "0.12345678901234567890123456789012345678"
    assert roundtrip(ddb, t_s, uid, N(digits)) == N(digits)


@doc(TYPES_PAGE, "Number: up to 38 digits of precision")
def test_negative_38_digit_number_is_exact(ddb, t_s, uid):
    digits = "-9999999999999999999.9999999999999999999"
    assert roundtrip(ddb, t_s, uid, N(digits)) == N(digits)


@pytest.mark.parametrize(
    "number",
    ["123456789012345678901234567890123456789", "1.00000000000000000000000000000000000001"],
    ids=["39-digit-integer", "39-digit-fraction"],
)
@doc(TYPES_PAGE, "Number: exceeding 38 digits of precision is an error")
def test_more_than_38_significant_digits_is_rejected(ddb, t_s, uid, number):
    assert code_of(ddb.put_item, TableName=t_s, Item={"pk": S(uid), "v": N(number)}) == "ValidationException"


@doc(TYPES_PAGE, "Number: leading and trailing zeroes are trimmed (not significant)")
def test_zeroes_do_not_count_as_significant_digits(ddb, t_s, uid):
    number = "000" + "1" * 38 + ".000"
    assert roundtrip(ddb, t_s, uid, N(number)) == N("1" * 38)


@pytest.mark.parametrize(
    "number",
    [NUMBER_MAX, "-" + NUMBER_MAX, NUMBER_MIN_POSITIVE, "-" + NUMBER_MIN_POSITIVE],
    ids=["max", "min", "smallest-positive", "largest-negative"],
)
@doc(TYPES_PAGE, "Number: range 1E-130 to 9.9999999999999999999999999999999999999E+125")
def test_numbers_at_the_range_ends_are_stored(ddb, t_s, uid, number):
    stored = roundtrip(ddb, t_s, uid, N(number))
    assert Decimal(stored["N"]) == Decimal(number)


@pytest.mark.parametrize(
    "number",
    ["1E+126", "-1E+126", "1E-131", "-1E-131", "1E+1000"],
    ids=["too-big", "too-negative", "too-small", "too-small-negative", "huge"],
)
@doc(TYPES_PAGE, "Number: values outside the range are rejected")
def test_numbers_outside_the_range_are_rejected(ddb, t_s, uid, number):
    assert code_of(ddb.put_item, TableName=t_s, Item={"pk": S(uid), "v": N(number)}) == "ValidationException"


@pytest.mark.parametrize(
    "spelled,canonical",
    [
        ("007", "7"),
        ("1.500", "1.5"),
        ("-0012.340", "-12.34"),
        ("0.00100", "0.001"),
        ("10.0", "10"),
        ("0.0", "0"),
    ],
)
@doc(TYPES_PAGE, "Number: leading and trailing zeroes are trimmed")
def test_numbers_come_back_with_zeroes_trimmed(ddb, t_s, uid, spelled, canonical):
    assert roundtrip(ddb, t_s, uid, N(spelled)) == N(canonical)


@pytest.mark.parametrize("spelled,value", [("1E2", "100"), ("1.5e1", "15"), ("25E-2", "0.25"), ("-3E0", "-3")])
@doc(TYPES_PAGE, "Number: exponent notation is accepted")
def test_exponent_notation_is_accepted(ddb, t_s, uid, spelled, value):
    assert Decimal(roundtrip(ddb, t_s, uid, N(spelled))["N"]) == Decimal(value)


@pytest.mark.parametrize("number", ["abc", "", "1.2.3", "NaN", "Infinity", "0x10", "1e", "--1"])
@doc(TYPES_PAGE, "Number: a number is a decimal numeral")
def test_malformed_numbers_are_rejected(ddb, t_s, uid, number):
    assert code_of(ddb.put_item, TableName=t_s, Item={"pk": S(uid), "v": N(number)}) == "ValidationException"


@doc(TYPES_PAGE, "Number set: members follow the number rules")
def test_number_set_members_are_canonical(ddb, t_s, uid):
    stored = roundtrip(ddb, t_s, uid, {"NS": ["1.50", "007"]})
    assert sorted_set(stored) == {"NS": ["1.5", "7"]}


@doc(TYPES_PAGE, "Number set: members follow the number rules")
def test_number_set_with_a_malformed_member_is_rejected(ddb, t_s, uid):
    item = {"pk": S(uid), "v": {"NS": ["1", "one"]}}
    assert code_of(ddb.put_item, TableName=t_s, Item=item) == "ValidationException"


@doc(TYPES_PAGE, "Binary: any bytes, sent base64-encoded")
def test_binary_keeps_every_byte_value(ddb, t_s, uid):
    data = bytes(range(256))
    assert roundtrip(ddb, t_s, uid, B(data)) == B(data)


@doc("API_AttributeValue", "NULL: an attribute of type Null, \"NULL\": true")
def test_null_false_is_rejected(ddb, t_s, uid):
    assert code_of(ddb.put_item, TableName=t_s, Item={"pk": S(uid), "v": {"NULL": False}}) == "ValidationException"


@doc(TYPES_PAGE, "Document types: nesting up to 32 levels deep")
def test_nesting_within_32_levels_is_stored(ddb, t_s, uid):
    value = S("leaf")
    for _ in range(30):
        value = {"M": {"m": value}}
    assert roundtrip(ddb, t_s, uid, value) == value


@doc(TYPES_PAGE, "Document types: nesting up to 32 levels deep")
def test_nesting_beyond_32_levels_is_rejected(ddb, t_s, uid):
    value = S("leaf")
    for _ in range(40):
        value = {"L": [value]}
    assert code_of(ddb.put_item, TableName=t_s, Item={"pk": S(uid), "v": value}) == "ValidationException"


@doc(TYPES_PAGE, "Number: number keys sort and compare by value")
def test_number_key_with_38_digits(ddb, t_sn, uid):
    sort_key = "-0.0000000000000000000000000000000000001"
    ddb.put_item(TableName=t_sn, Item={"pk": S(uid), "sk": N(sort_key)})
    item = get(ddb, t_sn, {"pk": S(uid), "sk": N("-1E-37")})
    assert Decimal(item["sk"]["N"]) == Decimal(sort_key)


@doc(TYPES_PAGE, "String: UTF-8 text")
def test_string_keeps_astral_characters(ddb, t_s, uid):
    text = "a\u0000b\U0001F600c"
    assert roundtrip(ddb, t_s, uid, S(text)) == S(text)
