"""`AWS` (aws-sdk v2's shape), host side: botocore builds, signs and parses; JS sends.

`build_request(service, operation, params, config)` runs botocore's own client pipeline
(parameter validation, the service model's serializer, endpoint rules, S3 addressing, SigV4)
and stops it just before the wire, returning method, URL, headers and body; the JS side sends
that through the ordinary `fetch` (egress policy, proxy, caps and records apply). Then
`parse_response(...)` feeds status, headers and body to botocore's parser for that protocol
and shapes the answer as v2 does: data without ResponseMetadata, or an error with code,
message, statusCode, retryable and requestId.

Isolation: botocore never reads this host's AWS configuration. Credentials and region come only
from the function (a missing one is v2's CredentialsError / ConfigError), the config and
credentials files are /dev/null and configured endpoint URLs (AWS_ENDPOINT_URL...) are ignored.
Binary values cross the bridge tagged: `{"__bytes": latin-1}` and `{"__date": ISO 8601}`.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import io
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError
from botocore.handlers import set_list_objects_encoding_type_url
from botocore.parsers import create_parser
from urllib3 import HTTPHeaderDict

from .common import MAX_INPUT_BYTES, JSError, obj, string

MAX_CLIENTS = 32  # botocore clients kept per runner (one per service/region/endpoint/credentials)
MAX_DEPTH = 64
USER_AGENT = "aws-sdk-nodejs/2 segfuncd"  # unsigned; botocore's own would tell any endpoint this host's OS
_THROTTLING = frozenset(
    {
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
        "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
        "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
        "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException", "RequestTimeout", "RequestTimeoutException",
    }
)  # fmt: skip
_V2_BODY_TYPES = {"rest-xml": "application/octet-stream", "rest-json": "binary/octet-stream"}
_HEAD_CODES = {304: "NotModified", 400: "BadRequest", 403: "Forbidden", 404: "NotFound"}


class _Captured(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, request: Any) -> None:
        self.request = request


@cache
def service_names() -> dict[str, str]:
    """aws-sdk v2 class name -> botocore service name (aws_services.json, see its generator)."""
    text = (importlib.resources.files(__package__ or "") / "aws_services.json").read_text("utf-8")
    return dict(json.loads(text))


@cache
def _session() -> botocore.session.Session:
    session = botocore.session.Session()
    session.set_config_variable("config_file", os.devnull)
    session.set_config_variable("credentials_file", os.devnull)
    session.set_config_variable("ignore_configured_endpoint_urls", True)
    session.set_config_variable("profile", None)
    return session


def operations(cls: Any) -> list[str]:
    """The operation names (PascalCase) of a v2 service class."""
    return list(_service_model(cls).operation_names)


def _service_name(cls: Any) -> str:
    name = service_names().get(cls) if isinstance(cls, str) else None
    if name is None:
        raise JSError("Error", f"unknown AWS service {cls!r}", "UnknownService")
    return name


def _service_model(cls: Any) -> Any:
    return _session().get_service_model(_service_name(cls))


_clients: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_lock = threading.Lock()


def _client(cls: Any, config: dict[str, Any]) -> Any:
    region = config.get("region")
    if not isinstance(region, str) or not region:
        raise JSError("ConfigError", "Missing region in config", "ConfigError")
    key_id, secret = config.get("accessKeyId"), config.get("secretAccessKey")
    if not isinstance(key_id, str) or not key_id or not isinstance(secret, str) or not secret:
        raise JSError("CredentialsError", "Missing credentials in config", "CredentialsError")
    token = config.get("sessionToken")
    endpoint = config.get("endpoint")
    if endpoint is not None:
        endpoint = string(endpoint, "endpoint")
        if "://" not in endpoint:
            endpoint = ("http://" if config.get("sslEnabled") is False else "https://") + endpoint
    path_style = bool(config.get("s3ForcePathStyle"))
    ident = (cls, region, endpoint, path_style, key_id, secret, token)
    with _lock:
        client = _clients.get(ident)
        if client is not None:
            _clients.move_to_end(ident)
            return client
    conf = Config(
        retries={"total_max_attempts": 1},
        s3={"addressing_style": "path" if path_style else "auto"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        user_agent_extra="segfuncd",
        signature_version="s3v4" if cls == "S3" else None,  # SigV4 presigned URLs too, as v2 signs
    )
    try:
        client = _session().create_client(
            _service_name(cls),
            region_name=region,
            endpoint_url=endpoint,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            aws_session_token=token if isinstance(token, str) and token else None,
            config=conf,
        )
    except (BotoCoreError, ValueError) as exc:
        raise JSError("ConfigError", str(exc), "ConfigError") from None
    client.meta.events.register("before-send", _capture)
    # botocore would ask S3 to URL-encode listed keys and decode them in an after-call handler
    # that needs this request's context; ask as aws-sdk v2 does (keys arrive as they are)
    client.meta.events.unregister("before-parameter-build.s3.ListObjects", set_list_objects_encoding_type_url)
    client.meta.events.unregister("before-parameter-build.s3.ListObjectsV2", set_list_objects_encoding_type_url)
    client.meta.events.unregister("before-parameter-build.s3.ListObjectVersions", set_list_objects_encoding_type_url)
    with _lock:
        _clients[ident] = client
        while len(_clients) > MAX_CLIENTS:
            _clients.popitem(last=False)
    return client


def _capture(request: Any, **kwargs: Any) -> None:
    raise _Captured(request)


def _from_js(v: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise JSError("InvalidParameterType", "params are nested too deeply", "InvalidParameterType")
    if isinstance(v, dict):
        if set(v) == {"__bytes"} and isinstance(v["__bytes"], str):
            if len(v["__bytes"]) > MAX_INPUT_BYTES:
                raise JSError(
                    "RangeError", f"a binary parameter is larger than {MAX_INPUT_BYTES} bytes", "ERR_OUT_OF_RANGE"
                )
            return v["__bytes"].encode("latin-1")
        if set(v) == {"__date"} and isinstance(v["__date"], str):
            return dt.datetime.fromisoformat(v["__date"].replace("Z", "+00:00"))
        return {k: _from_js(x, depth + 1) for k, x in v.items()}
    if isinstance(v, list):
        return [_from_js(x, depth + 1) for x in v]
    return v


def _to_js(v: Any) -> Any:
    if isinstance(v, bytes | bytearray):
        return {"__bytes": bytes(v).decode("latin-1")}
    if isinstance(v, dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=dt.UTC)
        return {"__date": v.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")}
    if isinstance(v, dict):
        return {k: _to_js(x) for k, x in v.items() if k != "ResponseMetadata"}
    if isinstance(v, list):
        return [_to_js(x) for x in v]
    if hasattr(v, "read"):
        return _to_js(v.read())
    return v


def _validation_error(exc: ParamValidationError) -> JSError:
    report = str(exc.kwargs.get("report", exc))
    lines = [line.strip() for line in report.splitlines() if line.strip()]
    first = lines[0] if lines else report
    code = "InvalidParameterType"
    if first.startswith("Missing required parameter"):
        code = "MissingRequiredParameter"
    elif first.startswith("Unknown parameter"):
        code = "UnexpectedParameter"
    elif first.startswith("Invalid length") or first.startswith("Invalid range"):
        code = "InvalidParameterValue"
    if len(lines) > 1:
        code = "MultipleValidationErrors"
    message = f"There were {len(lines)} validation errors:\n* " + "\n* ".join(lines) if len(lines) > 1 else first
    return JSError(code, message, code)


def _operation(client: Any, operation: Any) -> Any:
    if not isinstance(operation, str) or operation not in client.meta.service_model.operation_names:
        raise JSError("TypeError", f"unknown operation {operation!r}", "UnknownOperation")
    return client.meta.service_model.operation_model(operation)


def build_request(cls: Any, operation: Any, params: Any, config: Any) -> dict[str, Any]:
    """The signed HTTP request for one call: {method, url, headers: [[k, v]], body: latin-1}."""
    client = _client(cls, obj(config, "config"))
    op = _operation(client, operation)
    kwargs = _from_js(obj(params or {}, "params"))
    method = getattr(client, botocore.xform_name(op.name))
    try:
        method(**kwargs)
    except _Captured as got:
        request = got.request
    except ParamValidationError as exc:
        raise _validation_error(exc) from None
    except (BotoCoreError, ClientError, ValueError, TypeError) as exc:
        raise JSError("InvalidParameterValue", str(exc), "InvalidParameterValue") from None
    else:  # pragma: no cover - before-send always raises
        raise JSError("Error", "the request was not built")
    body = request.body
    if hasattr(body, "read"):
        body = body.read()
    if isinstance(body, str):
        body = body.encode("utf-8")
    headers = []
    for k, v in request.headers.items():
        if k.lower() in ("expect", "content-length", "user-agent"):
            continue  # fetch frames the body; no 100-continue; botocore's agent names this host's OS
        headers.append([k, v.decode("latin-1") if isinstance(v, bytes) else str(v)])
    headers.append(["User-Agent", USER_AGENT])
    default_type = _V2_BODY_TYPES.get(client.meta.service_model.protocol)
    if body and default_type and not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(["Content-Type", default_type])  # aws-sdk v2's default for raw bodies (unsigned)
    return {
        "method": request.method,
        "url": request.url,
        "headers": headers,
        "body": None if body is None else bytes(body).decode("latin-1"),
    }


def parse_response(cls: Any, operation: Any, status: Any, headers: Any, body: Any, config: Any) -> dict[str, Any]:
    """{"data": ...} or {"error": {code, message, statusCode, retryable, requestId}}."""
    client = _client(cls, obj(config, "config"))
    op = _operation(client, operation)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise JSError("TypeError", "invalid status", "ERR_INVALID_ARG_TYPE")
    if not isinstance(headers, list) or not all(isinstance(h, list) and len(h) == 2 for h in headers):
        raise JSError("TypeError", "invalid headers", "ERR_INVALID_ARG_TYPE")
    raw = string(body or "", "body")
    if len(raw) > MAX_INPUT_BYTES:
        raise JSError("RangeError", "response body too large", "ERR_OUT_OF_RANGE")
    hdrs = HTTPHeaderDict()
    for k, v in headers:
        hdrs.add(str(k), str(v))
    content = raw.encode("latin-1", errors="replace")
    response = {
        "status_code": status,
        "headers": hdrs,
        "body": io.BytesIO(content) if op.has_streaming_output and status < 300 else content,
        "context": {"operation_name": op.name},
    }
    parser = create_parser(client.meta.service_model.protocol)
    events, sid = client.meta.events, client.meta.service_model.service_id.hyphenize()
    try:  # botocore's own before-parse / after-call handlers run as in a client call
        events.emit(
            f"before-parse.{sid}.{op.name}", operation_model=op, response_dict=response, customized_response_dict={}
        )
        parsed = parser.parse(response, op.output_shape)
        http = _RawResponse(status, hdrs, content)
        events.emit(f"after-call.{sid}.{op.name}", http_response=http, parsed=parsed, model=op, context={})
    except Exception as exc:  # noqa: BLE001 - any garbage a server sends is the call's error, not ours
        return {"error": _error("UnknownError", f"could not parse the response: {exc}", status, None)}
    meta = parsed.get("ResponseMetadata", {})
    request_id = meta.get("RequestId") or hdrs.get("x-amz-request-id") or hdrs.get("x-amzn-requestid")
    has_error_member = op.output_shape is not None and "Error" in op.output_shape.members
    if status >= 300 or ("Error" in parsed and not has_error_member):  # incl. an unreadable 200
        err = parsed.get("Error", {})
        code = str(err.get("Code") or _HEAD_CODES.get(status) or "UnknownError")
        if code.isdigit():  # botocore names a body it could not read by the status
            code = _HEAD_CODES.get(int(code), "UnknownError")
        message = err.get("Message") or ("null" if not err else code)
        out = _error(code, message, status, request_id)
        if hdrs.get("x-amz-id-2"):
            out["extendedRequestId"] = hdrs.get("x-amz-id-2")
        return {"error": out}
    return {"data": _to_js(parsed), "requestId": request_id}


@dataclass(frozen=True)
class _RawResponse:
    """The parts of a botocore HTTP response its after-call handlers read."""

    status_code: int
    headers: Any
    content: bytes


def _error(code: str, message: str, status: int, request_id: str | None) -> dict[str, Any]:
    retryable = status >= 500 or status == 429 or code in _THROTTLING
    return {"code": code, "message": message, "statusCode": status, "retryable": retryable, "requestId": request_id}


def presign(cls: Any, operation: Any, params: Any, config: Any, expires: Any) -> str:
    """S3's getSignedUrl: a presigned URL for one call (botocore's generate_presigned_url)."""
    client = _client(cls, obj(config, "config"))
    op = _operation(client, operation)
    if not isinstance(expires, int) or isinstance(expires, bool) or not 1 <= expires <= 604_800:
        raise JSError("InvalidParameterValue", "Expires must be between 1 and 604800 seconds", "InvalidParameterValue")
    kwargs = _from_js(obj(params or {}, "params"))
    try:
        url: str = client.generate_presigned_url(botocore.xform_name(op.name), Params=kwargs, ExpiresIn=expires)
    except ParamValidationError as exc:
        raise _validation_error(exc) from None
    except (BotoCoreError, ClientError, ValueError, TypeError) as exc:
        raise JSError("InvalidParameterValue", str(exc), "InvalidParameterValue") from None
    return url
