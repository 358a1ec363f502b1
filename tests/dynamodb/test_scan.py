"""Scan: whole-table reads, Limit, pagination, parallel segments and the 1 MB page."""

import pytest
from conftest import N, S, code_of, doc, paginate, scan_all

SCAN_PAGE = "API_Scan"
PARALLEL_PAGE = "Scanning tables in DynamoDB"
ITEMS = 25


@pytest.fixture
def filled(ddb, table):
    name = table("S", "N")
    for index in range(ITEMS):
        item = {"pk": S(f"p{index % 7}"), "sk": N(index), "odd": {"BOOL": index % 2 == 1}}
        ddb.put_item(TableName=name, Item=item)
    return name


def indexes(items):
    return sorted(int(item["sk"]["N"]) for item in items)


@doc(SCAN_PAGE, "Description: returns every item of the table")
def test_scan_returns_every_item(ddb, filled):
    response = ddb.scan(TableName=filled, ConsistentRead=True)
    assert indexes(response["Items"]) == list(range(ITEMS))
    assert response["Count"] == ITEMS
    assert response["ScannedCount"] == ITEMS
    assert "LastEvaluatedKey" not in response


@doc(SCAN_PAGE, "Response: an empty table")
def test_scan_of_an_empty_table(ddb, table):
    response = ddb.scan(TableName=table("S"))
    assert response["Items"] == []
    assert response["Count"] == 0
    assert response["ScannedCount"] == 0


@doc(SCAN_PAGE, "Limit, LastEvaluatedKey and ExclusiveStartKey")
def test_scan_pages_cover_every_item_once(ddb, filled):
    pages = paginate(ddb.scan, "ExclusiveStartKey", "LastEvaluatedKey", TableName=filled, Limit=4)
    assert all(len(page["Items"]) <= 4 for page in pages)
    items = [item for page in pages for item in page["Items"]]
    assert sorted(int(item["sk"]["N"]) for item in items) == list(range(ITEMS))


@doc(SCAN_PAGE, "Limit: a full page carries LastEvaluatedKey, the key of its last item")
def test_scan_limit_page(ddb, filled):
    response = ddb.scan(TableName=filled, Limit=5)
    assert response["Count"] == 5
    last = response["Items"][-1]
    assert response["LastEvaluatedKey"] == {"pk": last["pk"], "sk": last["sk"]}


@doc(SCAN_PAGE, "Limit: items evaluated before the FilterExpression")
def test_scan_limit_counts_before_the_filter(ddb, filled):
    request = {"FilterExpression": "odd = :t", "ExpressionAttributeValues": {":t": {"BOOL": True}}}
    response = ddb.scan(TableName=filled, Limit=10, **request)
    assert response["ScannedCount"] == 10
    assert response["Count"] == len(response["Items"])
    assert all(item["odd"] == {"BOOL": True} for item in response["Items"])
    every = scan_all(ddb, TableName=filled, Limit=10, **request)
    assert indexes(every) == list(range(1, ITEMS, 2))


@doc(SCAN_PAGE, "Select: COUNT")
def test_scan_select_count(ddb, filled):
    response = ddb.scan(TableName=filled, Select="COUNT")
    assert response["Count"] == ITEMS
    assert "Items" not in response


@pytest.mark.parametrize("segments", [1, 2, 3, 4, 8, 30])
@doc(PARALLEL_PAGE, "Parallel scan: the segments together cover every item exactly once")
def test_parallel_scan_covers_each_item_once(ddb, filled, segments):
    seen = []
    for segment in range(segments):
        items = scan_all(ddb, TableName=filled, Segment=segment, TotalSegments=segments, Limit=3)
        seen.extend(int(item["sk"]["N"]) for item in items)
    assert sorted(seen) == list(range(ITEMS))


@doc(PARALLEL_PAGE, "Parallel scan: a segment's pages continue within that segment")
def test_parallel_scan_segment_pages_stay_in_their_segment(ddb, filled):
    whole = {int(i["sk"]["N"]) for i in scan_all(ddb, TableName=filled, Segment=1, TotalSegments=2)}
    paged = [int(i["sk"]["N"]) for i in scan_all(ddb, TableName=filled, Segment=1, TotalSegments=2, Limit=1)]
    assert sorted(paged) == sorted(whole)


@pytest.mark.parametrize(
    "segment,total",
    [(2, 2), (-1, 2), (0, 0), (0, 1000001)],
    ids=["segment-too-big", "negative-segment", "zero-total", "total-too-big"],
)
@doc(SCAN_PAGE, "Segment and TotalSegments: 0 <= Segment < TotalSegments <= 1000000")
def test_parallel_scan_bounds_are_checked(ddb, filled, segment, total):
    assert code_of(ddb.scan, TableName=filled, Segment=segment, TotalSegments=total) == "ValidationException"


@doc(SCAN_PAGE, "Segment and TotalSegments: each requires the other")
def test_segment_without_total_is_rejected(ddb, filled):
    assert code_of(ddb.scan, TableName=filled, Segment=0) == "ValidationException"


@doc(SCAN_PAGE, "Segment and TotalSegments: each requires the other")
def test_total_without_segment_is_rejected(ddb, filled):
    assert code_of(ddb.scan, TableName=filled, TotalSegments=2) == "ValidationException"


@pytest.mark.parametrize("limit", [0, -5])
@doc(SCAN_PAGE, "Limit: minimum value of 1")
def test_scan_limit_below_one_is_rejected(ddb, filled, limit):
    assert code_of(ddb.scan, TableName=filled, Limit=limit) == "ValidationException"


@doc(SCAN_PAGE, "ExclusiveStartKey: the table's whole primary key")
def test_scan_start_key_of_wrong_shape_is_rejected(ddb, filled):
    assert code_of(ddb.scan, TableName=filled, ExclusiveStartKey={"pk": S("p1")}) == "ValidationException"


@doc(SCAN_PAGE, "ConsistentRead: strongly consistent scans see every completed write")
def test_consistent_scan_sees_a_fresh_write(ddb, filled):
    ddb.put_item(TableName=filled, Item={"pk": S("new"), "sk": N(1000)})
    assert 1000 in indexes(scan_all(ddb, TableName=filled, ConsistentRead=True))


@doc(SCAN_PAGE, "Description: a page holds at most 1 MB of data")
def test_scan_page_stops_at_one_megabyte(ddb, table):
    name = table("S")
    blob = "y" * (200 * 1024)
    for index in range(7):
        ddb.put_item(TableName=name, Item={"pk": S(f"big{index}"), "blob": S(blob)})
    first = ddb.scan(TableName=name, ProjectionExpression="pk")
    assert 1 <= first["Count"] < 7
    assert "LastEvaluatedKey" in first
    items = scan_all(ddb, TableName=name, ProjectionExpression="pk")
    assert sorted(item["pk"]["S"] for item in items) == [f"big{index}" for index in range(7)]
