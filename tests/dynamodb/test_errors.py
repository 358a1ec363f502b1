"""Error codes and HTTP statuses: sizes, key lengths, reserved words, unused placeholders, and
legacy parameters mixed with expressions."""

import pytest
from conftest import B, N, S, code_of, doc, error_of

LIMITS_PAGE = "Constraints in Amazon DynamoDB"
ITEM_BYTES_MAX = 400 * 1024
HASH_KEY_BYTES_MAX = 2048
RANGE_KEY_BYTES_MAX = 1024
RESERVED_PAGE = "Reserved words in DynamoDB"
NAMES_PAGE = "Expression attribute names (aliases) in DynamoDB"
VALUES_PAGE = "Using expression attribute values in DynamoDB"
LEGACY_PAGE = "Legacy conditional parameters"


def item_of_size(uid, total_bytes):
    """An item of exactly total_bytes: names and values counted in UTF-8 bytes."""
    fixed = len("pk") + len(uid) + len("v")
    return {"pk": S(uid), "v": S("x" * (total_bytes - fixed))}


@doc(LIMITS_PAGE, "Items: item size up to 400 KB, names and values in UTF-8 bytes")
def test_item_of_400_kb_is_stored(ddb, t_s, uid):
    ddb.put_item(TableName=t_s, Item=item_of_size(uid, ITEM_BYTES_MAX))


@doc(LIMITS_PAGE, "Items: item size up to 400 KB")
def test_item_over_400_kb_is_rejected(ddb, t_s, uid):
    code, _, status = error_of(ddb.put_item, TableName=t_s, Item=item_of_size(uid, ITEM_BYTES_MAX + 1))
    assert (code, status) == ("ValidationException", 400)


@doc(LIMITS_PAGE, "Items: an update may not grow an item past 400 KB")
def test_update_that_grows_item_over_400_kb_is_rejected(ddb, t_s, uid):
    ddb.put_item(TableName=t_s, Item=item_of_size(uid, ITEM_BYTES_MAX - 10))
    request = {"UpdateExpression": "SET w = :w", "ExpressionAttributeValues": {":w": S("y" * 20)}}
    assert code_of(ddb.update_item, TableName=t_s, Key={"pk": S(uid)}, **request) == "ValidationException"


@doc(LIMITS_PAGE, "Partition key length: 1 to 2048 bytes")
def test_hash_key_of_2048_bytes_is_stored(ddb, t_s):
    ddb.put_item(TableName=t_s, Item={"pk": S("k" * HASH_KEY_BYTES_MAX)})


@doc(LIMITS_PAGE, "Partition key length: 1 to 2048 bytes")
def test_hash_key_over_2048_bytes_is_rejected(ddb, t_s):
    code = code_of(ddb.put_item, TableName=t_s, Item={"pk": S("k" * (HASH_KEY_BYTES_MAX + 1))})
    assert code == "ValidationException"


@doc(LIMITS_PAGE, "Partition key length: counted in UTF-8 bytes")
def test_hash_key_length_counts_bytes_not_characters(ddb, t_s):
    code = code_of(ddb.put_item, TableName=t_s, Item={"pk": S("é" * (HASH_KEY_BYTES_MAX // 2 + 1))})
    assert code == "ValidationException"


@doc(LIMITS_PAGE, "Partition key length: binary keys too")
def test_binary_hash_key_over_2048_bytes_is_rejected(ddb, t_b):
    code = code_of(ddb.put_item, TableName=t_b, Item={"pk": B(b"\x01" * (HASH_KEY_BYTES_MAX + 1))})
    assert code == "ValidationException"


@doc(LIMITS_PAGE, "Sort key length: 1 to 1024 bytes")
def test_range_key_of_1024_bytes_is_stored(ddb, t_ss, uid):
    ddb.put_item(TableName=t_ss, Item={"pk": S(uid), "sk": S("s" * RANGE_KEY_BYTES_MAX)})


@doc(LIMITS_PAGE, "Sort key length: 1 to 1024 bytes")
def test_range_key_over_1024_bytes_is_rejected(ddb, t_ss, uid):
    code = code_of(ddb.put_item, TableName=t_ss, Item={"pk": S(uid), "sk": S("s" * (RANGE_KEY_BYTES_MAX + 1))})
    assert code == "ValidationException"


@doc(LIMITS_PAGE, "Partition key length: applies to the key of a read too")
def test_get_with_too_long_key_is_rejected(ddb, t_s):
    code = code_of(ddb.get_item, TableName=t_s, Key={"pk": S("k" * (HASH_KEY_BYTES_MAX + 1))})
    assert code == "ValidationException"


@pytest.mark.parametrize("word", ["name", "status", "size", "data", "count", "value", "Year", "KEY"])
@doc(RESERVED_PAGE, "Reserved words cannot be used as attribute names in expressions")
def test_reserved_word_in_condition_is_rejected(ddb, t_s, uid, word):
    request = {"ConditionExpression": f"{word} = :v", "ExpressionAttributeValues": {":v": N(1)}}
    code, _, status = error_of(ddb.put_item, TableName=t_s, Item={"pk": S(uid)}, **request)
    assert (code, status) == ("ValidationException", 400)


@doc(RESERVED_PAGE, "Reserved words in update expressions")
def test_reserved_word_in_update_is_rejected(ddb, t_s, uid):
    request = {"UpdateExpression": "SET status = :v", "ExpressionAttributeValues": {":v": N(1)}}
    assert code_of(ddb.update_item, TableName=t_s, Key={"pk": S(uid)}, **request) == "ValidationException"


@doc(RESERVED_PAGE, "Reserved words in projection expressions")
def test_reserved_word_in_projection_is_rejected(ddb, t_s, uid):
    assert code_of(ddb.get_item, TableName=t_s, Key={"pk": S(uid)}, ProjectionExpression="name") == (
        "ValidationException"
    )


@doc(RESERVED_PAGE, "Reserved words inside a document path")
def test_reserved_word_in_a_nested_path_is_rejected(ddb, t_s, uid):
    assert code_of(ddb.get_item, TableName=t_s, Key={"pk": S(uid)}, ProjectionExpression="a.date") == (
        "ValidationException"
    )


@doc(NAMES_PAGE, "A placeholder stands in for a reserved word")
def test_reserved_word_through_a_placeholder(ddb, t_s, uid):
    request = {
        "UpdateExpression": "SET #s = :v",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":v": N(1)},
        "ReturnValues": "ALL_NEW",
    }
    attributes = ddb.update_item(TableName=t_s, Key={"pk": S(uid)}, **request)["Attributes"]
    assert attributes == {"pk": S(uid), "status": N(1)}


@doc(VALUES_PAGE, "Every value in ExpressionAttributeValues must be used")
def test_unused_expression_attribute_value_is_rejected(ddb, t_s, uid):
    request = {"ConditionExpression": "attribute_not_exists(pk)", "ExpressionAttributeValues": {":unused": N(1)}}
    code, _, status = error_of(ddb.put_item, TableName=t_s, Item={"pk": S(uid)}, **request)
    assert (code, status) == ("ValidationException", 400)


@doc(NAMES_PAGE, "Every name in ExpressionAttributeNames must be used")
def test_unused_expression_attribute_name_is_rejected(ddb, t_s, uid):
    request = {"ConditionExpression": "attribute_not_exists(pk)", "ExpressionAttributeNames": {"#unused": "a"}}
    assert code_of(ddb.put_item, TableName=t_s, Item={"pk": S(uid)}, **request) == "ValidationException"


@doc(VALUES_PAGE, "Unused values are rejected on every operation")
def test_unused_value_in_query_is_rejected(ddb, t_sn, uid):
    request = {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": S(uid), ":x": N(1)}}
    assert code_of(ddb.query, TableName=t_sn, **request) == "ValidationException"


@doc(NAMES_PAGE, "Unused names are rejected on every operation")
def test_unused_name_in_get_item_is_rejected(ddb, t_s, uid):
    request = {"ProjectionExpression": "#a", "ExpressionAttributeNames": {"#a": "a", "#b": "b"}}
    assert code_of(ddb.get_item, TableName=t_s, Key={"pk": S(uid)}, **request) == "ValidationException"


@doc(VALUES_PAGE, "ExpressionAttributeValues only together with an expression")
def test_values_without_an_expression_are_rejected(ddb, t_s, uid):
    request = {"ExpressionAttributeValues": {":v": N(1)}}
    assert code_of(ddb.put_item, TableName=t_s, Item={"pk": S(uid)}, **request) == "ValidationException"


@doc(NAMES_PAGE, "ExpressionAttributeNames only together with an expression")
def test_names_without_an_expression_are_rejected(ddb, t_s, uid):
    request = {"ExpressionAttributeNames": {"#a": "a"}}
    assert code_of(ddb.get_item, TableName=t_s, Key={"pk": S(uid)}, **request) == "ValidationException"


@doc(VALUES_PAGE, "ExpressionAttributeValues must not be empty")
def test_empty_values_map_is_rejected(ddb, t_s, uid):
    request = {"ConditionExpression": "attribute_not_exists(pk)", "ExpressionAttributeValues": {}}
    assert code_of(ddb.put_item, TableName=t_s, Item={"pk": S(uid)}, **request) == "ValidationException"


@doc(VALUES_PAGE, "Value placeholders start with a colon")
def test_value_placeholder_without_colon_is_rejected(ddb, t_s, uid):
    request = {"ConditionExpression": "a = :v", "ExpressionAttributeValues": {":v": N(1), "v2": N(2)}}
    assert code_of(ddb.put_item, TableName=t_s, Item={"pk": S(uid)}, **request) == "ValidationException"


@doc(NAMES_PAGE, "Name placeholders start with a pound sign")
def test_name_placeholder_without_pound_is_rejected(ddb, t_s, uid):
    request = {"ProjectionExpression": "#a", "ExpressionAttributeNames": {"#a": "a", "b": "b"}}
    assert code_of(ddb.get_item, TableName=t_s, Key={"pk": S(uid)}, **request) == "ValidationException"


@doc(VALUES_PAGE, "Values in ExpressionAttributeValues follow the data type rules")
def test_invalid_expression_value_is_rejected(ddb, t_s, uid):
    request = {"ConditionExpression": "a = :v", "ExpressionAttributeValues": {":v": {"SS": []}}}
    assert code_of(ddb.put_item, TableName=t_s, Item={"pk": S(uid)}, **request) == "ValidationException"


@pytest.mark.parametrize(
    "operation,legacy,expression",
    [
        ("put_item", {"Expected": {"a": {"Exists": False}}}, {"ConditionExpression": "attribute_not_exists(a)"}),
        ("delete_item", {"Expected": {"a": {"Exists": False}}}, {"ConditionExpression": "attribute_not_exists(a)"}),
        (
            "update_item",
            {"AttributeUpdates": {"a": {"Action": "PUT", "Value": N(1)}}},
            {"UpdateExpression": "REMOVE b"},
        ),
        (
            "update_item",
            {"Expected": {"a": {"Exists": False}}},
            {"ConditionExpression": "attribute_not_exists(a)"},
        ),
        ("get_item", {"AttributesToGet": ["a"]}, {"ProjectionExpression": "b"}),
        ("scan", {"AttributesToGet": ["a"]}, {"ProjectionExpression": "b"}),
        ("scan", {"ScanFilter": {"a": {"ComparisonOperator": "NOT_NULL"}}}, {"FilterExpression": "attribute_exists(b)"}),
    ],
    ids=[
        "put-expected",
        "delete-expected",
        "update-attribute-updates",
        "update-expected",
        "get-attributes-to-get",
        "scan-attributes-to-get",
        "scan-filter",
    ],
)
@doc(LEGACY_PAGE, "A legacy parameter and an expression parameter in one call is a ValidationException")
def test_legacy_and_expression_parameters_do_not_mix(ddb, t_s, uid, operation, legacy, expression):
    request = {"TableName": t_s, **legacy, **expression}
    if operation == "put_item":
        request["Item"] = {"pk": S(uid)}
    elif operation != "scan":
        request["Key"] = {"pk": S(uid)}
    code, _, status = error_of(getattr(ddb, operation), **request)
    assert (code, status) == ("ValidationException", 400)


@doc(LEGACY_PAGE, "KeyConditions and KeyConditionExpression do not mix")
def test_key_conditions_and_expression_do_not_mix(ddb, t_sn, uid):
    request = {
        "KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S(uid)]}},
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": S(uid)},
    }
    assert code_of(ddb.query, TableName=t_sn, **request) == "ValidationException"


@doc(LEGACY_PAGE, "QueryFilter and FilterExpression do not mix")
def test_query_filter_and_filter_expression_do_not_mix(ddb, t_sn, uid):
    request = {
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": S(uid)},
        "QueryFilter": {"a": {"ComparisonOperator": "NOT_NULL"}},
        "FilterExpression": "attribute_exists(b)",
    }
    assert code_of(ddb.query, TableName=t_sn, **request) == "ValidationException"


@doc("API_PutItem", "TableName is required")
def test_missing_table_name_is_rejected(ddb, uid):
    assert code_of(ddb.put_item, Item={"pk": S(uid)}) == "ValidationException"


@doc("API_PutItem", "Item is required")
def test_missing_item_is_rejected(ddb, t_s):
    assert code_of(ddb.put_item, TableName=t_s) == "ValidationException"


@doc("API_GetItem", "ReturnConsumedCapacity: INDEXES | TOTAL | NONE")
def test_unknown_return_consumed_capacity_is_rejected(ddb, t_s, uid):
    code = code_of(ddb.get_item, TableName=t_s, Key={"pk": S(uid)}, ReturnConsumedCapacity="ALL")
    assert code == "ValidationException"


@doc("API_GetItem", "ReturnConsumedCapacity: TOTAL returns ConsumedCapacity of the table")
def test_return_consumed_capacity_total(ddb, t_s, uid):
    response = ddb.get_item(TableName=t_s, Key={"pk": S(uid)}, ReturnConsumedCapacity="TOTAL")
    assert response["ConsumedCapacity"]["TableName"] == t_s


@doc("Error handling with DynamoDB", "Error components: the HTTP status of a conditional check failure")
def test_conditional_check_failure_status(ddb, t_s, uid):
    ddb.put_item(TableName=t_s, Item={"pk": S(uid)})
    code, _, status = error_of(
        ddb.put_item, TableName=t_s, Item={"pk": S(uid)}, ConditionExpression="attribute_not_exists(pk)"
    )
    assert (code, status) == ("ConditionalCheckFailedException", 400)


@doc(LIMITS_PAGE, "Expression parameters: an expression string is at most 4 KB")
def test_expression_over_4_kb_is_rejected(ddb, t_s, uid):
    condition = " OR ".join(["attribute_exists(a)"] * 250)
    assert len(condition.encode()) > 4096
    assert code_of(ddb.put_item, TableName=t_s, Item={"pk": S(uid)}, ConditionExpression=condition) == (
        "ValidationException"
    )
