"""UpdateItem as an operation: creating items, keys, and what an update may not do."""

from conftest import B, N, S, code_of, doc, get


@doc("API_UpdateItem", "Description: adds a new item if it does not already exist")
def test_update_creates_an_absent_item(ddb, t_s, uid):
    key = {"pk": S(uid)}
    ddb.update_item(TableName=t_s, Key=key, UpdateExpression="SET a = :a", ExpressionAttributeValues={":a": N(1)})
    assert get(ddb, t_s, key) == {"pk": S(uid), "a": N(1)}


@doc("API_UpdateItem", "Description: adds a new item if it does not already exist")
def test_update_creates_an_absent_item_with_a_composite_key(ddb, t_sb, uid):
    key = {"pk": S(uid), "sk": B(b"\x07")}
    ddb.update_item(TableName=t_sb, Key=key, UpdateExpression="ADD c :c", ExpressionAttributeValues={":c": N(3)})
    assert get(ddb, t_sb, key) == {"pk": S(uid), "sk": B(b"\x07"), "c": N(3)}


@doc("API_UpdateItem", "Description: edits an existing item's attributes")
def test_update_keeps_other_attributes(ddb, t_s, uid):
    key = {"pk": S(uid)}
    ddb.put_item(TableName=t_s, Item={"pk": S(uid), "a": S("x"), "b": S("y")})
    ddb.update_item(TableName=t_s, Key=key, UpdateExpression="SET a = :a", ExpressionAttributeValues={":a": S("z")})
    assert get(ddb, t_s, key) == {"pk": S(uid), "a": S("z"), "b": S("y")}


@doc("API_UpdateItem", "Description: an update without UpdateExpression creates an item of its key")
def test_update_without_expression_creates_the_key_only(ddb, t_s, uid):
    key = {"pk": S(uid)}
    ddb.update_item(TableName=t_s, Key=key)
    assert get(ddb, t_s, key) == key


@doc("API_UpdateItem", "Description: removing every non-key attribute leaves the item")
def test_removing_every_attribute_keeps_the_key(ddb, t_s, uid):
    key = {"pk": S(uid)}
    ddb.put_item(TableName=t_s, Item={"pk": S(uid), "a": S("x")})
    ddb.update_item(TableName=t_s, Key=key, UpdateExpression="REMOVE a")
    assert get(ddb, t_s, key) == key


@doc("API_UpdateItem", "Key: all of the primary key attributes, and only them")
def test_update_with_partial_key_is_rejected(ddb, t_sn, uid):
    code = code_of(
        ddb.update_item,
        TableName=t_sn,
        Key={"pk": S(uid)},
        UpdateExpression="SET a = :a",
        ExpressionAttributeValues={":a": N(1)},
    )
    assert code == "ValidationException"


@doc("API_UpdateItem", "Key: types must match the table's definition")
def test_update_with_key_of_wrong_type_is_rejected(ddb, t_sn, uid):
    code = code_of(
        ddb.update_item,
        TableName=t_sn,
        Key={"pk": S(uid), "sk": S("1")},
        UpdateExpression="SET a = :a",
        ExpressionAttributeValues={":a": N(1)},
    )
    assert code == "ValidationException"


@doc("API_UpdateItem", "UpdateExpression: key attributes cannot be changed")
def test_update_of_the_range_key_is_rejected(ddb, t_sn, uid):
    key = {"pk": S(uid), "sk": N(1)}
    ddb.put_item(TableName=t_sn, Item=key)
    code = code_of(
        ddb.update_item, TableName=t_sn, Key=key, UpdateExpression="SET sk = :v", ExpressionAttributeValues={":v": N(2)}
    )
    assert code == "ValidationException"
    assert get(ddb, t_sn, key) == key


@doc("API_UpdateItem", "Description: an update that fails changes nothing")
def test_failing_update_changes_nothing(ddb, t_s, uid):
    key = {"pk": S(uid)}
    ddb.put_item(TableName=t_s, Item={"pk": S(uid), "a": S("x"), "n": N(1)})
    code = code_of(
        ddb.update_item,
        TableName=t_s,
        Key=key,
        UpdateExpression="SET n = n + :one, a = nope + :one",
        ExpressionAttributeValues={":one": N(1)},
    )
    assert code == "ValidationException"
    assert get(ddb, t_s, key) == {"pk": S(uid), "a": S("x"), "n": N(1)}


@doc("Supported data types and naming rules in Amazon DynamoDB", "Sets: DynamoDB does not support empty sets")
def test_update_may_not_empty_a_set(ddb, t_s, uid):
    key = {"pk": S(uid)}
    code = code_of(
        ddb.update_item,
        TableName=t_s,
        Key=key,
        UpdateExpression="SET s = :empty",
        ExpressionAttributeValues={":empty": {"SS": []}},
    )
    assert code == "ValidationException"


@doc("API_UpdateItem", "Description: the update is atomic, each write sees the previous one")
def test_sequential_counter(ddb, t_s, uid):
    key = {"pk": S(uid)}
    for _ in range(10):
        ddb.update_item(TableName=t_s, Key=key, UpdateExpression="ADD c :one", ExpressionAttributeValues={":one": N(1)})
    assert get(ddb, t_s, key)["c"] == N(10)
