"""PutItem, GetItem and DeleteItem without expressions."""

import threading

import pytest
from conftest import B, N, S, code_of, doc, endpoint_urls, error_of, get, make_client


@doc("API_PutItem", "Item: the whole item, returned by GetItem")
def test_put_then_get_returns_the_item(ddb, t_s, uid):
    item = {"pk": S(uid), "a": S("x"), "n": N(5), "flag": {"BOOL": True}}
    assert ddb.put_item(TableName=t_s, Item=item)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert get(ddb, t_s, {"pk": S(uid)}) == item


@doc("API_PutItem", "Description: replaces an existing item entirely")
def test_put_replaces_the_whole_item(ddb, t_s, uid):
    ddb.put_item(TableName=t_s, Item={"pk": S(uid), "a": S("1"), "b": S("2")})
    ddb.put_item(TableName=t_s, Item={"pk": S(uid), "c": S("3")})
    assert get(ddb, t_s, {"pk": S(uid)}) == {"pk": S(uid), "c": S("3")}


@doc("API_PutItem", "ReturnValues: NONE is the default, nothing returned")
def test_put_returns_no_attributes_by_default(ddb, t_s, uid):
    ddb.put_item(TableName=t_s, Item={"pk": S(uid), "a": S("1")})
    response = ddb.put_item(TableName=t_s, Item={"pk": S(uid), "a": S("2")})
    assert "Attributes" not in response


@doc("API_GetItem", "Response: no Item element when there is no matching item")
def test_get_missing_item_has_no_item(ddb, t_s, uid):
    response = ddb.get_item(TableName=t_s, Key={"pk": S(uid)}, ConsistentRead=True)
    assert "Item" not in response


@doc("API_GetItem", "ConsistentRead")
def test_get_with_eventual_consistency_still_answers(ddb, t_s, uid):
    ddb.put_item(TableName=t_s, Item={"pk": S(uid)})
    response = ddb.get_item(TableName=t_s, Key={"pk": S(uid)}, ConsistentRead=False)
    assert response.get("Item") in (None, {"pk": S(uid)})


@doc("API_DeleteItem", "Description: deletes a single item by primary key")
def test_delete_removes_the_item(ddb, t_s, uid):
    ddb.put_item(TableName=t_s, Item={"pk": S(uid), "a": S("x")})
    response = ddb.delete_item(TableName=t_s, Key={"pk": S(uid)})
    assert "Attributes" not in response
    assert get(ddb, t_s, {"pk": S(uid)}) is None


@doc("API_DeleteItem", "Description: deleting a missing item is not an error")
def test_delete_missing_item_succeeds(ddb, t_s, uid):
    response = ddb.delete_item(TableName=t_s, Key={"pk": S(uid)})
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "Attributes" not in response


@doc("Core components of Amazon DynamoDB", "Primary key: partition key and sort key")
def test_items_with_same_hash_and_different_range_are_distinct(ddb, t_sn, uid):
    ddb.put_item(TableName=t_sn, Item={"pk": S(uid), "sk": N(1), "v": S("one")})
    ddb.put_item(TableName=t_sn, Item={"pk": S(uid), "sk": N(2), "v": S("two")})
    assert get(ddb, t_sn, {"pk": S(uid), "sk": N(1)})["v"] == S("one")
    assert get(ddb, t_sn, {"pk": S(uid), "sk": N(2)})["v"] == S("two")
    ddb.delete_item(TableName=t_sn, Key={"pk": S(uid), "sk": N(1)})
    assert get(ddb, t_sn, {"pk": S(uid), "sk": N(1)}) is None
    assert get(ddb, t_sn, {"pk": S(uid), "sk": N(2)})["v"] == S("two")


@doc("Supported data types and naming rules in Amazon DynamoDB", "Number: leading and trailing zeroes are trimmed")
def test_number_keys_compare_by_value(ddb, t_n, uid):
    key = int(uid[:12], 16)
    ddb.put_item(TableName=t_n, Item={"pk": N(f"{key}.000"), "v": S("x")})
    assert get(ddb, t_n, {"pk": N(key)}) == {"pk": N(key), "v": S("x")}
    assert get(ddb, t_n, {"pk": N(f"{key}0E-1")}) == {"pk": N(key), "v": S("x")}


@doc("Supported data types and naming rules in Amazon DynamoDB", "Binary: the key of a table may be binary")
def test_binary_hash_key(ddb, t_b, uid):
    key = bytes.fromhex(uid)
    ddb.put_item(TableName=t_b, Item={"pk": B(key), "v": S("bin")})
    assert get(ddb, t_b, {"pk": B(key)}) == {"pk": B(key), "v": S("bin")}


@doc("Supported data types and naming rules in Amazon DynamoDB", "Binary: the sort key may be binary")
def test_binary_range_key(ddb, t_sb, uid):
    ddb.put_item(TableName=t_sb, Item={"pk": S(uid), "sk": B(b"\x00\x01"), "v": N(1)})
    ddb.put_item(TableName=t_sb, Item={"pk": S(uid), "sk": B(b"\x00\x02"), "v": N(2)})
    assert get(ddb, t_sb, {"pk": S(uid), "sk": B(b"\x00\x02")})["v"] == N(2)


@doc("API_PutItem", "Item: the primary key attributes are required")
def test_put_without_hash_key_is_rejected(ddb, t_s):
    code, _, status = error_of(ddb.put_item, TableName=t_s, Item={"other": S("x")})
    assert (code, status) == ("ValidationException", 400)


@doc("API_PutItem", "Item: both key attributes for a composite key")
def test_put_without_range_key_is_rejected(ddb, t_sn, uid):
    assert code_of(ddb.put_item, TableName=t_sn, Item={"pk": S(uid)}) == "ValidationException"


@doc("API_PutItem", "Item: key attribute types must match the table's definition")
def test_put_with_key_of_wrong_type_is_rejected(ddb, t_s):
    assert code_of(ddb.put_item, TableName=t_s, Item={"pk": N(1)}) == "ValidationException"


@doc("API_PutItem", "Item: key attribute types must match the table's definition")
def test_put_with_range_key_of_wrong_type_is_rejected(ddb, t_sn, uid):
    assert code_of(ddb.put_item, TableName=t_sn, Item={"pk": S(uid), "sk": S("1")}) == "ValidationException"


@pytest.mark.parametrize("value", [{"SS": ["a"]}, {"BOOL": True}, {"NULL": True}, {"M": {}}, {"L": []}])
@doc("Supported data types and naming rules in Amazon DynamoDB", "Key attributes are scalar: S, N or B")
def test_put_with_non_scalar_key_is_rejected(ddb, t_s, value):
    assert code_of(ddb.put_item, TableName=t_s, Item={"pk": value}) == "ValidationException"


@doc("Supported data types and naming rules in Amazon DynamoDB", "String: key attributes may not be empty")
def test_put_with_empty_string_hash_key_is_rejected(ddb, t_s):
    assert code_of(ddb.put_item, TableName=t_s, Item={"pk": S("")}) == "ValidationException"


@doc("Supported data types and naming rules in Amazon DynamoDB", "Binary: key attributes may not be empty")
def test_put_with_empty_binary_range_key_is_rejected(ddb, t_sb, uid):
    assert code_of(ddb.put_item, TableName=t_sb, Item={"pk": S(uid), "sk": B(b"")}) == "ValidationException"


@doc("API_GetItem", "Key: all of the primary key attributes, and only them")
def test_get_with_partial_key_is_rejected(ddb, t_sn, uid):
    assert code_of(ddb.get_item, TableName=t_sn, Key={"pk": S(uid)}) == "ValidationException"


@doc("API_GetItem", "Key: all of the primary key attributes, and only them")
def test_get_with_extra_key_attribute_is_rejected(ddb, t_s, uid):
    assert code_of(ddb.get_item, TableName=t_s, Key={"pk": S(uid), "x": S("y")}) == "ValidationException"


@doc("API_GetItem", "Key: types must match the table's definition")
def test_get_with_key_of_wrong_type_is_rejected(ddb, t_s):
    assert code_of(ddb.get_item, TableName=t_s, Key={"pk": B(b"x")}) == "ValidationException"


@doc("API_DeleteItem", "Key: all of the primary key attributes, and only them")
def test_delete_with_partial_key_is_rejected(ddb, t_sn, uid):
    assert code_of(ddb.delete_item, TableName=t_sn, Key={"pk": S(uid)}) == "ValidationException"


@doc("API_DeleteItem", "Key: all of the primary key attributes, and only them")
def test_delete_with_non_key_attribute_is_rejected(ddb, t_s, uid):
    assert code_of(ddb.delete_item, TableName=t_s, Key={"pk": S(uid), "a": S("b")}) == "ValidationException"


@doc("API_GetItem", "Key: required")
def test_get_with_empty_key_is_rejected(ddb, t_s):
    assert code_of(ddb.get_item, TableName=t_s, Key={}) == "ValidationException"


@doc("Supported data types and naming rules in Amazon DynamoDB", "Attribute names: any UTF-8, at least one character")
def test_attribute_names_may_hold_any_character(ddb, t_s, uid):
    item = {"pk": S(uid), "with space": S("1"), "dot.ted": S("2"), "ünïcödé": S("3"), "#:[]": S("4")}
    ddb.put_item(TableName=t_s, Item=item)
    assert get(ddb, t_s, {"pk": S(uid)}) == item


@doc("Supported data types and naming rules in Amazon DynamoDB", "Attribute names: at least one character long")
def test_empty_attribute_name_is_rejected(ddb, t_s, uid):
    assert code_of(ddb.put_item, TableName=t_s, Item={"pk": S(uid), "": S("x")}) == "ValidationException"


@doc("API_AttributeValue", "exactly one data type member per attribute value")
def test_value_with_two_types_is_rejected(ddb, t_s, uid):
    item = {"pk": S(uid), "a": {"S": "x", "N": "1"}}
    assert code_of(ddb.put_item, TableName=t_s, Item=item) == "ValidationException"


@doc("API_AttributeValue", "exactly one data type member per attribute value")
def test_value_with_no_type_is_rejected(ddb, t_s, uid):
    assert code_of(ddb.put_item, TableName=t_s, Item={"pk": S(uid), "a": {}}) == "ValidationException"


@doc("API_PutItem", "TableName: the table must exist")
def test_put_to_missing_table_is_not_found(ddb, uid):
    code, _, status = error_of(ddb.put_item, TableName="dynakv-missing-" + uid, Item={"pk": S(uid)})
    assert (code, status) == ("ResourceNotFoundException", 400)


@doc("API_DeleteItem", "Key: delete by a number sort key given in another spelling")
def test_delete_matches_number_key_by_value(ddb, t_sn, uid):
    ddb.put_item(TableName=t_sn, Item={"pk": S(uid), "sk": N("100")})
    ddb.delete_item(TableName=t_sn, Key={"pk": S(uid), "sk": N("1E2")})
    assert get(ddb, t_sn, {"pk": S(uid), "sk": N(100)}) is None


@doc("API_PutItem", "Item: stores nested maps and lists as given")
def test_put_nested_document(ddb, t_s, uid):
    item = {
        "pk": S(uid),
        "doc": {"M": {"list": {"L": [N(1), S("two"), {"M": {"deep": {"BOOL": False}}}]}, "nil": {"NULL": True}}},
    }
    ddb.put_item(TableName=t_s, Item=item)
    assert get(ddb, t_s, {"pk": S(uid)}) == item


LARGE_BYTES = 390 * 1024


@doc("Constraints in Amazon DynamoDB", "Items: item size up to 400 KB; every write replaces or removes it whole")
def test_large_items_read_back_whole_through_overwrites_updates_and_delete(ddb, t_s, uid):
    key = {"pk": S(uid)}
    previous = None
    for round_, fill in enumerate("abc"):
        item = {"pk": S(uid), "blob": S(fill * LARGE_BYTES), "n": N(round_)}
        response = ddb.put_item(TableName=t_s, Item=item, ReturnValues="ALL_OLD")
        assert response.get("Attributes") == previous
        assert get(ddb, t_s, key) == item
        previous = item
    updated = ddb.update_item(
        TableName=t_s,
        Key=key,
        UpdateExpression="SET tail = :t ADD n :one",
        ExpressionAttributeValues={":t": S("z" * 5000), ":one": N(1)},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert updated == {**previous, "tail": S("z" * 5000), "n": N(3)}
    assert get(ddb, t_s, key) == updated
    small = {"pk": S(uid), "a": S("small")}
    assert ddb.put_item(TableName=t_s, Item=small, ReturnValues="ALL_OLD")["Attributes"] == updated
    assert get(ddb, t_s, key) == small
    binary = bytes(range(256)) * (LARGE_BYTES // 256)
    ddb.put_item(TableName=t_s, Item={"pk": S(uid), "b": B(binary)})
    assert get(ddb, t_s, key) == {"pk": S(uid), "b": B(binary)}
    deleted = ddb.delete_item(TableName=t_s, Key=key, ReturnValues="ALL_OLD")["Attributes"]
    assert deleted == {"pk": S(uid), "b": B(binary)}
    assert get(ddb, t_s, key) is None


@doc("API_UpdateItem", "ADD: an atomic counter; concurrent updates of one item each apply once")
def test_concurrent_counter_updates_of_a_large_item_each_apply_once(ddb, t_s, uid):
    blob = "q" * LARGE_BYTES
    ddb.put_item(TableName=t_s, Item={"pk": S(uid), "blob": S(blob), "n": N(0)})
    writers, each = 4, 6
    errors = []
    urls = endpoint_urls()

    def add_many(writer):
        client = make_client(urls[writer % len(urls)])
        try:
            for _ in range(each):
                client.update_item(
                    TableName=t_s,
                    Key={"pk": S(uid)},
                    UpdateExpression="ADD n :one",
                    ExpressionAttributeValues={":one": N(1)},
                )
        except Exception as error:  # noqa: BLE001: reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=add_many, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert get(ddb, t_s, {"pk": S(uid)}) == {"pk": S(uid), "blob": S(blob), "n": N(writers * each)}
