"""UpdateExpression clauses: SET (with arithmetic, if_not_exists, list_append), REMOVE, ADD and DELETE."""

import pytest
from conftest import N, S, code_of, doc, get

UPDATE_PAGE = "Using update expressions in DynamoDB"


@pytest.fixture
def key(ddb, t_s, uid):
    item = {
        "pk": S(uid),
        "n": N(10),
        "s": S("text"),
        "l": {"L": [S("a"), S("b"), S("c")]},
        "m": {"M": {"x": N(1), "y": {"M": {"z": S("deep")}}}},
        "ss": {"SS": ["red", "green", "blue"]},
        "ns": {"NS": ["1", "2"]},
    }
    ddb.put_item(TableName=t_s, Item=item)
    return {"pk": S(uid)}


def update(ddb, table_name, key, expression, values=None, names=None):
    request = {"TableName": table_name, "Key": key, "UpdateExpression": expression}
    if values:
        request["ExpressionAttributeValues"] = values
    if names:
        request["ExpressionAttributeNames"] = names
    ddb.update_item(**request)
    return get(ddb, table_name, key)


def update_error(ddb, table_name, key, expression, values=None, names=None):
    request = {"TableName": table_name, "Key": key, "UpdateExpression": expression}
    if values:
        request["ExpressionAttributeValues"] = values
    if names:
        request["ExpressionAttributeNames"] = names
    return code_of(ddb.update_item, **request)


def sorted_members(value):
    ((kind, members),) = value.items()
    return kind, sorted(members)


@doc(UPDATE_PAGE, "SET: adding or replacing top-level attributes")
def test_set_adds_and_replaces(ddb, t_s, key):
    item = update(ddb, t_s, key, "SET fresh = :a, s = :b", {":a": S("new"), ":b": S("replaced")})
    assert item["fresh"] == S("new")
    assert item["s"] == S("replaced")
    assert item["n"] == N(10)


@doc(UPDATE_PAGE, "SET: an attribute from another attribute")
def test_set_copies_another_attribute(ddb, t_s, key):
    item = update(ddb, t_s, key, "SET duplicate = m")
    assert item["duplicate"] == item["m"]


@pytest.mark.parametrize(
    "expression,values,result",
    [
        ("SET n = n + :d", {":d": N(5)}, "15"),
        ("SET n = n - :d", {":d": N(15)}, "-5"),
        ("SET n = :d + n", {":d": N("0.5")}, "10.5"),
        ("SET n = :a - :b", {":a": N(1), ":b": N(3)}, "-2"),
        ("SET n = n + n", None, "20"),
        ("SET n = n - :d", {":d": N("0.1")}, "9.9"),
    ],
)
@doc(UPDATE_PAGE, "SET: incrementing and decrementing numeric attributes (+ and -)")
def test_set_arithmetic(ddb, t_s, key, expression, values, result):
    assert update(ddb, t_s, key, expression, values)["n"] == N(result)


@doc(UPDATE_PAGE, "SET: arithmetic is exact to 38 digits")
def test_set_arithmetic_keeps_38_digits(ddb, t_s, key):
    values = {":big": N("9999999999999999999999999999999999999"), ":one": N("0.1")}
    item = update(ddb, t_s, key, "SET n = :big + :one", values)
    assert item["n"] == N("9999999999999999999999999999999999999.1")


@doc(UPDATE_PAGE, "SET: arithmetic on an attribute that does not exist fails")
def test_set_arithmetic_on_absent_attribute_is_rejected(ddb, t_s, key):
    assert update_error(ddb, t_s, key, "SET n = nothing + :d", {":d": N(1)}) == "ValidationException"


@doc(UPDATE_PAGE, "SET: + and - apply to numbers only")
def test_set_arithmetic_on_a_string_is_rejected(ddb, t_s, key):
    assert update_error(ddb, t_s, key, "SET n = s + :d", {":d": N(1)}) == "ValidationException"


@doc(UPDATE_PAGE, "SET: + and - apply to numbers only")
def test_set_arithmetic_with_a_string_value_is_rejected(ddb, t_s, key):
    assert update_error(ddb, t_s, key, "SET n = n + :d", {":d": S("1")}) == "ValidationException"


@doc(UPDATE_PAGE, "SET: preventing overwrites with if_not_exists")
def test_if_not_exists_keeps_an_existing_value(ddb, t_s, key):
    item = update(ddb, t_s, key, "SET n = if_not_exists(n, :d)", {":d": N(99)})
    assert item["n"] == N(10)


@doc(UPDATE_PAGE, "SET: preventing overwrites with if_not_exists")
def test_if_not_exists_sets_an_absent_attribute(ddb, t_s, key):
    item = update(ddb, t_s, key, "SET fresh = if_not_exists(fresh, :d)", {":d": N(99)})
    assert item["fresh"] == N(99)


@doc(UPDATE_PAGE, "SET: if_not_exists inside arithmetic, a counter that starts at zero")
def test_if_not_exists_in_arithmetic(ddb, t_s, key):
    values = {":zero": N(0), ":one": N(1)}
    item = update(ddb, t_s, key, "SET hits = if_not_exists(hits, :zero) + :one", values)
    assert item["hits"] == N(1)
    item = update(ddb, t_s, key, "SET hits = if_not_exists(hits, :zero) + :one", values)
    assert item["hits"] == N(2)


@doc(UPDATE_PAGE, "SET: appending elements to a list with list_append")
def test_list_append_at_the_end(ddb, t_s, key):
    item = update(ddb, t_s, key, "SET l = list_append(l, :more)", {":more": {"L": [S("d"), N(5)]}})
    assert item["l"] == {"L": [S("a"), S("b"), S("c"), S("d"), N(5)]}


@doc(UPDATE_PAGE, "SET: list_append with the operands swapped prepends")
def test_list_append_at_the_start(ddb, t_s, key):
    item = update(ddb, t_s, key, "SET l = list_append(:more, l)", {":more": {"L": [S("z")]}})
    assert item["l"] == {"L": [S("z"), S("a"), S("b"), S("c")]}


@doc(UPDATE_PAGE, "SET: list_append with if_not_exists on an absent list")
def test_list_append_to_an_absent_list(ddb, t_s, key):
    values = {":empty": {"L": []}, ":more": {"L": [N(1)]}}
    item = update(ddb, t_s, key, "SET fresh = list_append(if_not_exists(fresh, :empty), :more)", values)
    assert item["fresh"] == {"L": [N(1)]}


@doc(UPDATE_PAGE, "SET: list_append takes two lists")
def test_list_append_of_a_non_list_is_rejected(ddb, t_s, key):
    assert update_error(ddb, t_s, key, "SET l = list_append(l, :v)", {":v": S("d")}) == "ValidationException"


@doc(UPDATE_PAGE, "SET: modifying a list element by index")
def test_set_list_element(ddb, t_s, key):
    item = update(ddb, t_s, key, "SET l[1] = :v", {":v": N(2)})
    assert item["l"] == {"L": [S("a"), N(2), S("c")]}


@doc(UPDATE_PAGE, "SET: an index beyond the end of the list appends the element")
def test_set_list_element_past_the_end_appends(ddb, t_s, key):
    item = update(ddb, t_s, key, "SET l[10] = :v", {":v": S("end")})
    assert item["l"] == {"L": [S("a"), S("b"), S("c"), S("end")]}


@doc(UPDATE_PAGE, "SET: adding nested map attributes")
def test_set_nested_map_attribute(ddb, t_s, key):
    item = update(ddb, t_s, key, "SET m.y.w = :v, m.x = :x", {":v": S("new"), ":x": N(2)})
    assert item["m"] == {"M": {"x": N(2), "y": {"M": {"z": S("deep"), "w": S("new")}}}}


@doc(UPDATE_PAGE, "SET: the parent of a nested path must exist")
def test_set_under_an_absent_parent_is_rejected(ddb, t_s, key):
    assert update_error(ddb, t_s, key, "SET nothing.child = :v", {":v": N(1)}) == "ValidationException"


@doc(UPDATE_PAGE, "SET: a path through a value that is not a map or list")
def test_set_through_a_scalar_is_rejected(ddb, t_s, key):
    assert update_error(ddb, t_s, key, "SET s.child = :v", {":v": N(1)}) == "ValidationException"


@doc("Expression attribute names (aliases) in DynamoDB", "Names in update expressions")
def test_set_with_name_placeholders(ddb, t_s, key):
    item = update(ddb, t_s, key, "SET #a.#b = :v", {":v": N(7)}, {"#a": "m", "#b": "x"})
    assert item["m"]["M"]["x"] == N(7)


@doc(UPDATE_PAGE, "REMOVE: removing attributes from an item")
def test_remove_attributes(ddb, t_s, key):
    item = update(ddb, t_s, key, "REMOVE s, n")
    assert "s" not in item and "n" not in item
    assert "l" in item


@doc(UPDATE_PAGE, "REMOVE: removing an attribute that does not exist is not an error")
def test_remove_absent_attribute(ddb, t_s, key):
    before = get(ddb, t_s, key)
    assert update(ddb, t_s, key, "REMOVE nothing") == before


@doc(UPDATE_PAGE, "REMOVE: removing elements from a list shifts the rest")
def test_remove_list_elements(ddb, t_s, key):
    item = update(ddb, t_s, key, "REMOVE l[0]")
    assert item["l"] == {"L": [S("b"), S("c")]}


@doc(UPDATE_PAGE, "REMOVE: nested map attributes")
def test_remove_nested_attribute(ddb, t_s, key):
    item = update(ddb, t_s, key, "REMOVE m.y.z")
    assert item["m"] == {"M": {"x": N(1), "y": {"M": {}}}}


@doc(UPDATE_PAGE, "REMOVE: an index past the end removes nothing")
def test_remove_list_element_past_the_end(ddb, t_s, key):
    item = update(ddb, t_s, key, "REMOVE l[9]")
    assert item["l"] == {"L": [S("a"), S("b"), S("c")]}


@doc(UPDATE_PAGE, "ADD: adding a number to a number")
def test_add_to_a_number(ddb, t_s, key):
    assert update(ddb, t_s, key, "ADD n :d", {":d": N(-3)})["n"] == N(7)


@doc(UPDATE_PAGE, "ADD: an absent number attribute starts at 0")
def test_add_to_an_absent_number(ddb, t_s, key):
    assert update(ddb, t_s, key, "ADD fresh :d", {":d": N("2.5")})["fresh"] == N("2.5")


@doc(UPDATE_PAGE, "ADD: adding elements to a set")
def test_add_to_a_set(ddb, t_s, key):
    item = update(ddb, t_s, key, "ADD ss :v", {":v": {"SS": ["red", "yellow"]}})
    assert sorted_members(item["ss"]) == ("SS", ["blue", "green", "red", "yellow"])


@doc(UPDATE_PAGE, "ADD: an absent set attribute is created")
def test_add_to_an_absent_set(ddb, t_s, key):
    item = update(ddb, t_s, key, "ADD fresh :v", {":v": {"NS": ["5", "6"]}})
    assert sorted_members(item["fresh"]) == ("NS", ["5", "6"])


@doc(UPDATE_PAGE, "ADD: the set types must match")
def test_add_set_of_another_type_is_rejected(ddb, t_s, key):
    assert update_error(ddb, t_s, key, "ADD ss :v", {":v": {"NS": ["1"]}}) == "ValidationException"


@doc(UPDATE_PAGE, "ADD: a number to a number, or a set to a set")
def test_add_number_to_a_string_is_rejected(ddb, t_s, key):
    assert update_error(ddb, t_s, key, "ADD s :v", {":v": N(1)}) == "ValidationException"


@doc(UPDATE_PAGE, "ADD: supports only number and set data types")
def test_add_a_string_is_rejected(ddb, t_s, key):
    assert update_error(ddb, t_s, key, "ADD fresh :v", {":v": S("x")}) == "ValidationException"


@doc(UPDATE_PAGE, "ADD: supports only number and set data types")
def test_add_a_list_is_rejected(ddb, t_s, key):
    assert update_error(ddb, t_s, key, "ADD l :v", {":v": {"L": [S("d")]}}) == "ValidationException"


@doc(UPDATE_PAGE, "DELETE: removing elements from a set")
def test_delete_from_a_set(ddb, t_s, key):
    item = update(ddb, t_s, key, "DELETE ss :v", {":v": {"SS": ["red", "purple"]}})
    assert sorted_members(item["ss"]) == ("SS", ["blue", "green"])


@doc(UPDATE_PAGE, "DELETE: a set left empty is removed")
def test_delete_every_element_removes_the_attribute(ddb, t_s, key):
    item = update(ddb, t_s, key, "DELETE ns :v", {":v": {"NS": ["1", "2.0"]}})
    assert "ns" not in item


@doc(UPDATE_PAGE, "DELETE: from an absent attribute is not an error")
def test_delete_from_an_absent_set(ddb, t_s, key):
    item = update(ddb, t_s, key, "DELETE nothing :v", {":v": {"SS": ["a"]}})
    assert "nothing" not in item


@doc(UPDATE_PAGE, "DELETE: the value must be a set")
def test_delete_with_a_scalar_is_rejected(ddb, t_s, key):
    assert update_error(ddb, t_s, key, "DELETE ss :v", {":v": S("red")}) == "ValidationException"


@doc(UPDATE_PAGE, "DELETE: the set types must match")
def test_delete_set_of_another_type_is_rejected(ddb, t_s, key):
    assert update_error(ddb, t_s, key, "DELETE ss :v", {":v": {"NS": ["1"]}}) == "ValidationException"


@doc(UPDATE_PAGE, "An update expression may hold every clause once")
def test_all_four_clauses_in_one_expression(ddb, t_s, key):
    expression = "SET fresh = :f REMOVE s ADD n :one DELETE ss :red"
    values = {":f": S("f"), ":one": N(1), ":red": {"SS": ["red"]}}
    item = update(ddb, t_s, key, expression, values)
    assert item["fresh"] == S("f")
    assert "s" not in item
    assert item["n"] == N(11)
    assert sorted_members(item["ss"]) == ("SS", ["blue", "green"])


@doc(UPDATE_PAGE, "Clause keywords are case-insensitive")
def test_clause_keywords_in_lower_case(ddb, t_s, key):
    item = update(ddb, t_s, key, "set fresh = :f remove s", {":f": N(1)})
    assert item["fresh"] == N(1) and "s" not in item


@doc(UPDATE_PAGE, "Each clause may appear only once")
def test_repeated_clause_is_rejected(ddb, t_s, key):
    assert update_error(ddb, t_s, key, "SET a1 = :v SET a2 = :v", {":v": N(1)}) == "ValidationException"


@doc(UPDATE_PAGE, "One path may be updated only once per expression")
def test_same_path_twice_is_rejected(ddb, t_s, key):
    assert update_error(ddb, t_s, key, "SET n = :a, n = :b", {":a": N(1), ":b": N(2)}) == "ValidationException"


@doc(UPDATE_PAGE, "Overlapping document paths are rejected")
def test_overlapping_paths_are_rejected(ddb, t_s, key):
    assert update_error(ddb, t_s, key, "SET m = :a REMOVE m.x", {":a": {"M": {}}}) == "ValidationException"


@doc(UPDATE_PAGE, "Overlapping document paths are rejected")
def test_set_and_remove_of_the_same_attribute_is_rejected(ddb, t_s, key):
    assert update_error(ddb, t_s, key, "SET n = :a REMOVE n", {":a": N(1)}) == "ValidationException"


@pytest.mark.parametrize(
    "expression",
    ["SET", "SET n", "SET n = ", "REMOVE", "ADD n", "DELETE ss", "SET n = :v,", "UPSERT n = :v", "SET n := :v"],
)
@doc(UPDATE_PAGE, "Syntax of update expressions")
def test_malformed_update_expressions_are_rejected(ddb, t_s, key, expression):
    values = {":v": N(1)} if ":v" in expression else None
    assert update_error(ddb, t_s, key, expression, values) == "ValidationException"


@doc("API_UpdateItem", "UpdateExpression: key attributes cannot be updated")
def test_updating_the_hash_key_is_rejected(ddb, t_s, key):
    assert update_error(ddb, t_s, key, "SET pk = :v", {":v": S("other")}) == "ValidationException"


@doc("API_UpdateItem", "UpdateExpression: key attributes cannot be updated")
def test_removing_the_range_key_is_rejected(ddb, t_sn, uid):
    key = {"pk": S(uid), "sk": N(1)}
    ddb.put_item(TableName=t_sn, Item=key)
    assert update_error(ddb, t_sn, key, "REMOVE sk") == "ValidationException"


@doc(UPDATE_PAGE, "SET: the value of an attribute is a value, path or function")
def test_set_to_an_expression_of_functions(ddb, t_s, key):
    values = {":l": {"L": [S("x")]}}
    item = update(ddb, t_s, key, "SET l2 = list_append(if_not_exists(l2, :l), l)", values)
    assert item["l2"] == {"L": [S("x"), S("a"), S("b"), S("c")]}


@doc(UPDATE_PAGE, "SET: arithmetic that leaves 38 digits is exact")
def test_arithmetic_with_small_fractions(ddb, t_s, key):
    item = update(ddb, t_s, key, "SET n = :a + :b", {":a": N("0.1"), ":b": N("0.2")})
    assert item["n"] == N("0.3")


@doc(UPDATE_PAGE, "SET: arithmetic results beyond the number range are rejected")
def test_arithmetic_overflow_is_rejected(ddb, t_s, key):
    values = {":max": N("9.9999999999999999999999999999999999999E+125")}
    assert update_error(ddb, t_s, key, "SET n = :max + :max", values) == "ValidationException"
