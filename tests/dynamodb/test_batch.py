"""BatchWriteItem and BatchGetItem: limits, shapes of the responses, and their errors."""

import pytest
from conftest import N, S, code_of, doc, error_of, get, unique_name

WRITE_PAGE = "API_BatchWriteItem"
GET_PAGE = "API_BatchGetItem"
WRITES_MAX = 25
GETS_MAX = 100


def puts(uid, count, start=0):
    return [{"PutRequest": {"Item": {"pk": S(f"{uid}-{i}"), "v": N(i)}}} for i in range(start, start + count)]


def keys(uid, count):
    return [{"pk": S(f"{uid}-{i}")} for i in range(count)]


@doc(WRITE_PAGE, "Up to 25 put or delete requests; UnprocessedItems empty when all were done")
def test_batch_write_of_25_puts(ddb, t_s, uid):
    response = ddb.batch_write_item(RequestItems={t_s: puts(uid, WRITES_MAX)})
    assert response["UnprocessedItems"] == {}
    for i in range(WRITES_MAX):
        assert get(ddb, t_s, {"pk": S(f"{uid}-{i}")}) == {"pk": S(f"{uid}-{i}"), "v": N(i)}


@doc(WRITE_PAGE, "Errors: more than 25 requests in the batch is a ValidationException")
def test_batch_write_of_26_requests_is_rejected(ddb, t_s, uid):
    code, _, status = error_of(ddb.batch_write_item, RequestItems={t_s: puts(uid, WRITES_MAX + 1)})
    assert (code, status) == ("ValidationException", 400)
    assert get(ddb, t_s, {"pk": S(f"{uid}-0")}) is None


@doc(WRITE_PAGE, "The 25 requests count across all tables of the batch")
def test_batch_write_limit_counts_every_table(ddb, t_s, t_n, uid):
    request = {t_s: puts(uid, 13), t_n: [{"PutRequest": {"Item": {"pk": N(i)}}} for i in range(13)]}
    assert code_of(ddb.batch_write_item, RequestItems=request) == "ValidationException"


@doc(WRITE_PAGE, "Puts and deletes across several tables")
def test_batch_write_puts_and_deletes_in_two_tables(ddb, t_s, t_sn, uid):
    ddb.put_item(TableName=t_s, Item={"pk": S(uid + "-gone")})
    request = {
        t_s: [{"DeleteRequest": {"Key": {"pk": S(uid + "-gone")}}}, *puts(uid, 2)],
        t_sn: [{"PutRequest": {"Item": {"pk": S(uid), "sk": N(1), "x": S("y")}}}],
    }
    assert ddb.batch_write_item(RequestItems=request)["UnprocessedItems"] == {}
    assert get(ddb, t_s, {"pk": S(uid + "-gone")}) is None
    assert get(ddb, t_s, {"pk": S(uid + "-1")}) == {"pk": S(uid + "-1"), "v": N(1)}
    assert get(ddb, t_sn, {"pk": S(uid), "sk": N(1)})["x"] == S("y")


@doc(WRITE_PAGE, "Delete of a missing item is not an error")
def test_batch_delete_of_missing_items(ddb, t_s, uid):
    request = {t_s: [{"DeleteRequest": {"Key": {"pk": S(f"{uid}-{i}")}}} for i in range(3)]}
    assert ddb.batch_write_item(RequestItems=request)["UnprocessedItems"] == {}


@doc(WRITE_PAGE, "Put replaces an existing item, as PutItem does")
def test_batch_put_replaces_items(ddb, t_s, uid):
    ddb.put_item(TableName=t_s, Item={"pk": S(uid), "old": S("x")})
    ddb.batch_write_item(RequestItems={t_s: [{"PutRequest": {"Item": {"pk": S(uid), "new": S("y")}}}]})
    assert get(ddb, t_s, {"pk": S(uid)}) == {"pk": S(uid), "new": S("y")}


@doc(WRITE_PAGE, "Errors: multiple operations on the same item in one request")
def test_batch_write_put_and_delete_of_one_item_is_rejected(ddb, t_s, uid):
    request = {t_s: [{"PutRequest": {"Item": {"pk": S(uid)}}}, {"DeleteRequest": {"Key": {"pk": S(uid)}}}]}
    assert code_of(ddb.batch_write_item, RequestItems=request) == "ValidationException"


@doc(WRITE_PAGE, "Errors: multiple operations on the same item in one request")
def test_batch_write_two_puts_of_one_item_is_rejected(ddb, t_s, uid):
    request = {t_s: [{"PutRequest": {"Item": {"pk": S(uid), "v": N(1)}}}] * 2}
    assert code_of(ddb.batch_write_item, RequestItems=request) == "ValidationException"


@doc(WRITE_PAGE, "Errors: the table does not exist")
def test_batch_write_to_missing_table(ddb, uid):
    request = {unique_name(): [{"PutRequest": {"Item": {"pk": S(uid)}}}]}
    assert code_of(ddb.batch_write_item, RequestItems=request) == "ResourceNotFoundException"


@doc(WRITE_PAGE, "Errors: primary key attributes do not match the table's key schema")
def test_batch_put_without_key_is_rejected(ddb, t_s):
    request = {t_s: [{"PutRequest": {"Item": {"other": S("x")}}}]}
    assert code_of(ddb.batch_write_item, RequestItems=request) == "ValidationException"


@doc(WRITE_PAGE, "Errors: primary key attributes do not match the table's key schema")
def test_batch_delete_with_non_key_attribute_is_rejected(ddb, t_s, uid):
    request = {t_s: [{"DeleteRequest": {"Key": {"pk": S(uid), "v": N(1)}}}]}
    assert code_of(ddb.batch_write_item, RequestItems=request) == "ValidationException"


@doc(WRITE_PAGE, "RequestItems: at least one table with at least one request")
def test_batch_write_with_no_requests_is_rejected(ddb, t_s):
    assert code_of(ddb.batch_write_item, RequestItems={}) == "ValidationException"
    assert code_of(ddb.batch_write_item, RequestItems={t_s: []}) == "ValidationException"


@doc(WRITE_PAGE, "Errors: an individual item in the batch exceeds 400 KB")
def test_batch_put_of_too_large_item_is_rejected(ddb, t_s, uid):
    request = {t_s: [{"PutRequest": {"Item": {"pk": S(uid), "v": S("x" * (400 * 1024))}}}]}
    assert code_of(ddb.batch_write_item, RequestItems=request) == "ValidationException"


@doc(WRITE_PAGE, "A failing request fails the whole batch before any write")
def test_batch_write_with_one_invalid_item_writes_nothing(ddb, t_s, uid):
    request = {t_s: [*puts(uid, 3), {"PutRequest": {"Item": {"pk": N(1)}}}]}
    assert code_of(ddb.batch_write_item, RequestItems=request) == "ValidationException"
    assert get(ddb, t_s, {"pk": S(uid + "-0")}) is None


@doc(GET_PAGE, "Up to 100 items; Responses by table; UnprocessedKeys empty when all were read")
def test_batch_get_of_100_keys(ddb, t_s, uid):
    for start in range(0, GETS_MAX, WRITES_MAX):
        ddb.batch_write_item(RequestItems={t_s: puts(uid, WRITES_MAX, start)})
    response = ddb.batch_get_item(RequestItems={t_s: {"Keys": keys(uid, GETS_MAX), "ConsistentRead": True}})
    assert response["UnprocessedKeys"] == {}
    got = sorted(int(item["v"]["N"]) for item in response["Responses"][t_s])
    assert got == list(range(GETS_MAX))


@doc(GET_PAGE, "Errors: more than 100 items is a ValidationException")
def test_batch_get_of_101_keys_is_rejected(ddb, t_s, uid):
    code, _, status = error_of(ddb.batch_get_item, RequestItems={t_s: {"Keys": keys(uid, GETS_MAX + 1)}})
    assert (code, status) == ("ValidationException", 400)


@doc(GET_PAGE, "The 100 keys count across all tables of the batch")
def test_batch_get_limit_counts_every_table(ddb, t_s, t_n, uid):
    request = {t_s: {"Keys": keys(uid, 60)}, t_n: {"Keys": [{"pk": N(i)} for i in range(41)]}}
    assert code_of(ddb.batch_get_item, RequestItems=request) == "ValidationException"


@doc(GET_PAGE, "Items that do not exist are not returned")
def test_batch_get_leaves_out_missing_items(ddb, t_s, uid):
    ddb.put_item(TableName=t_s, Item={"pk": S(uid + "-1"), "v": N(1)})
    response = ddb.batch_get_item(RequestItems={t_s: {"Keys": keys(uid, 3), "ConsistentRead": True}})
    assert response["Responses"] == {t_s: [{"pk": S(uid + "-1"), "v": N(1)}]}


@doc(GET_PAGE, "Responses of several tables")
def test_batch_get_from_two_tables(ddb, t_s, t_sn, uid):
    ddb.put_item(TableName=t_s, Item={"pk": S(uid)})
    ddb.put_item(TableName=t_sn, Item={"pk": S(uid), "sk": N(5)})
    request = {
        t_s: {"Keys": [{"pk": S(uid)}], "ConsistentRead": True},
        t_sn: {"Keys": [{"pk": S(uid), "sk": N(5)}], "ConsistentRead": True},
    }
    responses = ddb.batch_get_item(RequestItems=request)["Responses"]
    assert responses == {t_s: [{"pk": S(uid)}], t_sn: [{"pk": S(uid), "sk": N(5)}]}


@doc(GET_PAGE, "Errors: the table does not exist")
def test_batch_get_from_missing_table(ddb, uid):
    request = {unique_name(): {"Keys": [{"pk": S(uid)}]}}
    assert code_of(ddb.batch_get_item, RequestItems=request) == "ResourceNotFoundException"


@doc(GET_PAGE, "Keys: the table's whole primary key, and only it")
def test_batch_get_with_partial_key_is_rejected(ddb, t_sn, uid):
    assert code_of(ddb.batch_get_item, RequestItems={t_sn: {"Keys": [{"pk": S(uid)}]}}) == "ValidationException"


@doc(GET_PAGE, "Keys: at least one key per table")
def test_batch_get_with_no_keys_is_rejected(ddb, t_s):
    assert code_of(ddb.batch_get_item, RequestItems={t_s: {"Keys": []}}) == "ValidationException"
    assert code_of(ddb.batch_get_item, RequestItems={}) == "ValidationException"


@doc(GET_PAGE, "Errors: duplicate keys in one request")
def test_batch_get_with_duplicate_keys_is_rejected(ddb, t_s, uid):
    request = {t_s: {"Keys": [{"pk": S(uid)}, {"pk": S(uid)}]}}
    assert code_of(ddb.batch_get_item, RequestItems=request) == "ValidationException"


@doc(GET_PAGE, "A response holds at most 16 MB; the rest comes back in UnprocessedKeys")
def test_batch_get_over_16_megabytes_returns_unprocessed_keys(ddb, table):
    name = table("S")
    blob = "z" * (390 * 1024)
    count = 50
    for i in range(count):
        ddb.put_item(TableName=name, Item={"pk": S(f"k{i}"), "blob": S(blob)})
    request = {name: {"Keys": [{"pk": S(f"k{i}")} for i in range(count)], "ConsistentRead": True}}
    response = ddb.batch_get_item(RequestItems=request)
    returned = [item["pk"]["S"] for item in response["Responses"].get(name, [])]
    left = [key["pk"]["S"] for key in response["UnprocessedKeys"][name]["Keys"]]
    assert len(returned) < count and left
    assert sorted(returned + left) == sorted(f"k{i}" for i in range(count))


@pytest.mark.parametrize("kind", ["put", "delete"])
@doc(WRITE_PAGE, "WriteRequest: key attribute types must match the table's definition")
def test_batch_write_with_key_of_wrong_type_is_rejected(ddb, t_s, kind):
    request = {"PutRequest": {"Item": {"pk": N(1)}}} if kind == "put" else {"DeleteRequest": {"Key": {"pk": N(1)}}}
    assert code_of(ddb.batch_write_item, RequestItems={t_s: [request]}) == "ValidationException"
