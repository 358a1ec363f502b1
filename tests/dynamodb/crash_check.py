"""Acknowledged DynamoDB writes across a node's crash, through the real SDK.

    crash_check.py load STATE SECONDS URL[,URL...]   write while a test kills nodes
    crash_check.py check STATE URL[,URL...]          read everything back

`load` creates the table, then for SECONDS four threads put items of their
own (every tenth of 100 KB, which the nodes store in parts), each call
through a random endpoint with the SDK's retries off. A call answered 200
is acknowledged. `check` reads every acknowledged item through every
endpoint given (BatchGetItem, ConsistentRead) and compares it whole. Exit
status 0 when every one is there and right; the reasons otherwise.

Read-modify-write items (counters, conditional writes) are checked by
tests/dynamodb_jepsen.rs.
"""

import json
import random
import sys
import threading
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

TABLE = "dynakv-crash-check"
THREADS = 4
# Every tenth put is an item of this many bytes (stored in parts).
LARGE_BYTES = 100 * 1024


def large(n):
    return n % 10 == 0


def client(url):
    config = Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=15)
    return boto3.client(
        "dynamodb", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id="crash", aws_secret_access_key="check", config=config,
    )


def create_table(clients):
    for _ in range(50):
        try:
            random.choice(clients).create_table(
                TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            )
            return
        except ClientError as error:
            if error.response["Error"]["Code"] == "ResourceInUseException":
                return
        except EndpointConnectionError:
            pass
        time.sleep(0.1)
    raise SystemExit("could not create the table")


def attempt(call, state, lock, kind):
    """Runs one write; records whether it is acknowledged, failed, or unknown."""
    try:
        call()
        outcome = "acked"
    except EndpointConnectionError:
        outcome = "refused"
    except ClientError as error:
        status = error.response["ResponseMetadata"].get("HTTPStatusCode", 0)
        outcome = "unknown" if status >= 500 else "refused"
    except Exception:  # a timeout or a dropped connection: it may have landed
        outcome = "unknown"
    with lock:
        state[kind][outcome] = state[kind].get(outcome, 0) + 1
    return outcome


def writer(number, clients, seconds, state, lock):
    end = time.time() + seconds
    n = 0
    while time.time() < end:
        n += 1
        pk = f"item-{number}-{n}"
        ddb = random.choice(clients)
        item = {"pk": {"S": pk}, "n": {"N": str(n)}}
        if large(n):
            item["blob"] = {"S": pk[-1] * LARGE_BYTES}
        put = lambda: ddb.put_item(TableName=TABLE, Item=item)
        if attempt(put, state, lock, "puts") == "acked":
            with lock:
                state["acked_items"].append(pk)


def load(path, seconds, urls):
    clients = [client(url) for url in urls]
    create_table(clients)
    state = {"puts": {}, "acked_items": []}
    lock = threading.Lock()
    threads = [
        threading.Thread(target=writer, args=(t, clients, seconds, state, lock), name=f"writer-{t}")
        for t in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with open(path, "w", encoding="utf-8") as out:
        json.dump(state, out)
    print(f"puts {state['puts']}")


def expected(pk):
    """The item put at pk (`item-THREAD-N`)."""
    n = int(pk.rsplit("-", 1)[1])
    item = {"pk": {"S": pk}, "n": {"N": str(n)}}
    if large(n):
        item["blob"] = {"S": pk[-1] * LARGE_BYTES}
    return item


def check(path, urls):
    with open(path, encoding="utf-8") as source:
        state = json.load(source)
    problems = []
    for url in urls:
        ddb = client(url)
        keys = state["acked_items"]
        for start in range(0, len(keys), 100):
            batch = [{"pk": {"S": pk}} for pk in keys[start:start + 100]]
            request = {TABLE: {"Keys": batch, "ConsistentRead": True}}
            found = {}
            while request:
                answer = ddb.batch_get_item(RequestItems=request)
                found.update((item["pk"]["S"], item) for item in answer["Responses"].get(TABLE, []))
                request = answer.get("UnprocessedKeys") or None
            lost = [key["pk"]["S"] for key in batch if key["pk"]["S"] not in found]
            if lost:
                problems.append(f"{url}: {len(lost)} acknowledged items missing, e.g. {lost[:3]}")
            damaged = [pk for pk, item in found.items() if item != expected(pk)]
            if damaged:
                problems.append(f"{url}: {len(damaged)} acknowledged items read back wrong, e.g. {damaged[:3]}")
    print(f"{len(state['acked_items'])} acknowledged items, puts {state['puts']}, checked through {len(urls)} endpoints")
    if problems:
        print("\n".join(problems))
        raise SystemExit(1)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "load":
        load(sys.argv[2], float(sys.argv[3]), sys.argv[4].split(","))
    elif len(sys.argv) == 4 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3].split(","))
    else:
        raise SystemExit(__doc__)
