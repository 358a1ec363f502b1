"""FilterExpression on Query and Scan."""

import pytest
from conftest import N, S, code_of, doc, query_all, scan_all

FILTER_PAGE = "Filter expressions for the Query operation in DynamoDB"
SCAN_FILTER_PAGE = "Filter expressions for the Scan operation in DynamoDB"


@pytest.fixture
def shop(ddb, table):
    name = table("S", "N")
    items = [
        {"pk": S("fruit"), "sk": N(1), "label": S("apple"), "price": N(3), "tags": {"SS": ["red", "sweet"]}},
        {"pk": S("fruit"), "sk": N(2), "label": S("banana"), "price": N(1), "tags": {"SS": ["yellow"]}},
        {"pk": S("fruit"), "sk": N(3), "label": S("cherry"), "price": N(8)},
        {"pk": S("veg"), "sk": N(1), "label": S("carrot"), "price": N(2), "info": {"M": {"origin": S("nl")}}},
        {"pk": S("veg"), "sk": N(2), "label": S("cabbage"), "price": N(2), "info": {"M": {"origin": S("de")}}},
    ]
    for item in items:
        ddb.put_item(TableName=name, Item=item)
    return name


def labels(items):
    return sorted(item["label"]["S"] for item in items)


def query_fruit(ddb, table_name, expression, values=None, **extra):
    return query_all(
        ddb,
        TableName=table_name,
        KeyConditionExpression="pk = :p",
        FilterExpression=expression,
        ExpressionAttributeValues=dict(values or {}, **{":p": S("fruit")}),
        ConsistentRead=True,
        **extra,
    )


def scan_filtered(ddb, table_name, expression, values=None, names=None):
    request = {"TableName": table_name, "FilterExpression": expression, "ConsistentRead": True}
    if values:
        request["ExpressionAttributeValues"] = values
    if names:
        request["ExpressionAttributeNames"] = names
    return scan_all(ddb, **request)


@doc(FILTER_PAGE, "The filter is applied after the items are read")
def test_query_filter_removes_items(ddb, shop):
    items = query_fruit(ddb, shop, "price > :p2", {":p2": N(2)})
    assert labels(items) == ["apple", "cherry"]


@doc(FILTER_PAGE, "Count is after the filter, ScannedCount before")
def test_query_filter_counts(ddb, shop):
    values = {":p": S("fruit"), ":one": N(1)}
    request = {"KeyConditionExpression": "pk = :p", "FilterExpression": "price = :one"}
    response = ddb.query(TableName=shop, ExpressionAttributeValues=values, **request)
    assert response["Count"] == 1
    assert response["ScannedCount"] == 3


@doc(FILTER_PAGE, "A filter that matches nothing returns no items")
def test_query_filter_matching_nothing(ddb, shop):
    values = {":p": S("fruit"), ":big": N(100)}
    request = {"KeyConditionExpression": "pk = :p", "FilterExpression": "price > :big"}
    response = ddb.query(TableName=shop, ExpressionAttributeValues=values, **request)
    assert response["Items"] == []
    assert response["Count"] == 0
    assert response["ScannedCount"] == 3


@doc("API_Query", "FilterExpression: cannot contain partition key or sort key attributes")
def test_query_filter_on_a_key_attribute_is_rejected(ddb, shop):
    request = {"KeyConditionExpression": "pk = :p", "FilterExpression": "sk > :one"}
    values = {":p": S("fruit"), ":one": N(1)}
    assert code_of(ddb.query, TableName=shop, ExpressionAttributeValues=values, **request) == "ValidationException"


@doc(SCAN_FILTER_PAGE, "A scan filter may test any attribute, keys included")
def test_scan_filter_on_key_attributes(ddb, shop):
    items = scan_filtered(ddb, shop, "pk = :veg AND sk = :one", {":veg": S("veg"), ":one": N(1)})
    assert labels(items) == ["carrot"]


@pytest.mark.parametrize(
    "expression,values,expected",
    [
        ("attribute_exists(tags)", None, ["apple", "banana"]),
        ("attribute_not_exists(tags)", None, ["cabbage", "carrot", "cherry"]),
        ("begins_with(label, :c)", {":c": S("c")}, ["cabbage", "carrot", "cherry"]),
        ("contains(tags, :red)", {":red": S("red")}, ["apple"]),
        ("contains(label, :an)", {":an": S("an")}, ["banana"]),
        ("size(label) = :six", {":six": N(6)}, ["banana", "carrot", "cherry"]),
        ("price BETWEEN :lo AND :hi", {":lo": N(2), ":hi": N(3)}, ["apple", "cabbage", "carrot"]),
        ("price IN (:a, :b)", {":a": N(1), ":b": N(8)}, ["banana", "cherry"]),
        ("info.origin = :nl", {":nl": S("nl")}, ["carrot"]),
        ("attribute_type(info, :m)", {":m": S("M")}, ["cabbage", "carrot"]),
        ("NOT price = :two", {":two": N(2)}, ["apple", "banana", "cherry"]),
        ("price = :two OR label = :apple", {":two": N(2), ":apple": S("apple")}, ["apple", "cabbage", "carrot"]),
        ("price < :x", {":x": S("5")}, []),
    ],
)
@doc(SCAN_FILTER_PAGE, "Filter expressions use the syntax of condition expressions")
def test_scan_filters(ddb, shop, expression, values, expected):
    assert labels(scan_filtered(ddb, shop, expression, values)) == expected


@doc("Expression attribute names (aliases) in DynamoDB", "Names in filter expressions")
def test_scan_filter_with_name_placeholders(ddb, shop):
    items = scan_filtered(ddb, shop, "#i.#o = :de", {":de": S("de")}, {"#i": "info", "#o": "origin"})
    assert labels(items) == ["cabbage"]


@doc(SCAN_FILTER_PAGE, "Filter expressions use the syntax of condition expressions")
def test_scan_filter_syntax_error_is_rejected(ddb, shop):
    request = {"FilterExpression": "price >> :v", "ExpressionAttributeValues": {":v": N(1)}}
    assert code_of(ddb.scan, TableName=shop, **request) == "ValidationException"


@doc(FILTER_PAGE, "The filter works together with Limit and pagination")
def test_query_filter_with_limit_pages(ddb, shop):
    items = query_fruit(ddb, shop, "price <> :one", {":one": N(1)}, Limit=1)
    assert labels(items) == ["apple", "cherry"]


@doc(FILTER_PAGE, "The filter works together with ScanIndexForward")
def test_query_filter_backwards(ddb, shop):
    items = query_fruit(ddb, shop, "price >= :one", {":one": N(1)}, ScanIndexForward=False)
    assert [item["label"]["S"] for item in items] == ["cherry", "banana", "apple"]
