"""ProjectionExpression on GetItem, Query, Scan and BatchGetItem."""

import pytest
from conftest import N, S, code_of, doc, get

PROJECTION_PAGE = "Using projection expressions in DynamoDB"
PATHS_PAGE = "Specifying item attributes when using expressions"

ITEM_BODY = {
    "a": S("alpha"),
    "b": N(2),
    "l": {"L": [S("zero"), S("one"), {"M": {"deep": S("x"), "other2": N(1)}}]},
    "m": {"M": {"x": N(1), "y": {"M": {"z": S("deep"), "w": N(9)}}, "n": {"L": [N(1), N(2)]}}},
}


@pytest.fixture
def key(ddb, t_s, uid):
    ddb.put_item(TableName=t_s, Item=dict(ITEM_BODY, pk=S(uid)))
    return {"pk": S(uid)}


def projected(ddb, table_name, key, expression, names=None):
    extra = {"ProjectionExpression": expression}
    if names:
        extra["ExpressionAttributeNames"] = names
    return ddb.get_item(TableName=table_name, Key=key, ConsistentRead=True, **extra).get("Item")


@pytest.mark.parametrize(
    "expression,expected",
    [
        ("a", {"a": S("alpha")}),
        ("a, b", {"a": S("alpha"), "b": N(2)}),
        ("pk, a", {"a": S("alpha")}),
        ("m.x", {"m": {"M": {"x": N(1)}}}),
        ("m.y.z", {"m": {"M": {"y": {"M": {"z": S("deep")}}}}}),
        ("m.x, m.y.w", {"m": {"M": {"x": N(1), "y": {"M": {"w": N(9)}}}}}),
        ("l[1]", {"l": {"L": [S("one")]}}),
        ("l[0], l[2].deep", {"l": {"L": [S("zero"), {"M": {"deep": S("x")}}]}}),
        ("m.n[1]", {"m": {"M": {"n": {"L": [N(2)]}}}}),
        ("a, absent", {"a": S("alpha")}),
        ("m.absent, b", {"b": N(2)}),
        ("l[7], a", {"a": S("alpha")}),
    ],
)
@doc(PROJECTION_PAGE, "Projection of top-level and nested attributes; absent ones are left out")
def test_get_item_projections(ddb, t_s, key, expression, expected):
    got = projected(ddb, t_s, key, expression)
    if "pk" in expression:
        expected = dict(expected, pk=key["pk"])
    assert got == expected


@doc(PROJECTION_PAGE, "Projection of attributes that the item lacks returns an empty item")
def test_projection_of_only_absent_attributes(ddb, t_s, key):
    assert projected(ddb, t_s, key, "absent") in ({}, None)


@doc(PROJECTION_PAGE, "Key attributes are returned only when projected")
def test_projection_without_key_leaves_the_key_out(ddb, t_s, key):
    assert "pk" not in projected(ddb, t_s, key, "b")


@doc("Expression attribute names (aliases) in DynamoDB", "Names in projection expressions")
def test_projection_with_name_placeholders(ddb, t_s, uid):
    ddb.put_item(TableName=t_s, Item={"pk": S(uid), "a.b": N(1), "count": N(2), "a": {"M": {"b": N(3)}}})
    names = {"#dot": "a.b", "#c": "count", "#a": "a", "#b": "b"}
    got = projected(ddb, t_s, {"pk": S(uid)}, "#dot, #c, #a.#b", names)
    assert got == {"a.b": N(1), "count": N(2), "a": {"M": {"b": N(3)}}}


@doc(PATHS_PAGE, "A dot in a name without a placeholder is a nested path")
def test_dotted_name_without_placeholder_is_a_path(ddb, t_s, uid):
    ddb.put_item(TableName=t_s, Item={"pk": S(uid), "a.b": N(1)})
    assert projected(ddb, t_s, {"pk": S(uid)}, "a.b") in ({}, None)


@doc(PROJECTION_PAGE, "ProjectionExpression on Query")
def test_query_projection(ddb, t_sn, uid):
    for index in range(3):
        ddb.put_item(TableName=t_sn, Item={"pk": S(uid), "sk": N(index), "v": N(index * 10), "w": S("drop")})
    response = ddb.query(
        TableName=t_sn,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": S(uid)},
        ProjectionExpression="sk, v",
        ConsistentRead=True,
    )
    assert response["Items"] == [{"sk": N(i), "v": N(i * 10)} for i in range(3)]


@doc(PROJECTION_PAGE, "ProjectionExpression on Scan")
def test_scan_projection(ddb, table):
    name = table("S")
    ddb.put_item(TableName=name, Item={"pk": S("only"), "v": {"M": {"keep": N(1), "drop": N(2)}}})
    items = ddb.scan(TableName=name, ProjectionExpression="v.keep")["Items"]
    assert items == [{"v": {"M": {"keep": N(1)}}}]


@doc(PROJECTION_PAGE, "ProjectionExpression on BatchGetItem")
def test_batch_get_projection(ddb, t_s, key):
    request = {t_s: {"Keys": [key], "ProjectionExpression": "b, m.x", "ConsistentRead": True}}
    items = ddb.batch_get_item(RequestItems=request)["Responses"][t_s]
    assert items == [{"b": N(2), "m": {"M": {"x": N(1)}}}]


@pytest.mark.parametrize("expression", ["a,", ", a", "a b", "l[x]", "l[-1]", "m..x", "a[", ""])
@doc(PATHS_PAGE, "Document path syntax")
def test_malformed_projections_are_rejected(ddb, t_s, key, expression):
    code = code_of(ddb.get_item, TableName=t_s, Key=key, ProjectionExpression=expression)
    assert code == "ValidationException"


@doc(PROJECTION_PAGE, "Two paths in a projection may not overlap")
def test_overlapping_projection_paths_are_rejected(ddb, t_s, key):
    assert code_of(ddb.get_item, TableName=t_s, Key=key, ProjectionExpression="m, m.x") == "ValidationException"


@doc(PROJECTION_PAGE, "The same path twice in a projection is rejected")
def test_duplicate_projection_paths_are_rejected(ddb, t_s, key):
    assert code_of(ddb.get_item, TableName=t_s, Key=key, ProjectionExpression="a, a") == "ValidationException"


@doc(PROJECTION_PAGE, "Projection of a whole list or map")
def test_projection_of_whole_documents(ddb, t_s, key):
    assert projected(ddb, t_s, key, "l, m") == {"l": ITEM_BODY["l"], "m": ITEM_BODY["m"]}


@doc(PROJECTION_PAGE, "A projection reaches into a list element's map")
def test_projection_into_list_element_map(ddb, t_s, key):
    assert projected(ddb, t_s, key, "l[2].other2") == {"l": {"L": [{"M": {"other2": N(1)}}]}}


@doc(PROJECTION_PAGE, "Projection applies to GetItem of a missing item too")
def test_projection_of_a_missing_item(ddb, t_s, uid):
    assert get(ddb, t_s, {"pk": S(uid)}, ProjectionExpression="a") is None
