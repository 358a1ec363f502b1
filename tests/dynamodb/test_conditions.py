"""ConditionExpression on PutItem, UpdateItem and DeleteItem: every comparator and function."""

import pytest
from conftest import B, N, S, code_of, doc, error_of, get

OPS_PAGE = "Condition and filter expressions, operators, and functions in DynamoDB"
CONDITION_PAGE = "Condition expression examples (Expressions.ConditionExpressions)"

BASE_ITEM = {
    "s": S("apple"),
    "n": N(10),
    "b": B(b"\x01\x02"),
    "t": {"BOOL": True},
    "z": {"NULL": True},
    "ss": {"SS": ["red", "green"]},
    "ns": {"NS": ["1", "2", "3"]},
    "bs": {"BS": [b"\x01"]},
    "l": {"L": [S("first"), N(2), {"M": {"x": S("deep")}}]},
    "m": {"M": {"k": S("v"), "nested": {"M": {"n": N(5)}}}},
    "blank": S(""),
}


@pytest.fixture
def item_key(ddb, t_s, uid):
    item = dict(BASE_ITEM, pk=S(uid))
    ddb.put_item(TableName=t_s, Item=item)
    return {"pk": S(uid)}


def holds(ddb, table_name, key, condition, values=None, names=None):
    """Whether the condition holds on the item, told by an update that changes nothing."""
    request = {
        "TableName": table_name,
        "Key": key,
        "ConditionExpression": condition,
        # Removing an attribute the item never has leaves it as it is.
        "UpdateExpression": "REMOVE #guard",
        "ExpressionAttributeNames": dict(names or {}, **{"#guard": "never_present"}),
    }
    if values:
        request["ExpressionAttributeValues"] = values
    try:
        ddb.update_item(**request)
    except ddb.exceptions.ConditionalCheckFailedException:
        return False
    return True


@pytest.mark.parametrize(
    "condition,values,expected",
    [
        ("n = :v", {":v": N(10)}, True),
        ("n = :v", {":v": N("10.000")}, True),
        ("n = :v", {":v": N(11)}, False),
        ("n <> :v", {":v": N(11)}, True),
        ("n <> :v", {":v": N(10)}, False),
        ("n < :v", {":v": N(11)}, True),
        ("n < :v", {":v": N(10)}, False),
        ("n <= :v", {":v": N(10)}, True),
        ("n > :v", {":v": N("9.99")}, True),
        ("n > :v", {":v": N(100)}, False),
        ("n >= :v", {":v": N(10)}, True),
        ("n > :v", {":v": N(-1000)}, True),
        ("s = :v", {":v": S("apple")}, True),
        ("s < :v", {":v": S("apricot")}, True),
        ("s > :v", {":v": S("Apple")}, True),
        ("s < :v", {":v": S("apple ")}, True),
        ("b < :v", {":v": B(b"\x01\x03")}, True),
        ("b > :v", {":v": B(b"\x01")}, True),
        ("t = :v", {":v": {"BOOL": True}}, True),
        ("t = :v", {":v": {"BOOL": False}}, False),
        ("ss = :v", {":v": {"SS": ["green", "red"]}}, True),
        ("ns = :v", {":v": {"NS": ["3", "2", "1"]}}, True),
        ("l = :v", {":v": {"L": [S("first"), N(2), {"M": {"x": S("deep")}}]}}, True),
        ("l = :v", {":v": {"L": [N(2), S("first"), {"M": {"x": S("deep")}}]}}, False),
        ("m = :v", {":v": {"M": {"nested": {"M": {"n": N(5)}}, "k": S("v")}}}, True),
        ("z = :v", {":v": {"NULL": True}}, True),
        ("blank = :v", {":v": S("")}, True),
    ],
)
@doc(OPS_PAGE, "Comparison operators: = <> < <= > >=")
def test_comparators(ddb, t_s, item_key, condition, values, expected):
    assert holds(ddb, t_s, item_key, condition, values) is expected


@pytest.mark.parametrize(
    "condition,values",
    [
        ("n = :v", {":v": S("10")}),
        ("n < :v", {":v": S("99")}),
        ("n > :v", {":v": S("0")}),
        ("s >= :v", {":v": N(1)}),
        ("s <= :v", {":v": N(1)}),
        ("b = :v", {":v": S("\x01\x02")}),
    ],
)
@doc(OPS_PAGE, "Comparison operators: values of different types do not match")
def test_comparisons_across_types_are_false(ddb, t_s, item_key, condition, values):
    assert holds(ddb, t_s, item_key, condition, values) is False


@doc(OPS_PAGE, "Comparison operators: values of different types do not match")
def test_not_equal_across_types_is_true(ddb, t_s, item_key):
    assert holds(ddb, t_s, item_key, "n <> :v", {":v": S("10")}) is True


@pytest.mark.parametrize(
    "condition,expected",
    [
        ("n BETWEEN :lo AND :hi", True),
        ("n BETWEEN :hi AND :hi2", False),
        ("n BETWEEN :ten AND :ten", True),
    ],
)
@doc(OPS_PAGE, "BETWEEN: greater than or equal to the first, less than or equal to the second")
def test_between_is_inclusive(ddb, t_s, item_key, condition, expected):
    values = {":lo": N(1), ":hi": N(20), ":hi2": N(30), ":ten": N(10)}
    used = {k: v for k, v in values.items() if k in condition}
    assert holds(ddb, t_s, item_key, condition, used) is expected


@doc(OPS_PAGE, "BETWEEN: strings compare by their bytes")
def test_between_on_strings(ddb, t_s, item_key):
    assert holds(ddb, t_s, item_key, "s BETWEEN :a AND :b", {":a": S("a"), ":b": S("b")}) is True
    assert holds(ddb, t_s, item_key, "s BETWEEN :a AND :b", {":a": S("b"), ":b": S("c")}) is False


@pytest.mark.parametrize(
    "condition,expected",
    [("n IN (:a, :b)", True), ("n IN (:b, :c)", False), ("n IN (:a)", True), ("s IN (:b, :s)", True)],
)
@doc(OPS_PAGE, "IN: true if equal to any value in the list")
def test_in(ddb, t_s, item_key, condition, expected):
    values = {":a": N(10), ":b": N(3), ":c": S("10"), ":s": S("apple")}
    used = {k: v for k, v in values.items() if k in condition}
    assert holds(ddb, t_s, item_key, condition, used) is expected


@doc(OPS_PAGE, "IN: up to 100 values")
def test_in_with_100_values_is_accepted(ddb, t_s, item_key):
    values = {f":v{i}": N(i) for i in range(100)}
    condition = f"n IN ({', '.join(values)})"
    assert holds(ddb, t_s, item_key, condition, values) is True


@doc(OPS_PAGE, "IN: up to 100 values")
def test_in_with_101_values_is_rejected(ddb, t_s, item_key):
    values = {f":v{i}": N(i) for i in range(101)}
    condition = f"n IN ({', '.join(values)})"
    request = {"ConditionExpression": condition, "ExpressionAttributeValues": values}
    assert code_of(ddb.delete_item, TableName=t_s, Key=item_key, **request) == "ValidationException"


@pytest.mark.parametrize(
    "condition,expected",
    [
        ("attribute_exists(s)", True),
        ("attribute_exists(absent)", False),
        ("attribute_not_exists(absent)", True),
        ("attribute_not_exists(s)", False),
        ("attribute_exists(m.k)", True),
        ("attribute_exists(m.nope)", False),
        ("attribute_exists(m.nested.n)", True),
        ("attribute_exists(l[0])", True),
        ("attribute_exists(l[2].x)", True),
        ("attribute_exists(l[3])", False),
        ("attribute_not_exists(l[7])", True),
        ("attribute_exists(z)", True),
        ("attribute_exists(blank)", True),
    ],
)
@doc(OPS_PAGE, "Functions: attribute_exists and attribute_not_exists")
def test_attribute_exists_and_not_exists(ddb, t_s, item_key, condition, expected):
    assert holds(ddb, t_s, item_key, condition) is expected


@pytest.mark.parametrize(
    "path,type_name",
    [
        ("s", "S"),
        ("n", "N"),
        ("b", "B"),
        ("t", "BOOL"),
        ("z", "NULL"),
        ("ss", "SS"),
        ("ns", "NS"),
        ("bs", "BS"),
        ("l", "L"),
        ("m", "M"),
        ("m.nested", "M"),
        ("l[1]", "N"),
    ],
)
@doc(OPS_PAGE, "Functions: attribute_type(path, type)")
def test_attribute_type_matches(ddb, t_s, item_key, path, type_name):
    assert holds(ddb, t_s, item_key, f"attribute_type({path}, :t)", {":t": S(type_name)}) is True


@pytest.mark.parametrize("path,type_name", [("s", "N"), ("ss", "S"), ("l", "M"), ("absent", "S")])
@doc(OPS_PAGE, "Functions: attribute_type(path, type)")
def test_attribute_type_does_not_match(ddb, t_s, item_key, path, type_name):
    assert holds(ddb, t_s, item_key, f"attribute_type({path}, :t)", {":t": S(type_name)}) is False


@doc(OPS_PAGE, "Functions: attribute_type, type is one of S SS N NS B BS BOOL NULL L M")
def test_attribute_type_with_unknown_type_is_rejected(ddb, t_s, item_key):
    request = {"ConditionExpression": "attribute_type(s, :t)", "ExpressionAttributeValues": {":t": S("STRING")}}
    assert code_of(ddb.delete_item, TableName=t_s, Key=item_key, **request) == "ValidationException"


@pytest.mark.parametrize(
    "condition,values,expected",
    [
        ("begins_with(s, :v)", {":v": S("app")}, True),
        ("begins_with(s, :v)", {":v": S("apple")}, True),
        ("begins_with(s, :v)", {":v": S("pple")}, False),
        ("begins_with(s, :v)", {":v": S("A")}, False),
        ("begins_with(b, :v)", {":v": B(b"\x01")}, True),
        ("begins_with(b, :v)", {":v": B(b"\x02")}, False),
        ("begins_with(m.k, :v)", {":v": S("v")}, True),
        ("begins_with(absent, :v)", {":v": S("a")}, False),
    ],
)
@doc(OPS_PAGE, "Functions: begins_with(path, substr)")
def test_begins_with(ddb, t_s, item_key, condition, values, expected):
    assert holds(ddb, t_s, item_key, condition, values) is expected


@pytest.mark.parametrize(
    "condition,values,expected",
    [
        ("contains(s, :v)", {":v": S("ppl")}, True),
        ("contains(s, :v)", {":v": S("xyz")}, False),
        ("contains(ss, :v)", {":v": S("red")}, True),
        ("contains(ss, :v)", {":v": S("re")}, False),
        ("contains(ns, :v)", {":v": N(2)}, True),
        ("contains(ns, :v)", {":v": N(4)}, False),
        ("contains(bs, :v)", {":v": B(b"\x01")}, True),
        ("contains(l, :v)", {":v": S("first")}, True),
        ("contains(l, :v)", {":v": N(2)}, True),
        ("contains(l, :v)", {":v": S("fir")}, False),
        ("contains(b, :v)", {":v": B(b"\x02")}, True),
        ("contains(absent, :v)", {":v": S("a")}, False),
        ("contains(ss, :v)", {":v": N(1)}, False),
    ],
)
@doc(OPS_PAGE, "Functions: contains(path, operand)")
def test_contains(ddb, t_s, item_key, condition, values, expected):
    assert holds(ddb, t_s, item_key, condition, values) is expected


@pytest.mark.parametrize(
    "path,size",
    [("s", 5), ("b", 2), ("ss", 2), ("ns", 3), ("bs", 1), ("l", 3), ("m", 2), ("m.nested", 1), ("blank", 0)],
)
@doc(OPS_PAGE, "Functions: size(path) of a string, binary, set, list or map")
def test_size(ddb, t_s, item_key, path, size):
    assert holds(ddb, t_s, item_key, f"size({path}) = :n", {":n": N(size)}) is True
    assert holds(ddb, t_s, item_key, f"size({path}) > :n", {":n": N(size)}) is False


@doc(OPS_PAGE, "Functions: size(path) compared with another operator")
def test_size_in_between(ddb, t_s, item_key):
    assert holds(ddb, t_s, item_key, "size(s) BETWEEN :a AND :b", {":a": N(4), ":b": N(6)}) is True


@doc(OPS_PAGE, "Functions: size of an absent attribute does not match")
def test_size_of_missing_attribute_is_false(ddb, t_s, item_key):
    assert holds(ddb, t_s, item_key, "size(absent) >= :z", {":z": N(0)}) is False


@pytest.mark.parametrize(
    "condition,expected",
    [
        ("n = :ten AND s = :apple", True),
        ("n = :ten AND s = :pear", False),
        ("n = :one OR s = :apple", True),
        ("n = :one OR s = :pear", False),
        ("NOT n = :one", True),
        ("NOT n = :ten", False),
        ("NOT (n = :ten AND s = :pear)", True),
        ("n = :one OR s = :apple AND n = :ten", True),
        ("n = :ten OR s = :pear AND n = :one", True),
        ("(n = :ten OR s = :pear) AND n = :one", False),
        ("NOT n = :one AND s = :pear", False),
        ("NOT NOT n = :ten", True),
    ],
)
@doc(OPS_PAGE, "Logical operators and precedence: NOT, then AND, then OR; parentheses")
def test_logical_operators_and_precedence(ddb, t_s, item_key, condition, expected):
    values = {":ten": N(10), ":one": N(1), ":apple": S("apple"), ":pear": S("pear")}
    used = {k: v for k, v in values.items() if k in condition}
    assert holds(ddb, t_s, item_key, condition, used) is expected


@doc(OPS_PAGE, "Keywords are case-insensitive")
def test_keywords_are_case_insensitive(ddb, t_s, item_key):
    condition = "n between :a and :b AnD NOT s in (:c) oR n = :a"
    values = {":a": N(1), ":b": N(20), ":c": S("pear")}
    assert holds(ddb, t_s, item_key, condition, values) is True


@doc(OPS_PAGE, "Comparison operators: comparing two attributes of the item")
def test_comparing_two_attributes(ddb, t_s, item_key):
    assert holds(ddb, t_s, item_key, "n > m.nested.n") is True
    assert holds(ddb, t_s, item_key, "l[1] < n") is True
    assert holds(ddb, t_s, item_key, "s = m.k") is False


@doc("Specifying item attributes when using expressions", "Document paths: nested attributes and list elements")
def test_document_paths_in_comparisons(ddb, t_s, item_key):
    assert holds(ddb, t_s, item_key, "m.nested.n = :v", {":v": N(5)}) is True
    assert holds(ddb, t_s, item_key, "l[2].x = :v", {":v": S("deep")}) is True
    assert holds(ddb, t_s, item_key, "l[0] = :v", {":v": S("first")}) is True


@doc("Expression attribute names (aliases) in DynamoDB", "ExpressionAttributeNames")
def test_names_with_special_characters_through_placeholders(ddb, t_s, uid):
    ddb.put_item(TableName=t_s, Item={"pk": S(uid), "a.b": N(1), "c-d": N(2)})
    key = {"pk": S(uid)}
    names = {"#dot": "a.b", "#dash": "c-d"}
    assert holds(ddb, t_s, key, "#dot = :one AND #dash = :two", {":one": N(1), ":two": N(2)}, names) is True
    assert holds(ddb, t_s, key, "attribute_exists(#dot)", None, {"#dot": "a.b"}) is True
    assert holds(ddb, t_s, key, "attribute_exists(a.b)") is False


@doc(CONDITION_PAGE, "Preventing overwrites of an existing item")
def test_put_if_absent(ddb, t_s, uid):
    item = {"pk": S(uid), "v": N(1)}
    ddb.put_item(TableName=t_s, Item=item, ConditionExpression="attribute_not_exists(pk)")
    code, message, status = error_of(
        ddb.put_item,
        TableName=t_s,
        Item={"pk": S(uid), "v": N(2)},
        ConditionExpression="attribute_not_exists(pk)",
    )
    assert (code, status) == ("ConditionalCheckFailedException", 400)
    assert message == "The conditional request failed"
    assert get(ddb, t_s, {"pk": S(uid)}) == item


@doc(CONDITION_PAGE, "Conditional deletes")
def test_conditional_delete(ddb, t_s, uid):
    ddb.put_item(TableName=t_s, Item={"pk": S(uid), "v": N(1)})
    key = {"pk": S(uid)}
    request = {"ConditionExpression": "v = :v"}
    assert (
        code_of(ddb.delete_item, TableName=t_s, Key=key, ExpressionAttributeValues={":v": N(2)}, **request)
        == "ConditionalCheckFailedException"
    )
    assert get(ddb, t_s, key) is not None
    ddb.delete_item(TableName=t_s, Key=key, ExpressionAttributeValues={":v": N(1)}, **request)
    assert get(ddb, t_s, key) is None


@doc(CONDITION_PAGE, "Conditional updates")
def test_conditional_update(ddb, t_s, uid):
    ddb.put_item(TableName=t_s, Item={"pk": S(uid), "price": N(10)})
    key = {"pk": S(uid)}
    request = {
        "UpdateExpression": "SET price = price - :d",
        "ConditionExpression": "price > :limit",
        "ExpressionAttributeValues": {":d": N(5), ":limit": N(7)},
    }
    ddb.update_item(TableName=t_s, Key=key, **request)
    assert get(ddb, t_s, key)["price"] == N(5)
    assert code_of(ddb.update_item, TableName=t_s, Key=key, **request) == "ConditionalCheckFailedException"
    assert get(ddb, t_s, key)["price"] == N(5)


@doc(CONDITION_PAGE, "A condition on an absent item sees no attributes")
def test_condition_on_missing_item(ddb, t_s, uid):
    key = {"pk": S(uid)}
    assert code_of(ddb.delete_item, TableName=t_s, Key=key, ConditionExpression="attribute_exists(pk)") == (
        "ConditionalCheckFailedException"
    )
    request = {"ConditionExpression": "v = :v", "ExpressionAttributeValues": {":v": N(1)}}
    assert code_of(ddb.put_item, TableName=t_s, Item={"pk": S(uid)}, **request) == "ConditionalCheckFailedException"
    assert get(ddb, t_s, key) is None


@doc(CONDITION_PAGE, "A failed condition leaves the item as it was")
def test_failed_conditional_update_creates_nothing(ddb, t_s, uid):
    key = {"pk": S(uid)}
    request = {"UpdateExpression": "SET a = :a", "ConditionExpression": "attribute_exists(pk)"}
    request["ExpressionAttributeValues"] = {":a": N(1)}
    assert code_of(ddb.update_item, TableName=t_s, Key=key, **request) == "ConditionalCheckFailedException"
    assert get(ddb, t_s, key) is None


@pytest.mark.parametrize(
    "condition",
    ["n = ", "n == :v", "n = :v AND", "(n = :v", "n = :v)", "n IN ()", "unknown_fn(n)", "n BETWEEN :v", ""],
)
@doc(OPS_PAGE, "Syntax for condition and filter expressions")
def test_malformed_conditions_are_rejected(ddb, t_s, item_key, condition):
    request = {"ConditionExpression": condition}
    if ":v" in condition:
        request["ExpressionAttributeValues"] = {":v": N(1)}
    assert code_of(ddb.delete_item, TableName=t_s, Key=item_key, **request) == "ValidationException"


@doc(OPS_PAGE, "Functions: attribute_exists takes a path, not a value")
def test_attribute_exists_of_a_value_is_rejected(ddb, t_s, item_key):
    request = {"ConditionExpression": "attribute_exists(:v)", "ExpressionAttributeValues": {":v": S("s")}}
    assert code_of(ddb.delete_item, TableName=t_s, Key=item_key, **request) == "ValidationException"


@doc(OPS_PAGE, "A function that returns a value is not a condition on its own")
def test_size_alone_is_not_a_condition(ddb, t_s, item_key):
    assert code_of(ddb.delete_item, TableName=t_s, Key=item_key, ConditionExpression="size(s)") == "ValidationException"


@doc(OPS_PAGE, "A comparison of an item's attribute with a value that is absent from the request")
def test_undefined_value_placeholder_is_rejected(ddb, t_s, item_key):
    request = {"ConditionExpression": "n = :nope", "ExpressionAttributeValues": {":other": N(1)}}
    assert code_of(ddb.delete_item, TableName=t_s, Key=item_key, **request) == "ValidationException"


@doc("Expression attribute names (aliases) in DynamoDB", "Every placeholder used must be defined")
def test_undefined_name_placeholder_is_rejected(ddb, t_s, item_key):
    request = {"ConditionExpression": "attribute_exists(#nope)", "ExpressionAttributeNames": {"#other": "n"}}
    assert code_of(ddb.delete_item, TableName=t_s, Key=item_key, **request) == "ValidationException"
