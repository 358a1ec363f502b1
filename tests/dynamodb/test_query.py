"""Query: order, Limit, pagination, Select, counts and the 1 MB page."""

import pytest
from conftest import N, S, code_of, doc, paginate

QUERY_PAGE = "API_Query"
ITEMS = 10


@pytest.fixture
def partition(ddb, t_sn, uid):
    for index in range(ITEMS):
        ddb.put_item(TableName=t_sn, Item={"pk": S(uid), "sk": N(index), "even": {"BOOL": index % 2 == 0}})
    return uid


def base(table_name, uid, **extra):
    return dict(
        TableName=table_name,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": S(uid)},
        ConsistentRead=True,
        **extra,
    )


def numbers(items):
    return [int(item["sk"]["N"]) for item in items]


@doc(QUERY_PAGE, "Response: Items, Count and ScannedCount")
def test_query_returns_items_and_counts(ddb, t_sn, partition):
    response = ddb.query(**base(t_sn, partition))
    assert numbers(response["Items"]) == list(range(ITEMS))
    assert response["Count"] == ITEMS
    assert response["ScannedCount"] == ITEMS
    assert "LastEvaluatedKey" not in response


@doc(QUERY_PAGE, "ScanIndexForward: false reads in descending sort key order")
def test_query_backwards(ddb, t_sn, partition):
    response = ddb.query(**base(t_sn, partition, ScanIndexForward=False))
    assert numbers(response["Items"]) == list(reversed(range(ITEMS)))


@doc(QUERY_PAGE, "Limit and LastEvaluatedKey")
def test_query_limit_stops_with_last_evaluated_key(ddb, t_sn, partition):
    response = ddb.query(**base(t_sn, partition, Limit=3))
    assert numbers(response["Items"]) == [0, 1, 2]
    assert response["Count"] == 3
    assert response["LastEvaluatedKey"] == {"pk": S(partition), "sk": N(2)}


@doc(QUERY_PAGE, "ExclusiveStartKey: the next page starts after it")
def test_query_pages_cover_the_partition_once(ddb, t_sn, partition):
    pages = paginate(ddb.query, "ExclusiveStartKey", "LastEvaluatedKey", **base(t_sn, partition, Limit=4))
    assert [numbers(page["Items"]) for page in pages if page["Items"]] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


@doc(QUERY_PAGE, "ExclusiveStartKey with ScanIndexForward false")
def test_query_pages_backwards(ddb, t_sn, partition):
    request = base(t_sn, partition, Limit=6, ScanIndexForward=False)
    pages = paginate(ddb.query, "ExclusiveStartKey", "LastEvaluatedKey", **request)
    assert [n for page in pages for n in numbers(page["Items"])] == list(reversed(range(ITEMS)))


@doc(QUERY_PAGE, "ExclusiveStartKey: need not be an existing item")
def test_query_from_a_start_key_between_items(ddb, t_sn, partition):
    response = ddb.query(**base(t_sn, partition, ExclusiveStartKey={"pk": S(partition), "sk": N("6.5")}))
    assert numbers(response["Items"]) == [7, 8, 9]


@doc(QUERY_PAGE, "Limit: the number of items evaluated, before the FilterExpression")
def test_limit_counts_items_before_the_filter(ddb, t_sn, partition):
    request = base(t_sn, partition, Limit=4, FilterExpression="even = :t")
    request["ExpressionAttributeValues"][":t"] = {"BOOL": True}
    response = ddb.query(**request)
    assert numbers(response["Items"]) == [0, 2]
    assert response["Count"] == 2
    assert response["ScannedCount"] == 4
    assert response["LastEvaluatedKey"] == {"pk": S(partition), "sk": N(3)}


@doc(QUERY_PAGE, "Select: COUNT returns the number of matching items, not the items")
def test_select_count(ddb, t_sn, partition):
    response = ddb.query(**base(t_sn, partition, Select="COUNT"))
    assert response["Count"] == ITEMS
    assert "Items" not in response


@doc(QUERY_PAGE, "Select: ALL_ATTRIBUTES")
def test_select_all_attributes(ddb, t_sn, partition):
    response = ddb.query(**base(t_sn, partition, Select="ALL_ATTRIBUTES", Limit=1))
    assert response["Items"] == [{"pk": S(partition), "sk": N(0), "even": {"BOOL": True}}]


@doc(QUERY_PAGE, "Select: SPECIFIC_ATTRIBUTES goes with ProjectionExpression")
def test_select_specific_attributes(ddb, t_sn, partition):
    request = base(t_sn, partition, Select="SPECIFIC_ATTRIBUTES", ProjectionExpression="even", Limit=2)
    assert ddb.query(**request)["Items"] == [{"even": {"BOOL": True}}, {"even": {"BOOL": False}}]


@doc(QUERY_PAGE, "Select: with ProjectionExpression, Select can only be SPECIFIC_ATTRIBUTES")
def test_select_all_attributes_with_projection_is_rejected(ddb, t_sn, partition):
    request = base(t_sn, partition, Select="ALL_ATTRIBUTES", ProjectionExpression="even")
    assert code_of(ddb.query, **request) == "ValidationException"


@doc(QUERY_PAGE, "Select: ALL_ATTRIBUTES | ALL_PROJECTED_ATTRIBUTES | SPECIFIC_ATTRIBUTES | COUNT")
def test_unknown_select_is_rejected(ddb, t_sn, partition):
    assert code_of(ddb.query, **base(t_sn, partition, Select="EVERYTHING")) == "ValidationException"


@doc(QUERY_PAGE, "Select: ALL_PROJECTED_ATTRIBUTES only when querying an index")
def test_all_projected_attributes_on_a_table_is_rejected(ddb, t_sn, partition):
    request = base(t_sn, partition, Select="ALL_PROJECTED_ATTRIBUTES")
    assert code_of(ddb.query, **request) == "ValidationException"


@doc(QUERY_PAGE, "Response: an empty result has Count 0")
def test_query_of_an_empty_partition(ddb, t_sn, uid):
    response = ddb.query(**base(t_sn, uid))
    assert response["Items"] == []
    assert response["Count"] == 0
    assert response["ScannedCount"] == 0
    assert "LastEvaluatedKey" not in response


@pytest.mark.parametrize("limit", [0, -1])
@doc(QUERY_PAGE, "Limit: minimum value of 1")
def test_query_limit_below_one_is_rejected(ddb, t_sn, uid, limit):
    assert code_of(ddb.query, **base(t_sn, uid, Limit=limit)) == "ValidationException"


@doc(QUERY_PAGE, "ExclusiveStartKey: the primary key of the first item to evaluate")
def test_start_key_of_another_partition_is_rejected(ddb, t_sn, partition):
    request = base(t_sn, partition, ExclusiveStartKey={"pk": S(partition + "x"), "sk": N(1)})
    assert code_of(ddb.query, **request) == "ValidationException"


@doc(QUERY_PAGE, "ExclusiveStartKey: the table's whole primary key")
def test_start_key_without_sort_key_is_rejected(ddb, t_sn, partition):
    request = base(t_sn, partition, ExclusiveStartKey={"pk": S(partition)})
    assert code_of(ddb.query, **request) == "ValidationException"


@doc(QUERY_PAGE, "Query on a hash-only table returns at most the one item")
def test_query_on_a_hash_only_table(ddb, t_s, uid):
    ddb.put_item(TableName=t_s, Item={"pk": S(uid), "v": N(1)})
    response = ddb.query(**base(t_s, uid))
    assert response["Items"] == [{"pk": S(uid), "v": N(1)}]


@doc(QUERY_PAGE, "Description: a page holds at most 1 MB of data")
def test_query_page_stops_at_one_megabyte(ddb, t_sn, uid):
    blob = "x" * (200 * 1024)
    for index in range(7):
        ddb.put_item(TableName=t_sn, Item={"pk": S(uid), "sk": N(index), "blob": S(blob)})
    request = base(t_sn, uid, ProjectionExpression="sk")
    first = ddb.query(**request)
    assert 1 <= first["Count"] < 7
    assert "LastEvaluatedKey" in first
    pages = paginate(ddb.query, "ExclusiveStartKey", "LastEvaluatedKey", **request)
    assert [n for page in pages for n in numbers(page["Items"])] == list(range(7))
