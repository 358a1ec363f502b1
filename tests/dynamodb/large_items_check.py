"""Large items through the real SDK, for a test that counts the records
the nodes hold between the steps.

    large_items_check.py create URL   the table
    large_items_check.py churn URL    large items put over each other, then a small one
    large_items_check.py delete URL   the item removed

The table has one item: `churn` puts three items of 390 KB over each other,
updates the last, and puts a small one over it; `delete` deletes it. Exit
status 0 when every answer and read-back was right.
"""

import sys

import boto3
from botocore.config import Config

TABLE = "dynakv-large-items"
KEY = {"pk": {"S": "the-item"}}
LARGE_BYTES = 390 * 1024


def client(url):
    config = Config(region_name="us-east-1", retries={"max_attempts": 10, "mode": "standard"})
    return boto3.client(
        "dynamodb", endpoint_url=url, aws_access_key_id="test", aws_secret_access_key="test", config=config
    )


def read(ddb):
    return ddb.get_item(TableName=TABLE, Key=KEY, ConsistentRead=True).get("Item")


def create(ddb):
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.get_waiter("table_exists").wait(TableName=TABLE)


def churn(ddb):
    for fill in "abc":
        item = {**KEY, "blob": {"S": fill * LARGE_BYTES}}
        ddb.put_item(TableName=TABLE, Item=item)
        assert read(ddb) == item, f"the item of {fill!r} did not read back"
    ddb.update_item(
        TableName=TABLE,
        Key=KEY,
        UpdateExpression="SET tail = :t",
        ExpressionAttributeValues={":t": {"S": "t" * 5000}},
    )
    assert read(ddb) == {**KEY, "blob": {"S": "c" * LARGE_BYTES}, "tail": {"S": "t" * 5000}}
    small = {**KEY, "a": {"S": "small"}}
    ddb.put_item(TableName=TABLE, Item=small)
    assert read(ddb) == small


def delete(ddb):
    ddb.put_item(TableName=TABLE, Item={**KEY, "blob": {"S": "d" * LARGE_BYTES}})
    ddb.delete_item(TableName=TABLE, Key=KEY)
    assert read(ddb) is None


if __name__ == "__main__":
    step, url = sys.argv[1], sys.argv[2]
    {"create": create, "churn": churn, "delete": delete}[step](client(url))
