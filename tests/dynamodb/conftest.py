"""Fixtures of the DynamoDB API conformance suite.

The suite speaks to one or more endpoints of a DynamoDB-compatible server
through boto3's low-level client, exactly as an application would. Each call
goes through an endpoint drawn at random, so a cluster is held to giving the
same answers whichever node a request lands on.

Environment:
- DYNAKV_DYNAMODB_ENDPOINTS: comma-separated URLs (default http://127.0.0.1:8000).
- DYNAKV_DYNAMODB_SEED: seed of the endpoint choice, to replay a run
  (printed in the report header).
- AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY: used when set, else fixed dummies.
- DYNAKV_DYNAMODB_KNOWN_GAPS: a file of lines `TEST_NAME  reason`: those tests
  are expected to fail, strictly (one that passes fails the run, so the file
  shrinks as gaps close). `dynakv-gaps.txt` lists dynakv's.

Every test names the documentation page that decides its expected result
with the ``doc`` marker: ``@doc("API_PutItem", "ConditionExpression")`` reads
"the API reference page PutItem, its section on ConditionExpression". Pages
named ``API_*`` are in the DynamoDB API Reference; the others are titles of
the DynamoDB Developer Guide. A test without the marker fails at collection.
"""

import itertools
import os
import random
import time
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINTS_DEFAULT = "http://127.0.0.1:8000"
REGION = "us-east-1"
DUMMY_ACCESS_KEY_ID = "dynakvtest"
DUMMY_SECRET_ACCESS_KEY = "dynakvtestsecret"
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 20
ATTEMPTS_MAX = 3
# A table leaves CREATING/DELETING/UPDATING on its own; how long we wait.
TABLE_STATUS_WAIT_SECONDS = 30
TABLE_STATUS_POLL_SECONDS = 0.05
TABLE_PREFIX = "dynakv-test-"
# Pagination loops in the tests stop after this many pages.
PAGES_MAX = 1000


def endpoint_urls():
    raw = os.environ.get("DYNAKV_DYNAMODB_ENDPOINTS", ENDPOINTS_DEFAULT)
    urls = [url.strip() for url in raw.split(",") if url.strip()]
    return urls or [ENDPOINTS_DEFAULT]


def endpoint_seed():
    raw = os.environ.get("DYNAKV_DYNAMODB_SEED")
    return int(raw) if raw else random.SystemRandom().randrange(1 << 32)


SEED = endpoint_seed()


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "doc(page, section): the DynamoDB documentation page (and section) that decides the test",
    )


def pytest_report_header(config):
    return f"dynamodb endpoints: {','.join(endpoint_urls())}; endpoint seed: {SEED}"


def known_gaps():
    path = os.environ.get("DYNAKV_DYNAMODB_KNOWN_GAPS")
    if not path:
        return {}
    gaps = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, reason = line.partition(" ")
                gaps[name] = reason.strip()
    return gaps


def pytest_collection_modifyitems(config, items):
    gaps = known_gaps()
    for item in items:
        if item.name in gaps:
            item.add_marker(pytest.mark.xfail(reason=gaps[item.name], strict=True))
        marker = item.get_closest_marker("doc")
        if marker is None:
            raise pytest.UsageError(f"{item.nodeid} names no documentation page (doc marker)")
        item.user_properties.append(("doc", " / ".join(str(a) for a in marker.args)))


def doc(page, section=""):
    """Records which documentation page decides a test (see the module doc)."""
    return pytest.mark.doc(page, section)


class RandomEndpointClient:
    """A boto3 DynamoDB client whose every call goes to a randomly chosen endpoint."""

    def __init__(self, clients, rng):
        self._clients = clients
        self._rng = rng
        self.exceptions = clients[0].exceptions

    def __getattr__(self, name):
        if not callable(getattr(self._clients[0], name)):
            return getattr(self._clients[0], name)

        def call(*args, **kwargs):
            client = self._rng.choice(self._clients)
            return getattr(client, name)(*args, **kwargs)

        return call


def make_client(url):
    config = Config(
        region_name=REGION,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"max_attempts": ATTEMPTS_MAX, "mode": "standard"},
        # The server, not the SDK, must reject bad requests: that is under test.
        parameter_validation=False,
    )
    return boto3.client(
        "dynamodb",
        endpoint_url=url,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", DUMMY_ACCESS_KEY_ID),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET_ACCESS_KEY),
        aws_session_token=os.environ.get("AWS_SESSION_TOKEN"),
        config=config,
    )


@pytest.fixture(scope="session")
def ddb():
    clients = [make_client(url) for url in endpoint_urls()]
    return RandomEndpointClient(clients, random.Random(SEED))


def unique_name(prefix=TABLE_PREFIX):
    return f"{prefix}{uuid.uuid4().hex[:16]}"


@pytest.fixture
def uid():
    """A value unique to the test, for keys in shared tables."""
    return uuid.uuid4().hex


def wait_for_status(ddb, name, wanted):
    deadline = time.monotonic() + TABLE_STATUS_WAIT_SECONDS
    while True:
        status = ddb.describe_table(TableName=name)["Table"]["TableStatus"]
        if status == wanted:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"table {name} stayed {status}, wanted {wanted}")
        time.sleep(TABLE_STATUS_POLL_SECONDS)


def wait_until_gone(ddb, name):
    deadline = time.monotonic() + TABLE_STATUS_WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            ddb.describe_table(TableName=name)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ResourceNotFoundException":
                return
            raise
        time.sleep(TABLE_STATUS_POLL_SECONDS)


def key_schema(hash_type, range_type, hash_name="pk", range_name="sk"):
    schema = [{"AttributeName": hash_name, "KeyType": "HASH"}]
    definitions = [{"AttributeName": hash_name, "AttributeType": hash_type}]
    if range_type:
        schema.append({"AttributeName": range_name, "KeyType": "RANGE"})
        definitions.append({"AttributeName": range_name, "AttributeType": range_type})
    return schema, definitions


class TableFactory:
    """Creates uniquely named tables and deletes them all at teardown."""

    def __init__(self, ddb):
        self.ddb = ddb
        self.names = []

    def __call__(self, hash_type="S", range_type=None, hash_name="pk", range_name="sk", **extra):
        name = extra.pop("TableName", None) or unique_name()
        schema, definitions = key_schema(hash_type, range_type, hash_name, range_name)
        request = {
            "TableName": name,
            "KeySchema": schema,
            "AttributeDefinitions": definitions,
            "BillingMode": "PAY_PER_REQUEST",
        }
        request.update(extra)
        if "ProvisionedThroughput" in request and "BillingMode" not in extra:
            request["BillingMode"] = "PROVISIONED"
        self.ddb.create_table(**request)
        self.names.append(name)
        wait_for_status(self.ddb, name, "ACTIVE")
        return name

    def adopt(self, name):
        """Deletes at teardown a table the test created by itself."""
        self.names.append(name)

    def cleanup(self):
        for name in self.names:
            try:
                self.ddb.delete_table(TableName=name)
            except ClientError as error:
                # Names a test expected to be refused were never tables.
                if error.response["Error"]["Code"] not in ("ResourceNotFoundException", "ValidationException"):
                    raise
                continue
            wait_until_gone(self.ddb, name)


@pytest.fixture
def table(ddb):
    factory = TableFactory(ddb)
    yield factory
    factory.cleanup()


@pytest.fixture(scope="session")
def session_tables(ddb):
    factory = TableFactory(ddb)
    yield factory
    factory.cleanup()


# Shared tables for tests that only touch their own keys (the uid fixture).
@pytest.fixture(scope="session")
def t_s(session_tables):
    """Hash key pk of type S."""
    return session_tables("S")


@pytest.fixture(scope="session")
def t_n(session_tables):
    """Hash key pk of type N."""
    return session_tables("N")


@pytest.fixture(scope="session")
def t_b(session_tables):
    """Hash key pk of type B."""
    return session_tables("B")


@pytest.fixture(scope="session")
def t_sn(session_tables):
    """Hash key pk of type S, range key sk of type N."""
    return session_tables("S", "N")


@pytest.fixture(scope="session")
def t_ss(session_tables):
    """Hash key pk of type S, range key sk of type S."""
    return session_tables("S", "S")


@pytest.fixture(scope="session")
def t_sb(session_tables):
    """Hash key pk of type S, range key sk of type B."""
    return session_tables("S", "B")


# Helpers shared by the test modules.


def S(value):
    return {"S": value}


def N(value):
    return {"N": str(value)}


def B(value):
    return {"B": value}


def error_of(call, *args, **kwargs):
    """Runs a call that must fail; returns (code, message, http status)."""
    try:
        call(*args, **kwargs)
    except ClientError as error:
        return (
            error.response["Error"]["Code"],
            error.response["Error"].get("Message", ""),
            error.response["ResponseMetadata"]["HTTPStatusCode"],
        )
    raise AssertionError("the call succeeded but must fail")


def code_of(call, *args, **kwargs):
    return error_of(call, *args, **kwargs)[0]


def get(ddb, table_name, key, **extra):
    """The item at key, read strongly consistently (None when absent)."""
    return ddb.get_item(TableName=table_name, Key=key, ConsistentRead=True, **extra).get("Item")


def paginate(call, token_in, token_out, **request):
    """Every page of a paginated call, following its token; a list of responses."""
    pages = []
    for _ in range(PAGES_MAX):
        page = call(**request)
        pages.append(page)
        token = page.get(token_out)
        if not token:
            return pages
        request[token_in] = token
    raise AssertionError(f"more than {PAGES_MAX} pages")


def query_all(ddb, **request):
    pages = paginate(ddb.query, "ExclusiveStartKey", "LastEvaluatedKey", **request)
    return list(itertools.chain.from_iterable(page["Items"] for page in pages))


def scan_all(ddb, **request):
    pages = paginate(ddb.scan, "ExclusiveStartKey", "LastEvaluatedKey", **request)
    return list(itertools.chain.from_iterable(page["Items"] for page in pages))
