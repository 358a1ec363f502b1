"""The legacy parameters: Expected, AttributeUpdates, AttributesToGet, KeyConditions, QueryFilter,
ScanFilter and ConditionalOperator."""

import pytest
from conftest import N, S, code_of, doc, get, query_all, scan_all

LEGACY_PAGE = "Legacy conditional parameters (LegacyConditionalParameters)"
CONDITIONS_PAGE = "Writing conditions with legacy parameters"
CONDITION_TYPE = "API_Condition"


@pytest.fixture
def key(ddb, t_s, uid):
    item = {"pk": S(uid), "n": N(5), "s": S("hello"), "ss": {"SS": ["a", "b"]}, "l": {"L": [S("x")]}}
    ddb.put_item(TableName=t_s, Item=item)
    return {"pk": S(uid)}


def expected_holds(ddb, table_name, key, expected, operator=None):
    """Whether Expected holds on the item, told by a put of the same item."""
    item = get(ddb, table_name, key)
    request = {"TableName": table_name, "Item": item, "Expected": expected}
    if operator:
        request["ConditionalOperator"] = operator
    try:
        ddb.put_item(**request)
    except ddb.exceptions.ConditionalCheckFailedException:
        return False
    return True


def condition(operator, *values):
    result = {"ComparisonOperator": operator}
    if values:
        result["AttributeValueList"] = list(values)
    return result


@doc("API_ExpectedAttributeValue", "Value and Exists: the simple form")
def test_expected_value_and_exists(ddb, t_s, key):
    assert expected_holds(ddb, t_s, key, {"n": {"Value": N(5)}}) is True
    assert expected_holds(ddb, t_s, key, {"n": {"Value": N(6)}}) is False
    assert expected_holds(ddb, t_s, key, {"n": {"Value": N(5), "Exists": True}}) is True
    assert expected_holds(ddb, t_s, key, {"nothing": {"Exists": False}}) is True
    assert expected_holds(ddb, t_s, key, {"n": {"Exists": False}}) is False


@doc("API_ExpectedAttributeValue", "Exists false with a Value is a ValidationException")
def test_expected_exists_false_with_value_is_rejected(ddb, t_s, key):
    request = {"TableName": t_s, "Item": key, "Expected": {"n": {"Value": N(5), "Exists": False}}}
    assert code_of(ddb.put_item, **request) == "ValidationException"


@doc("API_ExpectedAttributeValue", "Exists true without a Value is a ValidationException")
def test_expected_exists_true_without_value_is_rejected(ddb, t_s, key):
    request = {"TableName": t_s, "Item": key, "Expected": {"n": {"Exists": True}}}
    assert code_of(ddb.put_item, **request) == "ValidationException"


@pytest.mark.parametrize(
    "attribute,cond,result",
    [
        ("n", condition("EQ", N(5)), True),
        ("n", condition("EQ", S("5")), False),
        ("n", condition("NE", N(4)), True),
        ("n", condition("LT", N(6)), True),
        ("n", condition("LE", N(5)), True),
        ("n", condition("GT", N(5)), False),
        ("n", condition("GE", N(5)), True),
        ("n", condition("BETWEEN", N(1), N(5)), True),
        ("n", condition("BETWEEN", N(6), N(9)), False),
        ("n", condition("IN", N(1), N(5)), True),
        ("n", condition("IN", N(1), N(2)), False),
        ("n", condition("NOT_NULL"), True),
        ("nothing", condition("NULL"), True),
        ("n", condition("NULL"), False),
        ("s", condition("BEGINS_WITH", S("he")), True),
        ("s", condition("BEGINS_WITH", S("lo")), False),
        ("s", condition("CONTAINS", S("ell")), True),
        ("s", condition("NOT_CONTAINS", S("ell")), False),
        ("ss", condition("CONTAINS", S("a")), True),
        ("ss", condition("NOT_CONTAINS", S("z")), True),
        ("l", condition("CONTAINS", S("x")), True),
    ],
)
@doc(CONDITION_TYPE, "ComparisonOperator: EQ NE LE LT GE GT NOT_NULL NULL CONTAINS NOT_CONTAINS BEGINS_WITH IN BETWEEN")
def test_expected_comparison_operators(ddb, t_s, key, attribute, cond, result):
    assert expected_holds(ddb, t_s, key, {attribute: cond}) is result


@pytest.mark.parametrize(
    "cond",
    [
        condition("EQ"),
        condition("EQ", N(1), N(2)),
        condition("BETWEEN", N(1)),
        condition("NULL", N(1)),
        condition("BEGINS_WITH", N(1)),
        condition("LT", {"SS": ["a"]}),
        condition("SOMETIMES", N(1)),
    ],
)
@doc(CONDITION_TYPE, "AttributeValueList: the number and types of values each operator takes")
def test_expected_with_wrong_operands_is_rejected(ddb, t_s, key, cond):
    assert code_of(ddb.put_item, TableName=t_s, Item=key, Expected={"n": cond}) == "ValidationException"


@doc("API_PutItem", "ConditionalOperator: OR means any of the Expected conditions")
def test_expected_with_conditional_operator(ddb, t_s, key):
    expected = {"n": condition("EQ", N(99)), "s": condition("EQ", S("hello"))}
    assert expected_holds(ddb, t_s, key, expected) is False
    assert expected_holds(ddb, t_s, key, expected, "AND") is False
    assert expected_holds(ddb, t_s, key, expected, "OR") is True


@doc("API_DeleteItem", "Expected on DeleteItem")
def test_expected_on_delete(ddb, t_s, key):
    request = {"TableName": t_s, "Key": key, "Expected": {"n": condition("GT", N(10))}}
    assert code_of(ddb.delete_item, **request) == "ConditionalCheckFailedException"
    ddb.delete_item(TableName=t_s, Key=key, Expected={"n": condition("LT", N(10))})
    assert get(ddb, t_s, key) is None


@doc("API_AttributeValueUpdate", "Action PUT: adds or replaces the attribute")
def test_attribute_updates_put(ddb, t_s, key):
    updates = {"s": {"Action": "PUT", "Value": S("bye")}, "fresh": {"Value": N(1)}}
    ddb.update_item(TableName=t_s, Key=key, AttributeUpdates=updates)
    item = get(ddb, t_s, key)
    assert item["s"] == S("bye") and item["fresh"] == N(1)


@doc("API_AttributeValueUpdate", "Action ADD: a number is added, a set is joined")
def test_attribute_updates_add(ddb, t_s, key):
    updates = {"n": {"Action": "ADD", "Value": N(3)}, "ss": {"Action": "ADD", "Value": {"SS": ["c"]}}}
    ddb.update_item(TableName=t_s, Key=key, AttributeUpdates=updates)
    item = get(ddb, t_s, key)
    assert item["n"] == N(8)
    assert sorted(item["ss"]["SS"]) == ["a", "b", "c"]


@doc("API_AttributeValueUpdate", "Action ADD on an absent attribute")
def test_attribute_updates_add_to_absent(ddb, t_s, key):
    ddb.update_item(TableName=t_s, Key=key, AttributeUpdates={"fresh": {"Action": "ADD", "Value": N(-2)}})
    assert get(ddb, t_s, key)["fresh"] == N(-2)


@doc("API_AttributeValueUpdate", "Action DELETE: without a value removes the attribute, with a set removes members")
def test_attribute_updates_delete(ddb, t_s, key):
    updates = {"s": {"Action": "DELETE"}, "ss": {"Action": "DELETE", "Value": {"SS": ["a"]}}}
    ddb.update_item(TableName=t_s, Key=key, AttributeUpdates=updates)
    item = get(ddb, t_s, key)
    assert "s" not in item
    assert item["ss"] == {"SS": ["b"]}


@doc("API_AttributeValueUpdate", "Action DELETE with a value: the value must be a set")
def test_attribute_updates_delete_scalar_is_rejected(ddb, t_s, key):
    updates = {"n": {"Action": "DELETE", "Value": N(5)}}
    assert code_of(ddb.update_item, TableName=t_s, Key=key, AttributeUpdates=updates) == "ValidationException"


@doc("API_UpdateItem", "AttributeUpdates: key attributes cannot be updated")
def test_attribute_updates_of_the_key_is_rejected(ddb, t_s, key):
    updates = {"pk": {"Action": "PUT", "Value": S("other")}}
    assert code_of(ddb.update_item, TableName=t_s, Key=key, AttributeUpdates=updates) == "ValidationException"


@doc("API_UpdateItem", "AttributeUpdates with Expected")
def test_attribute_updates_with_expected(ddb, t_s, key):
    request = {
        "AttributeUpdates": {"n": {"Action": "PUT", "Value": N(0)}},
        "Expected": {"n": {"Value": N(4)}},
    }
    assert code_of(ddb.update_item, TableName=t_s, Key=key, **request) == "ConditionalCheckFailedException"
    assert get(ddb, t_s, key)["n"] == N(5)


@doc("API_GetItem", "AttributesToGet: the attributes to return")
def test_attributes_to_get_on_get_item(ddb, t_s, key):
    item = ddb.get_item(TableName=t_s, Key=key, AttributesToGet=["n", "nothing"], ConsistentRead=True)["Item"]
    assert item == {"n": N(5)}


@doc("API_Scan", "AttributesToGet on Scan")
def test_attributes_to_get_on_scan(ddb, table):
    name = table("S")
    ddb.put_item(TableName=name, Item={"pk": S("a"), "x": N(1), "y": N(2)})
    assert ddb.scan(TableName=name, AttributesToGet=["y"])["Items"] == [{"y": N(2)}]


@doc("API_GetItem", "AttributesToGet: names must be unique")
def test_attributes_to_get_with_duplicates_is_rejected(ddb, t_s, key):
    assert code_of(ddb.get_item, TableName=t_s, Key=key, AttributesToGet=["n", "n"]) == "ValidationException"


@pytest.fixture
def partition(ddb, t_ss, uid):
    for sort_key in ["apple", "apricot", "banana", "cherry"]:
        item = {"pk": S(uid), "sk": S(sort_key), "len": N(len(sort_key)), "initial": S(sort_key[0])}
        ddb.put_item(TableName=t_ss, Item=item)
    return uid


def legacy_query(ddb, table_name, uid, sort_condition=None, **extra):
    conditions = {"pk": condition("EQ", S(uid))}
    if sort_condition:
        conditions["sk"] = sort_condition
    items = query_all(ddb, TableName=table_name, KeyConditions=conditions, ConsistentRead=True, **extra)
    return [item["sk"]["S"] for item in items]


@pytest.mark.parametrize(
    "sort_condition,expected",
    [
        (None, ["apple", "apricot", "banana", "cherry"]),
        (condition("BEGINS_WITH", S("ap")), ["apple", "apricot"]),
        (condition("BETWEEN", S("b"), S("c")), ["banana"]),
        (condition("GT", S("banana")), ["cherry"]),
        (condition("LE", S("apricot")), ["apple", "apricot"]),
        (condition("EQ", S("cherry")), ["cherry"]),
    ],
)
@doc("API_Query", "KeyConditions: EQ on the partition key; EQ LE LT GE GT BEGINS_WITH BETWEEN on the sort key")
def test_key_conditions(ddb, t_ss, partition, sort_condition, expected):
    assert legacy_query(ddb, t_ss, partition, sort_condition) == expected


@pytest.mark.parametrize("operator", ["NE", "CONTAINS", "NULL", "IN"])
@doc("API_Query", "KeyConditions: only EQ LE LT GE GT BEGINS_WITH BETWEEN")
def test_key_conditions_with_other_operators_are_rejected(ddb, t_ss, partition, operator):
    values = [] if operator == "NULL" else [S("a")]
    sort_condition = condition(operator, *values)
    conditions = {"pk": condition("EQ", S(partition)), "sk": sort_condition}
    assert code_of(ddb.query, TableName=t_ss, KeyConditions=conditions) == "ValidationException"


@doc("API_Query", "QueryFilter: applied after the key conditions")
def test_query_filter(ddb, t_ss, partition):
    got = legacy_query(ddb, t_ss, partition, QueryFilter={"len": condition("GT", N(5))})
    assert got == ["apricot", "banana", "cherry"]


@doc("API_Query", "QueryFilter: key attributes are not allowed")
def test_query_filter_on_a_key_attribute_is_rejected(ddb, t_ss, partition):
    request = {
        "KeyConditions": {"pk": condition("EQ", S(partition))},
        "QueryFilter": {"sk": condition("EQ", S("apple"))},
    }
    assert code_of(ddb.query, TableName=t_ss, **request) == "ValidationException"


@doc("API_Query", "ConditionalOperator: OR across QueryFilter conditions")
def test_query_filter_with_or(ddb, t_ss, partition):
    query_filter = {"len": condition("EQ", N(5)), "initial": condition("EQ", S("c"))}
    got = legacy_query(ddb, t_ss, partition, QueryFilter={"len": condition("EQ", N(5))})
    assert got == ["apple"]
    got = legacy_query(ddb, t_ss, partition, QueryFilter=dict(query_filter), ConditionalOperator="OR")
    assert got == ["apple", "cherry"]


@doc("API_Scan", "ScanFilter and ConditionalOperator")
def test_scan_filter(ddb, table):
    name = table("S")
    for index in range(6):
        ddb.put_item(TableName=name, Item={"pk": S(f"k{index}"), "n": N(index)})
    items = scan_all(ddb, TableName=name, ScanFilter={"n": condition("BETWEEN", N(2), N(4))})
    assert sorted(item["n"]["N"] for item in items) == ["2", "3", "4"]
    scan_filter = {"n": condition("LT", N(1)), "pk": condition("EQ", S("k5"))}
    items = scan_all(ddb, TableName=name, ScanFilter=scan_filter, ConditionalOperator="OR")
    assert sorted(item["n"]["N"] for item in items) == ["0", "5"]
    items = scan_all(ddb, TableName=name, ScanFilter=scan_filter, ConditionalOperator="AND")
    assert items == []
