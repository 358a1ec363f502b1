"""CreateTable, DescribeTable, ListTables, DeleteTable and UpdateTable."""

import pytest
from conftest import code_of, error_of, doc, unique_name, wait_for_status, wait_until_gone, paginate


def create_request(name, hash_type="S", range_type=None):
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    definitions = [{"AttributeName": "pk", "AttributeType": hash_type}]
    if range_type:
        schema.append({"AttributeName": "sk", "KeyType": "RANGE"})
        definitions.append({"AttributeName": "sk", "AttributeType": range_type})
    return {
        "TableName": name,
        "KeySchema": schema,
        "AttributeDefinitions": definitions,
        "BillingMode": "PAY_PER_REQUEST",
    }


@doc("API_CreateTable", "Description: the response has TableStatus CREATING")
def test_create_table_answers_creating_with_the_schema(ddb, table):
    name = unique_name()
    table.adopt(name)
    description = ddb.create_table(**create_request(name, "S", "N"))["TableDescription"]
    assert description["TableName"] == name
    assert description["TableStatus"] == "CREATING"
    assert description["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert sorted(description["AttributeDefinitions"], key=lambda d: d["AttributeName"]) == [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "N"},
    ]
    wait_for_status(ddb, name, "ACTIVE")


@doc("API_CreateTable", "Description: TableStatus becomes ACTIVE")
def test_created_table_becomes_active(ddb, table):
    name = table("S")
    assert ddb.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"


@pytest.mark.parametrize("hash_type", ["S", "N", "B"])
@pytest.mark.parametrize("range_type", [None, "S", "N", "B"])
@doc("API_AttributeDefinition", "AttributeType: S, N or B")
def test_create_table_with_every_key_type(ddb, table, hash_type, range_type):
    name = table(hash_type, range_type)
    described = ddb.describe_table(TableName=name)["Table"]
    types = {d["AttributeName"]: d["AttributeType"] for d in described["AttributeDefinitions"]}
    expected = {"pk": hash_type}
    if range_type:
        expected["sk"] = range_type
    assert types == expected


@doc("API_CreateTable", "Errors: ResourceInUseException")
def test_create_existing_table_is_resource_in_use(ddb, table):
    name = table("S")
    code, _, status = error_of(ddb.create_table, **create_request(name))
    assert (code, status) == ("ResourceInUseException", 400)


@pytest.mark.parametrize("name", ["ab", "x" * 256, "has space", "has/slash", "ümlaut", "a:b"])
@doc("Constraints in Amazon DynamoDB", "Naming rules: 3-255 characters of a-z A-Z 0-9 _ - .")
def test_create_table_rejects_bad_names(ddb, table, name):
    table.adopt(name)
    code, _, status = error_of(ddb.create_table, **create_request(name))
    assert (code, status) == ("ValidationException", 400)


@pytest.mark.parametrize("suffix", ["abc", "A.b-c_d", "0" * 3])
@doc("Constraints in Amazon DynamoDB", "Naming rules: 3-255 characters of a-z A-Z 0-9 _ - .")
def test_create_table_accepts_every_allowed_name_character(ddb, table, suffix):
    name = unique_name() + suffix
    assert table("S", TableName=name) == name


@doc("Constraints in Amazon DynamoDB", "Naming rules: table names up to 255 characters")
def test_create_table_accepts_a_255_character_name(ddb, table):
    name = unique_name()
    name = name + "x" * (255 - len(name))
    assert table("S", TableName=name) == name


@doc("API_CreateTable", "AttributeDefinitions: describe the key schema")
def test_create_table_key_without_definition_is_rejected(ddb, table):
    name = unique_name()
    table.adopt(name)
    request = create_request(name)
    request["AttributeDefinitions"] = [{"AttributeName": "other", "AttributeType": "S"}]
    assert code_of(ddb.create_table, **request) == "ValidationException"


@doc("API_CreateTable", "AttributeDefinitions: only key attributes of the table and its indexes")
def test_create_table_extra_definition_is_rejected(ddb, table):
    name = unique_name()
    table.adopt(name)
    request = create_request(name)
    request["AttributeDefinitions"].append({"AttributeName": "extra", "AttributeType": "S"})
    assert code_of(ddb.create_table, **request) == "ValidationException"


@pytest.mark.parametrize("attribute_type", ["BOOL", "SS", "M", "L", "X"])
@doc("API_AttributeDefinition", "AttributeType: S, N or B")
def test_create_table_rejects_non_scalar_key_types(ddb, table, attribute_type):
    name = unique_name()
    table.adopt(name)
    request = create_request(name)
    request["AttributeDefinitions"][0]["AttributeType"] = attribute_type
    assert code_of(ddb.create_table, **request) == "ValidationException"


@doc("API_CreateTable", "KeySchema: exactly one HASH, then at most one RANGE")
def test_create_table_rejects_two_hash_keys(ddb, table):
    name = unique_name()
    table.adopt(name)
    request = create_request(name, "S", "S")
    request["KeySchema"][1]["KeyType"] = "HASH"
    assert code_of(ddb.create_table, **request) == "ValidationException"


@doc("API_CreateTable", "KeySchema: the first element must be the HASH key")
def test_create_table_rejects_range_first(ddb, table):
    name = unique_name()
    table.adopt(name)
    request = create_request(name, "S", "S")
    request["KeySchema"].reverse()
    assert code_of(ddb.create_table, **request) == "ValidationException"


@doc("API_CreateTable", "KeySchema: array members minimum 1, maximum 2")
def test_create_table_rejects_three_key_elements(ddb, table):
    name = unique_name()
    table.adopt(name)
    request = create_request(name, "S", "S")
    request["KeySchema"].append({"AttributeName": "third", "KeyType": "RANGE"})
    request["AttributeDefinitions"].append({"AttributeName": "third", "AttributeType": "S"})
    assert code_of(ddb.create_table, **request) == "ValidationException"


@doc("API_CreateTable", "KeySchema: required")
def test_create_table_rejects_empty_key_schema(ddb, table):
    name = unique_name()
    table.adopt(name)
    request = create_request(name)
    request["KeySchema"] = []
    assert code_of(ddb.create_table, **request) == "ValidationException"


@doc("API_CreateTable", "BillingMode PROVISIONED: ProvisionedThroughput required")
def test_create_provisioned_table_without_throughput_is_rejected(ddb, table):
    name = unique_name()
    table.adopt(name)
    request = create_request(name)
    request["BillingMode"] = "PROVISIONED"
    assert code_of(ddb.create_table, **request) == "ValidationException"


@doc("API_CreateTable", "ProvisionedThroughput: not with BillingMode PAY_PER_REQUEST")
def test_create_on_demand_table_with_throughput_is_rejected(ddb, table):
    name = unique_name()
    table.adopt(name)
    request = create_request(name)
    request["ProvisionedThroughput"] = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    assert code_of(ddb.create_table, **request) == "ValidationException"


@pytest.mark.parametrize("units", [(0, 1), (1, 0)])
@doc("API_ProvisionedThroughput", "ReadCapacityUnits/WriteCapacityUnits: minimum 1")
def test_create_table_rejects_zero_capacity(ddb, table, units):
    name = unique_name()
    table.adopt(name)
    request = create_request(name)
    request["BillingMode"] = "PROVISIONED"
    request["ProvisionedThroughput"] = {"ReadCapacityUnits": units[0], "WriteCapacityUnits": units[1]}
    assert code_of(ddb.create_table, **request) == "ValidationException"


@doc("API_CreateTable", "BillingMode: valid values PROVISIONED | PAY_PER_REQUEST")
def test_create_table_rejects_unknown_billing_mode(ddb, table):
    name = unique_name()
    table.adopt(name)
    request = create_request(name)
    request["BillingMode"] = "FREE"
    assert code_of(ddb.create_table, **request) == "ValidationException"


@doc("API_DescribeTable", "Response: Table (TableDescription)")
def test_describe_table_of_provisioned_table(ddb, table):
    name = table("S", "B", ProvisionedThroughput={"ReadCapacityUnits": 3, "WriteCapacityUnits": 4})
    described = ddb.describe_table(TableName=name)["Table"]
    assert described["TableName"] == name
    assert described["TableStatus"] == "ACTIVE"
    assert described["ItemCount"] == 0
    assert described["TableSizeBytes"] == 0
    assert described["ProvisionedThroughput"]["ReadCapacityUnits"] == 3
    assert described["ProvisionedThroughput"]["WriteCapacityUnits"] == 4
    assert described["TableArn"].endswith(":table/" + name)
    assert "CreationDateTime" in described


@doc("API_BillingModeSummary", "BillingMode")
def test_describe_table_of_on_demand_table_names_its_billing_mode(ddb, table):
    name = table("S")
    described = ddb.describe_table(TableName=name)["Table"]
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


@doc("API_DescribeTable", "Errors: ResourceNotFoundException")
def test_describe_missing_table_is_not_found(ddb):
    code, _, status = error_of(ddb.describe_table, TableName=unique_name())
    assert (code, status) == ("ResourceNotFoundException", 400)


@doc("API_ListTables", "Response: TableNames")
def test_list_tables_includes_a_new_table(ddb, table):
    name = table("S")
    pages = paginate(ddb.list_tables, "ExclusiveStartTableName", "LastEvaluatedTableName")
    names = [n for page in pages for n in page["TableNames"]]
    assert name in names


@doc("API_ListTables", "Limit and LastEvaluatedTableName / ExclusiveStartTableName")
def test_list_tables_paginates_each_table_exactly_once(ddb, table):
    created = {table("S") for _ in range(3)}
    pages = paginate(ddb.list_tables, "ExclusiveStartTableName", "LastEvaluatedTableName", Limit=1)
    assert all(len(page["TableNames"]) <= 1 for page in pages)
    names = [n for page in pages for n in page["TableNames"]]
    assert len(names) == len(set(names))
    assert created <= set(names)


@doc("API_ListTables", "Limit: up to 100 table names per page")
def test_list_tables_page_of_two(ddb, table):
    for _ in range(3):
        table("S")
    page = ddb.list_tables(Limit=2)
    assert len(page["TableNames"]) == 2
    assert page["LastEvaluatedTableName"] == page["TableNames"][-1]


@doc("API_ListTables", "ExclusiveStartTableName: the next page starts after it")
def test_list_tables_resumes_after_the_start_name(ddb, table):
    table("S")
    table("S")
    first = ddb.list_tables(Limit=1)["TableNames"]
    rest = ddb.list_tables(ExclusiveStartTableName=first[0])["TableNames"]
    assert first[0] not in rest


@pytest.mark.parametrize("limit", [0, 101])
@doc("API_ListTables", "Limit: valid range 1 to 100")
def test_list_tables_rejects_limit_out_of_range(ddb, limit):
    assert code_of(ddb.list_tables, Limit=limit) == "ValidationException"


@doc("API_DeleteTable", "Response: TableDescription, TableStatus DELETING")
def test_delete_table_answers_deleting(ddb, table):
    name = table("S", "S")
    description = ddb.delete_table(TableName=name)["TableDescription"]
    assert description["TableName"] == name
    assert description["TableStatus"] == "DELETING"
    wait_until_gone(ddb, name)


@doc("API_DeleteTable", "Description: the table and all of its items are deleted")
def test_deleted_table_is_gone_and_its_name_reusable(ddb, table):
    name = table("S")
    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}})
    ddb.delete_table(TableName=name)
    wait_until_gone(ddb, name)
    assert code_of(ddb.describe_table, TableName=name) == "ResourceNotFoundException"
    table("S", TableName=name)
    assert ddb.scan(TableName=name)["Items"] == []


@doc("API_DeleteTable", "Errors: ResourceNotFoundException")
def test_delete_missing_table_is_not_found(ddb):
    code, _, status = error_of(ddb.delete_table, TableName=unique_name())
    assert (code, status) == ("ResourceNotFoundException", 400)


@doc("API_UpdateTable", "BillingMode and ProvisionedThroughput")
def test_update_table_from_on_demand_to_provisioned(ddb, table):
    name = table("S")
    description = ddb.update_table(
        TableName=name,
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 7, "WriteCapacityUnits": 8},
    )["TableDescription"]
    assert description["TableName"] == name
    wait_for_status(ddb, name, "ACTIVE")
    described = ddb.describe_table(TableName=name)["Table"]
    assert described["ProvisionedThroughput"]["ReadCapacityUnits"] == 7
    assert described["ProvisionedThroughput"]["WriteCapacityUnits"] == 8
    assert described.get("BillingModeSummary", {"BillingMode": "PROVISIONED"})["BillingMode"] == "PROVISIONED"


@doc("API_UpdateTable", "ProvisionedThroughput: the new settings")
def test_update_table_changes_provisioned_throughput(ddb, table):
    name = table("S", ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})
    ddb.update_table(TableName=name, ProvisionedThroughput={"ReadCapacityUnits": 2, "WriteCapacityUnits": 3})
    wait_for_status(ddb, name, "ACTIVE")
    throughput = ddb.describe_table(TableName=name)["Table"]["ProvisionedThroughput"]
    assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (2, 3)


@doc("API_UpdateTable", "Description: the table keeps its items")
def test_update_table_keeps_items(ddb, table):
    name = table("S", ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})
    ddb.put_item(TableName=name, Item={"pk": {"S": "kept"}})
    ddb.update_table(TableName=name, ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5})
    wait_for_status(ddb, name, "ACTIVE")
    item = ddb.get_item(TableName=name, Key={"pk": {"S": "kept"}}, ConsistentRead=True)["Item"]
    assert item == {"pk": {"S": "kept"}}


@doc("API_UpdateTable", "Errors: ResourceNotFoundException")
def test_update_missing_table_is_not_found(ddb):
    code = code_of(
        ddb.update_table,
        TableName=unique_name(),
        ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
    )
    assert code == "ResourceNotFoundException"


@doc("API_UpdateTable", "ProvisionedThroughput: minimum 1")
def test_update_table_rejects_zero_capacity(ddb, table):
    name = table("S", ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})
    code = code_of(
        ddb.update_table, TableName=name, ProvisionedThroughput={"ReadCapacityUnits": 0, "WriteCapacityUnits": 1}
    )
    assert code == "ValidationException"


@doc("API_UpdateTable", "Request Parameters: one of the updatable settings is required")
def test_update_table_with_nothing_to_change_is_rejected(ddb, table):
    name = table("S")
    assert code_of(ddb.update_table, TableName=name) == "ValidationException"


@doc("API_ResourceNotFoundException / Error handling with DynamoDB", "ResourceNotFoundException")
def test_item_operations_on_missing_table_are_not_found(ddb):
    name = unique_name()
    key = {"pk": {"S": "a"}}
    assert code_of(ddb.get_item, TableName=name, Key=key) == "ResourceNotFoundException"
    assert code_of(ddb.put_item, TableName=name, Item=key) == "ResourceNotFoundException"
    assert code_of(ddb.delete_item, TableName=name, Key=key) == "ResourceNotFoundException"
    assert code_of(ddb.update_item, TableName=name, Key=key) == "ResourceNotFoundException"
    assert code_of(ddb.scan, TableName=name) == "ResourceNotFoundException"
    condition = {"KeyConditionExpression": "pk = :v", "ExpressionAttributeValues": {":v": {"S": "a"}}}
    assert code_of(ddb.query, TableName=name, **condition) == "ResourceNotFoundException"
