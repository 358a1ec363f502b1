"""KeyConditionExpression of Query: the sort key comparisons and what a key condition may not be."""

import pytest
from conftest import B, N, S, code_of, doc, query_all

QUERY_PAGE = "API_Query"
KEY_SECTION = "KeyConditionExpression"
SORT_KEYS = ["-5", "2", "10", "100", "2.5"]
STRING_SORT_KEYS = ["a", "ab", "abc", "b", "B", "ä", "a b"]


@pytest.fixture
def numbered(ddb, t_sn, uid):
    for sort_key in SORT_KEYS:
        ddb.put_item(TableName=t_sn, Item={"pk": S(uid), "sk": N(sort_key)})
    # Another partition that no query below may return.
    ddb.put_item(TableName=t_sn, Item={"pk": S(uid + "-other"), "sk": N(2)})
    return uid


@pytest.fixture
def lettered(ddb, t_ss, uid):
    for sort_key in STRING_SORT_KEYS:
        ddb.put_item(TableName=t_ss, Item={"pk": S(uid), "sk": S(sort_key)})
    return uid


def sort_keys(ddb, table_name, uid, condition="", values=None, kind="N", **extra):
    expression = "pk = :p" + (f" AND {condition}" if condition else "")
    request = dict(
        TableName=table_name,
        KeyConditionExpression=expression,
        ExpressionAttributeValues=dict(values or {}, **{":p": S(uid)}),
        ConsistentRead=True,
        **extra,
    )
    return [item["sk"][kind] for item in query_all(ddb, **request)]


def key_condition_error(ddb, table_name, expression, values, names=None):
    request = {"TableName": table_name, "KeyConditionExpression": expression, "ExpressionAttributeValues": values}
    if names:
        request["ExpressionAttributeNames"] = names
    return code_of(ddb.query, **request)


@doc(QUERY_PAGE, "KeyConditionExpression: partition key equality returns the partition in sort key order")
def test_partition_in_numeric_sort_order(ddb, t_sn, numbered):
    assert sort_keys(ddb, t_sn, numbered) == ["-5", "2", "2.5", "10", "100"]


@doc("Query operations in DynamoDB", "Sort key: strings order by UTF-8 bytes")
def test_partition_in_byte_order_of_strings(ddb, t_ss, lettered):
    assert sort_keys(ddb, t_ss, lettered, kind="S") == ["B", "a", "a b", "ab", "abc", "b", "ä"]


@doc("Query operations in DynamoDB", "Sort key: binary values order as unsigned bytes")
def test_partition_in_byte_order_of_binary(ddb, t_sb, uid):
    for value in [b"\xff", b"\x00", b"\x7f", b"\x80", b"\x00\x00"]:
        ddb.put_item(TableName=t_sb, Item={"pk": S(uid), "sk": B(value)})
    got = sort_keys(ddb, t_sb, uid, kind="B")
    assert got == [b"\x00", b"\x00\x00", b"\x7f", b"\x80", b"\xff"]


@pytest.mark.parametrize(
    "condition,values,expected",
    [
        ("sk = :v", {":v": N("2.50")}, ["2.5"]),
        ("sk < :v", {":v": N(10)}, ["-5", "2", "2.5"]),
        ("sk <= :v", {":v": N(10)}, ["-5", "2", "2.5", "10"]),
        ("sk > :v", {":v": N("2.5")}, ["10", "100"]),
        ("sk >= :v", {":v": N("2.5")}, ["2.5", "10", "100"]),
        ("sk BETWEEN :a AND :b", {":a": N(2), ":b": N(10)}, ["2", "2.5", "10"]),
        ("sk BETWEEN :a AND :b", {":a": N(3), ":b": N(3)}, []),
        ("sk = :v", {":v": N(3)}, []),
    ],
)
@doc(QUERY_PAGE, "KeyConditionExpression: sort key comparisons")
def test_sort_key_comparisons(ddb, t_sn, numbered, condition, values, expected):
    assert sort_keys(ddb, t_sn, numbered, condition, values) == expected


@pytest.mark.parametrize(
    "prefix,expected",
    [("a", ["a", "a b", "ab", "abc"]), ("ab", ["ab", "abc"]), ("abcd", []), ("A", []), ("ä", ["ä"])],
)
@doc(QUERY_PAGE, "KeyConditionExpression: begins_with (a, substr)")
def test_begins_with_on_the_sort_key(ddb, t_ss, lettered, prefix, expected):
    got = sort_keys(ddb, t_ss, lettered, "begins_with(sk, :v)", {":v": S(prefix)}, kind="S")
    assert got == expected


@doc(QUERY_PAGE, "KeyConditionExpression: begins_with on a binary sort key")
def test_begins_with_on_a_binary_sort_key(ddb, t_sb, uid):
    for value in [b"\x01\x02", b"\x01\x03", b"\x02"]:
        ddb.put_item(TableName=t_sb, Item={"pk": S(uid), "sk": B(value)})
    got = sort_keys(ddb, t_sb, uid, "begins_with(sk, :v)", {":v": B(b"\x01")}, kind="B")
    assert got == [b"\x01\x02", b"\x01\x03"]


@doc(QUERY_PAGE, "KeyConditionExpression: the sort key condition may come first")
def test_sort_key_condition_first(ddb, t_sn, numbered):
    values = {":p": S(numbered), ":v": N(10)}
    request = {"KeyConditionExpression": "sk >= :v AND pk = :p", "ExpressionAttributeValues": values}
    items = query_all(ddb, TableName=t_sn, ConsistentRead=True, **request)
    assert [item["sk"]["N"] for item in items] == ["10", "100"]


@doc("Expression attribute names (aliases) in DynamoDB", "Names in key condition expressions")
def test_key_condition_with_name_placeholders(ddb, t_sn, numbered):
    request = {
        "KeyConditionExpression": "#h = :p AND #r < :v",
        "ExpressionAttributeNames": {"#h": "pk", "#r": "sk"},
        "ExpressionAttributeValues": {":p": S(numbered), ":v": N(0)},
    }
    items = query_all(ddb, TableName=t_sn, ConsistentRead=True, **request)
    assert [item["sk"]["N"] for item in items] == ["-5"]


@doc(QUERY_PAGE, "KeyConditionExpression: the partition key name and value as an equality")
def test_key_condition_without_partition_key_is_rejected(ddb, t_sn):
    assert key_condition_error(ddb, t_sn, "sk = :v", {":v": N(1)}) == "ValidationException"


@pytest.mark.parametrize("operator", ["<", "<=", ">", ">=", "<>"])
@doc(QUERY_PAGE, "KeyConditionExpression: the partition key condition is an equality test")
def test_partition_key_inequality_is_rejected(ddb, t_sn, operator):
    assert key_condition_error(ddb, t_sn, f"pk {operator} :v", {":v": S("a")}) == "ValidationException"


@doc(QUERY_PAGE, "KeyConditionExpression: begins_with applies to the sort key only")
def test_begins_with_on_the_partition_key_is_rejected(ddb, t_ss):
    assert key_condition_error(ddb, t_ss, "begins_with(pk, :v)", {":v": S("a")}) == "ValidationException"


@doc(QUERY_PAGE, "KeyConditionExpression: key attributes only")
def test_condition_on_a_non_key_attribute_is_rejected(ddb, t_sn):
    values = {":p": S("a"), ":v": N(1)}
    assert key_condition_error(ddb, t_sn, "pk = :p AND nonkey = :v", values) == "ValidationException"


@doc(QUERY_PAGE, "KeyConditionExpression: conditions are joined by AND only")
def test_or_in_key_condition_is_rejected(ddb, t_sn):
    values = {":p": S("a"), ":v": N(1)}
    assert key_condition_error(ddb, t_sn, "pk = :p OR sk = :v", values) == "ValidationException"


@doc(QUERY_PAGE, "KeyConditionExpression: conditions are joined by AND only")
def test_not_in_key_condition_is_rejected(ddb, t_sn):
    values = {":p": S("a"), ":v": N(1)}
    assert key_condition_error(ddb, t_sn, "pk = :p AND NOT sk = :v", values) == "ValidationException"


@doc(QUERY_PAGE, "KeyConditionExpression: at most one condition on the sort key")
def test_two_sort_key_conditions_are_rejected(ddb, t_sn):
    values = {":p": S("a"), ":v": N(1), ":w": N(5)}
    assert key_condition_error(ddb, t_sn, "pk = :p AND sk > :v AND sk < :w", values) == "ValidationException"


@pytest.mark.parametrize(
    "condition",
    ["sk <> :v", "sk IN (:v)", "attribute_exists(sk)", "contains(sk, :v)", "size(sk) = :v"],
)
@doc(QUERY_PAGE, "KeyConditionExpression: = < <= > >= BETWEEN begins_with on the sort key")
def test_unsupported_sort_key_operators_are_rejected(ddb, t_ss, condition):
    values = {":p": S("a")}
    if ":v" in condition:
        values[":v"] = S("x") if "size" not in condition else N(1)
    assert key_condition_error(ddb, t_ss, f"pk = :p AND {condition}", values) == "ValidationException"


@doc(QUERY_PAGE, "KeyConditionExpression: begins_with needs a string or binary sort key")
def test_begins_with_on_a_number_sort_key_is_rejected(ddb, t_sn):
    values = {":p": S("a"), ":v": N(1)}
    assert key_condition_error(ddb, t_sn, "pk = :p AND begins_with(sk, :v)", values) == "ValidationException"


@doc(QUERY_PAGE, "KeyConditionExpression: values must have the key attribute's type")
def test_sort_key_value_of_wrong_type_is_rejected(ddb, t_sn):
    values = {":p": S("a"), ":v": S("1")}
    assert key_condition_error(ddb, t_sn, "pk = :p AND sk = :v", values) == "ValidationException"


@doc(QUERY_PAGE, "KeyConditionExpression: values must have the key attribute's type")
def test_partition_key_value_of_wrong_type_is_rejected(ddb, t_sn):
    assert key_condition_error(ddb, t_sn, "pk = :p", {":p": N(1)}) == "ValidationException"


@doc(QUERY_PAGE, "KeyConditionExpression: the partition key must be tested")
def test_two_partition_key_conditions_are_rejected(ddb, t_sn):
    values = {":p": S("a"), ":q": S("b")}
    assert key_condition_error(ddb, t_sn, "pk = :p AND pk = :q", values) == "ValidationException"


@doc(QUERY_PAGE, "KeyConditionExpression: required unless the legacy KeyConditions is given")
def test_query_without_key_condition_is_rejected(ddb, t_sn):
    assert code_of(ddb.query, TableName=t_sn) == "ValidationException"
