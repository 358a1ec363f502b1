"""A table deleted and created again under its name, through every endpoint
of a cluster while their executors hold the old table in their caches.

    recreate_check.py URL[,URL...]

Every endpoint's executors first read the table (so each caches it), 50
items go in, then the table is deleted through one endpoint and created
again through another at once; then every endpoint writes items into the
new table. A Scan of it must find exactly the items written after the
re-creation: none of the old table's, and every new one acknowledged.
Exit status 0 when that holds.
"""

import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

TABLE = "dynakv-recreate-check"
EXECUTORS_PER_NODE = 4


def client(url):
    return boto3.client(
        "dynamodb", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id="recreate", aws_secret_access_key="check",
        config=Config(max_pool_connections=16),
    )


def create(ddb):
    ddb.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )


def scan_keys(ddb):
    keys, start = set(), None
    for _ in range(1000):
        request = {"TableName": TABLE, "ConsistentRead": True}
        if start:
            request["ExclusiveStartKey"] = start
        page = ddb.scan(**request)
        keys.update(item["pk"]["S"] for item in page["Items"])
        start = page.get("LastEvaluatedKey")
        if not start:
            return keys
    raise SystemExit("the scan did not end")


def main(urls):
    clients = [client(url) for url in urls]
    create(clients[0])
    with ThreadPoolExecutor(max_workers=EXECUTORS_PER_NODE * 2) as pool:
        # Every executor of every node reads the table: each caches it.
        for ddb in clients:
            list(pool.map(lambda n: ddb.get_item(TableName=TABLE, Key={"pk": {"S": f"warm-{n}"}}), range(32)))
        for n in range(50):
            clients[n % len(clients)].put_item(TableName=TABLE, Item={"pk": {"S": f"old-{n}"}})
        clients[0].delete_table(TableName=TABLE)
        created = time.monotonic()
        create(clients[1 % len(clients)])
        print(f"created again {time.monotonic() - created:.2f} s after the deletion")

        def put_new(n):
            try:
                clients[n % len(clients)].put_item(TableName=TABLE, Item={"pk": {"S": f"new-{n}"}})
                return f"new-{n}"
            except ClientError as error:
                return error.response["Error"]["Code"]

        outcomes = list(pool.map(put_new, range(200)))
    acked = {outcome for outcome in outcomes if outcome.startswith("new-")}
    refused = [outcome for outcome in outcomes if not outcome.startswith("new-")]
    problems = []
    for url, ddb in zip(urls, clients):
        found = scan_keys(ddb)
        old = sorted(key for key in found if key.startswith("old-"))
        missing = sorted(acked - found)
        if old:
            problems.append(f"{url}: the new table shows {len(old)} items of the old one, e.g. {old[:3]}")
        if missing:
            problems.append(f"{url}: {len(missing)} acknowledged items missing, e.g. {missing[:3]}")
    print(f"{len(acked)} new items acknowledged, {len(refused)} refused {sorted(set(refused))}")
    if problems or refused:
        print("\n".join(problems))
        raise SystemExit(1)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1].split(","))
