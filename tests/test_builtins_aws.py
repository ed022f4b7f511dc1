"""`AWS` as aws-sdk v2 end to end: real runner processes, a local moto server that checks
signatures, and boto3 reading back what the function wrote."""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import SINK_ALLOW, MotoServer, builtin_fixture, moto_server
from test_sandbox_helpers import js

from segfuncd.outcomes import Outcome
from segfuncd.runner import PluginVersion, builtins, open_runner_pool

PLUGINS = Path(__file__).parent / "plugins"
# loopback must be reachable for these tests: pass the egress policy explicitly (today an empty
# deny list allows it; adapt here when runner config grows an allow list)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


def _event(message_id: str) -> dict[str, Any]:
    return {"type": "track", "event": "Signed Up", "messageId": message_id, "properties": {"plan": "pro", "n": 1}}


def _resources(moto: MotoServer, suffix: str) -> dict[str, str]:
    names = {
        "bucket": f"bucket-{suffix}",
        "stream": f"stream-{suffix}",
        "queue": f"queue-{suffix}",
        "table": f"table-{suffix}",
    }
    moto.client("s3").create_bucket(Bucket=names["bucket"])
    moto.client("kinesis").create_stream(StreamName=names["stream"], ShardCount=1)
    moto.client("sqs").create_queue(QueueName=names["queue"])
    moto.client("dynamodb").create_table(
        TableName=names["table"],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return names


async def test_a_function_writes_to_s3_kinesis_sqs_and_dynamodb(moto: MotoServer) -> None:
    names = _resources(moto, "e2e")
    settings = {"endpoint": moto.endpoint, "accessKeyId": moto.access_key, "secretAccessKey": moto.secret_key, **names}
    version = PluginVersion.from_source(
        "aws", (PLUGINS / "aws_roundtrip.js").read_text(), path="plugins/aws_roundtrip.js"
    )
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        [r] = await pool.invoke(version, [_event("m-1")], settings)
    assert r.outcome is Outcome.DELIVERED, r.error
    v = r.value
    assert v["body"] == '{"plan":"pro","n":1}' and v["bodyIsBuffer"] and v["lastModifiedIsDate"]
    assert v["contentType"] == "application/json" and v["etag"].startswith('"')
    assert v["shard"] == "shardId-000000000000" and v["sequence"] == "string" and v["messageId"] == "string"
    assert v["item"] == {"id": {"S": "m-1"}, "n": {"N": "42"}, "tags": {"SS": ["a", "b"]}}
    assert v["missing"] == {"code": "NoSuchKey", "name": "NoSuchKey", "statusCode": 404, "retryable": False}

    # and boto3 sees what the function wrote
    obj = moto.client("s3").get_object(Bucket=names["bucket"], Key="events/m-1.json")
    assert obj["Body"].read() == b'{"plan":"pro","n":1}'
    kinesis = moto.client("kinesis")
    shard = kinesis.get_shard_iterator(
        StreamName=names["stream"], ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )
    records = kinesis.get_records(ShardIterator=shard["ShardIterator"])["Records"]
    assert [(x["Data"], x["PartitionKey"]) for x in records] == [(b'{"plan":"pro","n":1}', "m-1")]
    sqs = moto.client("sqs")
    url = sqs.get_queue_url(QueueName=names["queue"])["QueueUrl"]
    [msg] = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    assert json.loads(msg["Body"]) == {"plan": "pro", "n": 1}
    assert msg["MessageAttributes"]["kind"]["StringValue"] == "track"
    item = moto.client("dynamodb").get_item(TableName=names["table"], Key={"id": {"S": "m-1"}})["Item"]
    assert item["n"] == {"N": "42"}


def _error(name: str, code: str, status: int | None, retryable: bool) -> dict[str, Any]:
    shape = {
        "name": name,
        "code": code,
        "statusCode": status,
        "retryable": retryable,
        "hasMessage": True,
        "isError": True,
    }
    return {k: v for k, v in shape.items() if v is not None}  # no statusCode for errors raised before sending


async def test_errors_are_shaped_like_aws_sdk_v2(moto: MotoServer) -> None:
    names = _resources(moto, "errors")
    settings = {"endpoint": moto.endpoint, "accessKeyId": moto.access_key, "secretAccessKey": "wrong-secret", **names}
    version = PluginVersion.from_source("awserr", (PLUGINS / "aws_errors.js").read_text(), path="plugins/aws_errors.js")
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        [r] = await pool.invoke(version, [_event("m-2")], settings)
    assert r.outcome is Outcome.DELIVERED, r.error
    sig = "SignatureDoesNotMatch"
    v = r.value
    assert v["s3"] == _error(sig, sig, 403, False)
    assert v["callback"] == _error(sig, sig, 403, False)
    # moto answers the JSON-protocol services' auth failures with an XML body the JSON parser
    # cannot read (boto3 itself reports Code "403" there); AWS sends InvalidSignatureException
    for service in ("sqs", "dynamodb", "kinesis"):
        assert v[service]["code"] in ("InvalidSignatureException", "Forbidden"), v[service]
        assert v[service]["statusCode"] == 403 and v[service]["retryable"] is False
    assert v["missingParam"] == _error("MissingRequiredParameter", "MissingRequiredParameter", None, False)
    assert v["unknownParam"] == _error("UnexpectedParameter", "UnexpectedParameter", None, False)
    assert v["noCredentials"] == _error("CredentialsError", "CredentialsError", None, False)
    assert v["noRegion"] == _error("ConfigError", "ConfigError", None, False)
    assert v["refused"] == _error("NetworkingError", "NetworkingError", None, True)


SHAPES = builtin_fixture("aws")


def _query(path: str) -> tuple[str, list[tuple[str, str]]]:
    split = urllib.parse.urlsplit(path)
    return split.path, sorted(urllib.parse.parse_qsl(split.query, keep_blank_values=True))


def _body(content_type: str | None, raw: bytes) -> Any:
    """A body as data, so equal requests compare equal whatever the serializer's key order."""
    if not raw:
        return None
    if content_type and "json" in content_type:
        return json.loads(raw)
    if content_type and "x-www-form-urlencoded" in content_type:
        return sorted(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
    return raw


async def test_requests_match_the_ones_aws_sdk_v2_builds(sink: Any) -> None:
    config = dict(SHAPES["config"], endpoint=sink.url)
    version = PluginVersion.from_source("shapes", (PLUGINS / "aws_shapes.js").read_text(), path="plugins/aws_shapes.js")
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        [r] = await pool.invoke(version, [_event("m-3")], {"config": config, "cases": SHAPES["cases"]})
    assert r.outcome is Outcome.DELIVERED, r.error
    requests = sink.wait_for(len(SHAPES["cases"]))
    for case, got in zip(SHAPES["cases"], requests, strict=True):
        want = case["expect"]
        raw = base64.b64decode(want["body"])
        assert (got.method, _query(got.path)) == (want["method"], _query(want["path"])), case["id"]
        assert got.headers.get("x-amz-target") == want["target"], case["id"]
        if raw:  # aws-sdk v2 also labels some empty bodies application/octet-stream; botocore does not
            assert got.headers.get("content-type") == want["contentType"], case["id"]
        ours, theirs = _body(want["contentType"], got.body), _body(want["contentType"], raw)
        if isinstance(theirs, dict) and "ClientRequestToken" in theirs:  # a random idempotency token on both sides
            assert isinstance(ours, dict) and len(ours.pop("ClientRequestToken")) == len(
                theirs.pop("ClientRequestToken")
            )
        assert ours == theirs, case["id"]
        assert got.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), case["id"]


async def test_document_client_round_trips_native_values(moto: MotoServer) -> None:
    names = _resources(moto, "docs")
    settings = {"endpoint": moto.endpoint, "accessKeyId": moto.access_key, "secretAccessKey": moto.secret_key, **names}
    version = PluginVersion.from_source(
        "docs", (PLUGINS / "aws_documents.js").read_text(), path="plugins/aws_documents.js"
    )
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        [r] = await pool.invoke(version, [_event("m-4")], settings)
    assert r.outcome is Outcome.DELIVERED, r.error
    v = r.value
    bin_json = {"type": "Buffer", "data": list(b"bytes")}
    assert v["got"] == {"id": "u1", "n": 1.5, "ok": True, "none": None, "tags": ["a", "b"],
                        "nested": {"list": [1, "x", {"deep": False}]}, "bin": bin_json}  # fmt: skip
    assert (v["setType"], v["setValues"], v["binIsBuffer"], v["bin"]) == ("String", ["a", "b"], True, "bytes")
    assert v["updated"] == {"n": 2.5}
    assert v["batch"] == [{"id": "u2", "v": 2}] and (v["count"], v["queried"]) == (1, ["u1"])
    raw = moto.client("dynamodb").get_item(TableName=names["table"], Key={"id": {"S": "u1"}})["Item"]
    assert raw["tags"] == {"SS": ["a", "b"]} and raw["bin"] == {"B": b"bytes"} and raw["none"] == {"NULL": True}


CFG = {"region": "us-east-1", "accessKeyId": "AK", "secretAccessKey": "SK", "endpoint": "http://127.0.0.1:9"}
HOSTILE: list[tuple[str, list[Any]]] = [
    ("aws_request", []),
    ("aws_request", ["NoSuchService", "PutObject", {}, CFG]),
    ("aws_request", ["S3", "NoSuchOperation", {}, CFG]),
    ("aws_request", ["S3", "__class__", {}, CFG]),
    ("aws_request", ["S3", "PutObject", "params", CFG]),
    ("aws_request", ["S3", "PutObject", {"Bucket": 5, "Key": []}, CFG]),
    ("aws_request", ["S3", "PutObject", {"Bucket": "b", "Key": "k", "Body": {"__bytes": "\u0100"}}, CFG]),
    (
        "aws_request",
        ["S3", "PutObject", {"Bucket": "b", "Key": "k", "Body": {"__bytes": "x" * (9 * 1024 * 1024)}}, CFG],
    ),
    ("aws_request", ["S3", "PutObject", {"Bucket": "b", "Key": "k", "Expires": {"__date": "not a date"}}, CFG]),
    ("aws_request", ["S3", "ListBuckets", {}, {"region": "us-east-1"}]),
    ("aws_request", ["S3", "ListBuckets", {}, {"accessKeyId": "a", "secretAccessKey": "b"}]),
    ("aws_request", ["S3", "ListBuckets", {}, {**CFG, "endpoint": 42}]),
    ("aws_request", ["S3", "ListBuckets", {}, {**CFG, "region": "not a region!"}]),
    ("aws_request", ["S3", "ListBuckets", {}, "config"]),
    ("aws_response", ["S3", "ListBuckets", "200", [], "", CFG]),
    ("aws_response", ["S3", "ListBuckets", 200, "headers", "", CFG]),
    ("aws_response", ["S3", "ListBuckets", 200, [], 5, CFG]),
    ("aws_operations", ["Nope"]),
    ("jwt_sign", ["HS256", "a.b", {"secret": 5}]),
    ("jwt_sign", ["XS256", "a.b", {"secret": "k"}]),
    ("jwt_sign", ["RS256", "a.b", {"spec": {"f": "pem", "d": "junk"}}]),
    ("jwt_verify", ["RS256", "a.b", None, {}]),
    ("source", ["../../etc/passwd"]),
]


@pytest.mark.parametrize(("name", "args"), HOSTILE, ids=[f"{n}-{i}" for i, (n, _) in enumerate(HOSTILE)])
def test_host_functions_answer_hostile_arguments_with_a_js_error(name: str, args: list[Any]) -> None:
    got = builtins.call(name, args)
    assert set(got) == {"e"}, got
    json.dumps(got)


def test_garbage_from_a_server_is_the_calls_error() -> None:
    for status, body in [(200, "<not xml"), (500, "\x00\xff" * 100), (403, "")]:
        got = builtins.call("aws_response", ["S3", "ListBuckets", status, [["x-amz-request-id", "r1"]], body, CFG])
        assert got["v"]["error"]["statusCode"] == status, got


def test_the_hosts_own_aws_configuration_is_never_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    creds = tmp_path / "credentials"
    creds.write_text("[default]\naws_access_key_id = HOSTKEY\naws_secret_access_key = HOSTSECRET\n")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "HOSTKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "HOSTSECRET")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://attacker.invalid")
    assert builtins.call("aws_request", ["S3", "ListBuckets", {}, {}])["e"]["code"] == "ConfigError"
    no_creds = builtins.call("aws_request", ["S3", "ListBuckets", {}, {"region": "us-east-1"}])
    assert no_creds["e"]["code"] == "CredentialsError"
    got = builtins.call(
        "aws_request", ["S3", "ListBuckets", {}, {"region": "us-east-1", "accessKeyId": "FN", "secretAccessKey": "x"}]
    )
    assert got["v"]["url"].startswith("https://s3.amazonaws.com/") or got["v"]["url"].startswith(
        "https://s3.us-east-1.amazonaws.com/"
    )
    headers = dict(got["v"]["headers"])
    assert "Credential=FN/" in headers["Authorization"] and "HOSTKEY" not in json.dumps(got)
    assert "linux" not in headers["User-Agent"].lower()


async def test_query_protocol_and_more_services(moto: MotoServer) -> None:
    sns, sqs = moto.client("sns"), moto.client("sqs")
    topic = sns.create_topic(Name="events")["TopicArn"]
    queue = sqs.create_queue(QueueName="from-sns")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    moto.client("s3").create_bucket(Bucket="firehose-out")
    moto.client("firehose").create_delivery_stream(
        DeliveryStreamName="fh",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/fh",
            "BucketARN": "arn:aws:s3:::firehose-out",
        },
    )
    settings = {"endpoint": moto.endpoint, "accessKeyId": moto.access_key, "secretAccessKey": moto.secret_key}
    settings |= {"topicArn": topic, "firehose": "fh"}
    version = PluginVersion.from_source("more", (PLUGINS / "aws_more.js").read_text(), path="plugins/aws_more.js")
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        [r] = await pool.invoke(version, [_event("m-5")], settings)
    assert r.outcome is Outcome.DELIVERED, r.error
    v = r.value
    assert (v["messageId"], v["topics"], v["failed"], v["entries"], v["recordId"]) == (
        "string",
        [topic],
        0,
        1,
        "string",
    )
    assert v["lambda"] == {"code": "ResourceNotFoundException", "statusCode": 404, "retryable": False}
    [msg] = sqs.receive_message(QueueUrl=queue)["Messages"]
    assert json.loads(msg["Body"]) == {"plan": "pro", "n": 1}


def test_config_patterns_of_aws_sdk_v2() -> None:
    got = js("""(() => {
        AWS.config.update({region: 'us-west-2', accessKeyId: 'g', secretAccessKey: 'gs'});
        const a = new AWS.S3();
        const b = new AWS.S3({region: 'eu-west-1', accessKeyId: 'own', secretAccessKey: 'os', endpoint: 'localhost:4566', sslEnabled: false});
        AWS.config = new AWS.Config({region: 'ap-south-1', credentials: new AWS.Credentials({accessKeyId: 'c', secretAccessKey: 'cs'})});
        const c = new AWS.DynamoDB();
        const doc = new AWS.DynamoDB.DocumentClient({region: 'sa-east-1'});
        return [a.config.region, a.config.accessKeyId, b.config.region, b.config.accessKeyId, b.endpoint.host,
                c.config.region, c.config.credentials.accessKeyId, doc.service.config.region,
                typeof a.putObject, typeof c.putItem, typeof doc.put, AWS.DynamoDB.Converter.marshall({a: [1, 'x']})]
    })()""")
    assert got == ["us-west-2", "g", "eu-west-1", "own", "localhost:4566", "ap-south-1", "c", "sa-east-1",
                   "function", "function", "function", {"a": {"L": [{"N": "1"}, {"S": "x"}]}}]  # fmt: skip


def test_every_aws_sdk_v2_class_maps_to_a_botocore_service() -> None:
    import botocore.session

    table = builtins.call("aws_services", [])["v"]
    v2 = builtin_fixture("aws_sdk_v2_services")
    available = set(botocore.session.get_session().get_available_services())
    assert set(table) <= set(v2) and set(table.values()) <= available
    assert len(table) >= 350
    wanted = {"S3": "s3", "Kinesis": "kinesis", "Firehose": "firehose", "SQS": "sqs", "SNS": "sns", "Lambda": "lambda"}
    wanted |= {"DynamoDB": "dynamodb", "EventBridge": "events", "CloudWatchEvents": "events", "CloudWatchLogs": "logs"}
    assert {k: table[k] for k in wanted} == wanted


async def test_s3_upload_and_presigned_urls() -> None:
    # moto's signature-checking mode answers presigned URLs with a 500, so this one runs without
    # it; the SigV4 query signature itself is botocore's generate_presigned_url
    with moto_server(auth=False) as moto:
        moto.client("s3").create_bucket(Bucket="extras")
        settings = {"endpoint": moto.endpoint, "accessKeyId": moto.access_key, "secretAccessKey": moto.secret_key}
        settings["bucket"] = "extras"
        source = (PLUGINS / "aws_s3_extras.js").read_text()
        version = PluginVersion.from_source("s3x", source, path="plugins/aws_s3_extras.js")
        async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
            [r] = await pool.invoke(version, [_event("m-6")], settings)
        assert r.outcome is Outcome.DELIVERED, r.error
        stored = moto.client("s3").get_object(Bucket="extras", Key="up/y.txt")["Body"].read()
    v = r.value
    assert v.pop("signedWith") == ["AWS4-HMAC-SHA256", "60", True]
    assert v == {"location": f"{moto.endpoint}/extras/up/x.txt", "key": "up/x.txt", "etag": "string",
                 "viaUrl": "uploaded ✓", "putStatus": 200, "bad": "InvalidParameterValue"}  # fmt: skip
    assert stored == b"via presigned PUT"


RETRIES = """
async function onTrack(event, settings) {
  const sqs = new AWS.SQS({region: 'us-east-1', accessKeyId: 'a', secretAccessKey: 'b', endpoint: settings.url,
                           maxRetries: 2, retryDelayOptions: {base: 1}});
  try { await sqs.listQueues({}).promise(); return 'no error' }
  catch (e) { return {code: e.code, statusCode: e.statusCode, retryable: e.retryable, retryCount: e.retryCount} }
}
"""


async def test_retryable_errors_are_retried_as_aws_sdk_v2_does(sink: Any) -> None:
    sink.behaviour.status = 503
    sink.behaviour.body = b'{"__type": "com.amazonaws#ServiceUnavailable", "message": "slow down"}'
    version = PluginVersion.from_source("retries", RETRIES, path="plugins/retries.js")
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        [r] = await pool.invoke(version, [_event("m-7")], {"url": sink.url})
    assert r.value == {"code": "ServiceUnavailable", "statusCode": 503, "retryable": True, "retryCount": 2}
    assert len(sink.wait_for(3)) == 3  # the first try and two retries, each signed afresh


BINARY_S3 = """
async function onTrack(event, settings) {
  const s3 = new AWS.S3({region: 'us-east-1', endpoint: settings.endpoint, s3ForcePathStyle: true,
                         accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey});
  const every = Buffer.alloc(256);
  for (let i = 0; i < 256; i++) every[i] = i;
  await s3.putObject({Bucket: settings.bucket, Key: 'every-byte', Body: every}).promise();
  const got = await s3.getObject({Bucket: settings.bucket, Key: 'stored-by-boto3'}).promise();
  return {isBuffer: Buffer.isBuffer(got.Body), length: got.Body.length, hex: got.Body.toString('hex')};
}
"""


async def test_binary_s3_objects_are_byte_exact_both_ways(moto: MotoServer) -> None:
    """Every byte value goes up in putObject and comes back in getObject unchanged (not as UTF-8 text)."""
    bucket = "bucket-binary"
    moto.client("s3").create_bucket(Bucket=bucket)
    stored = bytes(range(255, -1, -1)) + b"\xc3\x28\xff"
    moto.client("s3").put_object(Bucket=bucket, Key="stored-by-boto3", Body=stored)
    settings = {"endpoint": moto.endpoint, "accessKeyId": moto.access_key, "secretAccessKey": moto.secret_key}
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        [r] = await pool.invoke(
            PluginVersion.from_source("s3bin", BINARY_S3), [_event("m-b")], {**settings, "bucket": bucket}
        )
    assert r.outcome is Outcome.DELIVERED, r.error
    assert r.value == {"isBuffer": True, "length": len(stored), "hex": stored.hex()}
    assert moto.client("s3").get_object(Bucket=bucket, Key="every-byte")["Body"].read() == bytes(range(256))
