"""ReturnValues on PutItem, UpdateItem and DeleteItem, and ReturnValuesOnConditionCheckFailure."""

import pytest
from botocore.exceptions import ClientError
from conftest import N, S, code_of, doc

OLD = {"a": S("old"), "n": N(1), "m": {"M": {"x": N(1), "y": N(2)}}, "keep": S("k")}


@pytest.fixture
def key(ddb, t_s, uid):
    ddb.put_item(TableName=t_s, Item=dict(OLD, pk=S(uid)))
    return {"pk": S(uid)}


def update(ddb, table_name, key, return_values, expression="SET a = :a, n = n + :one REMOVE keep"):
    values = {name: value for name, value in {":a": S("new"), ":one": N(1)}.items() if name in expression}
    return ddb.update_item(
        TableName=table_name,
        Key=key,
        UpdateExpression=expression,
        ExpressionAttributeValues=values,
        ReturnValues=return_values,
    )


def failing_condition_response(call, **request):
    try:
        call(ConditionExpression="attribute_not_exists(pk)", **request)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"
        return error.response
    raise AssertionError("the condition must fail")


@doc("API_PutItem", "ReturnValues: ALL_OLD returns the item as it was before the put")
def test_put_all_old(ddb, t_s, key):
    response = ddb.put_item(TableName=t_s, Item=dict(key, a=S("new")), ReturnValues="ALL_OLD")
    assert response["Attributes"] == dict(OLD, pk=key["pk"])


@doc("API_PutItem", "ReturnValues: ALL_OLD of a new item returns nothing")
def test_put_all_old_of_a_new_item(ddb, t_s, uid):
    response = ddb.put_item(TableName=t_s, Item={"pk": S(uid)}, ReturnValues="ALL_OLD")
    assert "Attributes" not in response


@pytest.mark.parametrize("value", ["ALL_NEW", "UPDATED_OLD", "UPDATED_NEW", "EVERYTHING"])
@doc("API_PutItem", "ReturnValues: PutItem supports NONE and ALL_OLD only")
def test_put_rejects_other_return_values(ddb, t_s, uid, value):
    assert code_of(ddb.put_item, TableName=t_s, Item={"pk": S(uid)}, ReturnValues=value) == "ValidationException"


@doc("API_PutItem", "ReturnValues: NONE returns nothing")
def test_put_none(ddb, t_s, key):
    response = ddb.put_item(TableName=t_s, Item=key, ReturnValues="NONE")
    assert "Attributes" not in response


@doc("API_DeleteItem", "ReturnValues: ALL_OLD returns the deleted item")
def test_delete_all_old(ddb, t_s, key):
    response = ddb.delete_item(TableName=t_s, Key=key, ReturnValues="ALL_OLD")
    assert response["Attributes"] == dict(OLD, pk=key["pk"])


@doc("API_DeleteItem", "ReturnValues: ALL_OLD of a missing item returns nothing")
def test_delete_all_old_of_a_missing_item(ddb, t_s, uid):
    assert "Attributes" not in ddb.delete_item(TableName=t_s, Key={"pk": S(uid)}, ReturnValues="ALL_OLD")


@pytest.mark.parametrize("value", ["ALL_NEW", "UPDATED_OLD", "UPDATED_NEW"])
@doc("API_DeleteItem", "ReturnValues: DeleteItem supports NONE and ALL_OLD only")
def test_delete_rejects_other_return_values(ddb, t_s, key, value):
    assert code_of(ddb.delete_item, TableName=t_s, Key=key, ReturnValues=value) == "ValidationException"


@doc("API_UpdateItem", "ReturnValues: NONE returns nothing")
def test_update_none(ddb, t_s, key):
    assert "Attributes" not in update(ddb, t_s, key, "NONE")


@doc("API_UpdateItem", "ReturnValues: ALL_OLD returns the whole item before the update")
def test_update_all_old(ddb, t_s, key):
    assert update(ddb, t_s, key, "ALL_OLD")["Attributes"] == dict(OLD, pk=key["pk"])


@doc("API_UpdateItem", "ReturnValues: ALL_NEW returns the whole item after the update")
def test_update_all_new(ddb, t_s, key):
    expected = {"pk": key["pk"], "a": S("new"), "n": N(2), "m": OLD["m"]}
    assert update(ddb, t_s, key, "ALL_NEW")["Attributes"] == expected


@doc("API_UpdateItem", "ReturnValues: UPDATED_OLD returns the updated attributes as they were")
def test_update_updated_old(ddb, t_s, key):
    assert update(ddb, t_s, key, "UPDATED_OLD")["Attributes"] == {"a": S("old"), "n": N(1), "keep": S("k")}


@doc("API_UpdateItem", "ReturnValues: UPDATED_NEW returns the updated attributes as they are now")
def test_update_updated_new(ddb, t_s, key):
    assert update(ddb, t_s, key, "UPDATED_NEW")["Attributes"] == {"a": S("new"), "n": N(2)}


@doc("API_UpdateItem", "ReturnValues: UPDATED_NEW of a nested update returns only the nested path")
def test_update_updated_new_of_a_nested_path(ddb, t_s, key):
    response = update(ddb, t_s, key, "UPDATED_NEW", "SET m.x = :a")
    assert response["Attributes"] == {"m": {"M": {"x": S("new")}}}


@doc("API_UpdateItem", "ReturnValues: UPDATED_OLD of a nested update returns only the nested path")
def test_update_updated_old_of_a_nested_path(ddb, t_s, key):
    response = update(ddb, t_s, key, "UPDATED_OLD", "SET m.y = :a")
    assert response["Attributes"] == {"m": {"M": {"y": N(2)}}}


@doc("API_UpdateItem", "ReturnValues: UPDATED_OLD of attributes that did not exist returns nothing")
def test_update_updated_old_of_new_attributes(ddb, t_s, uid):
    key = {"pk": S(uid)}
    response = update(ddb, t_s, key, "UPDATED_OLD", "SET a = :a")
    assert "Attributes" not in response or response["Attributes"] == {}


@doc("API_UpdateItem", "ReturnValues: ALL_OLD of an update that creates the item returns nothing")
def test_update_all_old_creating_the_item(ddb, t_s, uid):
    response = update(ddb, t_s, {"pk": S(uid)}, "ALL_OLD", "SET a = :a")
    assert "Attributes" not in response


@doc("API_UpdateItem", "ReturnValues: ALL_NEW of an update that creates the item")
def test_update_all_new_creating_the_item(ddb, t_s, uid):
    response = update(ddb, t_s, {"pk": S(uid)}, "ALL_NEW", "SET a = :a")
    assert response["Attributes"] == {"pk": S(uid), "a": S("new")}


@doc("API_UpdateItem", "ReturnValues: NONE | ALL_OLD | UPDATED_OLD | ALL_NEW | UPDATED_NEW")
def test_update_rejects_unknown_return_values(ddb, t_s, key):
    assert code_of(update, ddb, t_s, key, "SOME") == "ValidationException"


@doc("API_PutItem", "ReturnValuesOnConditionCheckFailure: ALL_OLD returns the item with the error")
def test_put_returns_the_item_on_condition_failure(ddb, t_s, key):
    response = failing_condition_response(
        ddb.put_item, TableName=t_s, Item=key, ReturnValuesOnConditionCheckFailure="ALL_OLD"
    )
    assert response["Item"] == dict(OLD, pk=key["pk"])


@doc("API_UpdateItem", "ReturnValuesOnConditionCheckFailure: ALL_OLD returns the item with the error")
def test_update_returns_the_item_on_condition_failure(ddb, t_s, key):
    response = failing_condition_response(
        ddb.update_item,
        TableName=t_s,
        Key=key,
        UpdateExpression="SET a = :a",
        ExpressionAttributeValues={":a": S("x")},
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )
    assert response["Item"] == dict(OLD, pk=key["pk"])


@doc("API_DeleteItem", "ReturnValuesOnConditionCheckFailure: ALL_OLD returns the item with the error")
def test_delete_returns_the_item_on_condition_failure(ddb, t_s, key):
    response = failing_condition_response(
        ddb.delete_item, TableName=t_s, Key=key, ReturnValuesOnConditionCheckFailure="ALL_OLD"
    )
    assert response["Item"] == dict(OLD, pk=key["pk"])


@doc("API_PutItem", "ReturnValuesOnConditionCheckFailure: NONE returns no item")
def test_put_returns_no_item_on_condition_failure_with_none(ddb, t_s, key):
    response = failing_condition_response(
        ddb.put_item, TableName=t_s, Item=key, ReturnValuesOnConditionCheckFailure="NONE"
    )
    assert "Item" not in response


@doc("API_PutItem", "ReturnValuesOnConditionCheckFailure: ALL_OLD | NONE")
def test_unknown_return_values_on_condition_check_failure_is_rejected(ddb, t_s, key):
    code = code_of(
        ddb.put_item,
        TableName=t_s,
        Item=key,
        ConditionExpression="attribute_exists(pk)",
        ReturnValuesOnConditionCheckFailure="ALL_NEW",
    )
    assert code == "ValidationException"
