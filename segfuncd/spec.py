"""The Segment event model: validation, enrichment, dedupe key and routing. Pure.

No I/O, no clock: the receive time and the id generator are passed in. Rules follow
Segment's HTTP Tracking API page (segment.com/docs/connections/sources/catalog/libraries/
server/http-api/) and the Spec's common fields and timestamps pages
(segment.com/docs/connections/spec/common/, .../spec/best-practices-identify/):

* The type is implied by the path (`/v1/track` -> "track"); in a batch each item names
  its own `type`.
* Every event needs `userId` or `anonymousId`, except alias, which needs `previousId` and
  `userId`. Track needs `event`; group needs `groupId`.
* An event may be at most 32 KB, a batch 500 KB and 2,500 events.
* `messageId` is added when absent and must be under 100 characters.
* `receivedAt` is the server's receive time. A supplied `timestamp` becomes
  `originalTimestamp`, and `timestamp = receivedAt - (sentAt - originalTimestamp)`, which
  corrects a client clock that is off; without `sentAt` the timestamp is kept as given,
  without any timestamp it is `receivedAt`.
* The batch envelope's `context`, `integrations` and `sentAt` apply to every item (the
  item's own keys win). `channel` ("server") and `version` (2) are filled when absent.
* Times are ISO-8601 and written back as Segment writes them: `2024-05-01T12:00:00.000Z`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import IntakeError

EVENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2_500
MAX_MESSAGE_ID_CHARS = 100  # a messageId must be shorter than this
DEFAULT_CHANNEL = "server"
SPEC_VERSION = 2
# Keys that must be JSON objects when present (null counts as absent).
_OBJECT_FIELDS = ("properties", "traits", "context", "integrations")
# Keys of the request that are about transport, not the event: never stored.
_TRANSPORT_KEYS = ("writeKey",)

_json_size = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    """One batch item that was refused, and why (the message names the field)."""

    index: int
    message: str


def invalid(message: str, field: str | None = None) -> IntakeError:
    """A 400 naming the field."""
    return IntakeError(400, message, field=field)


# --- time -----------------------------------------------------------------------------


def parse_time(value: Any, field: str) -> datetime:
    """An ISO-8601 string -> aware datetime (naive means UTC); IntakeError naming `field`."""
    if not isinstance(value, str) or not value:
        raise invalid(f"{field}: expected an ISO-8601 date string, got {_show(value)}", field)
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise invalid(f"{field}: not an ISO-8601 date: {_show(value)}", field) from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def format_time(dt: datetime) -> str:
    """An aware datetime -> Segment's form, UTC with milliseconds: 2024-05-01T12:00:00.000Z."""
    dt = dt.astimezone(timezone.utc)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{dt.microsecond // 1000:03d}Z"


def from_epoch(seconds: float) -> datetime:
    """Seconds since the epoch -> aware UTC datetime."""
    return datetime.fromtimestamp(seconds, timezone.utc)


# --- validation and enrichment --------------------------------------------------------


def prepare_event(
    item: Any,
    *,
    type: str | None,
    received_at: datetime,
    new_id: Callable[[], str],
    envelope: Mapping[str, Any] | None = None,
    size: int | None = None,
) -> dict[str, Any]:
    """Validate one event and return its enriched copy; IntakeError(400) names the field.

    `type` is the path's type, or None in a batch (then the item's own `type` is required).
    `size` is the event's size in bytes when the caller knows it (a single call's body).
    """
    if not isinstance(item, dict):
        raise invalid(f"expected a JSON object, got {_show(item)}")
    if size is None:
        size = len(_json_size(item).encode())
    if size > MAX_EVENT_BYTES:
        raise IntakeError(413, f"event is {size} bytes; the limit is {MAX_EVENT_BYTES} bytes per event")
    event = dict(item)
    for key in _TRANSPORT_KEYS:
        event.pop(key, None)
    if type is None:
        type = event.get("type")
        if type not in EVENT_TYPES:
            if type is None:
                raise invalid("type: required in a batch item (one of " + ", ".join(EVENT_TYPES) + ")", "type")
            raise invalid(f"type: expected one of {', '.join(EVENT_TYPES)}, got {_show(type)}", "type")
    event["type"] = type
    for key in _OBJECT_FIELDS:
        value = event.get(key)
        if value is None:
            event.pop(key, None)
        elif not isinstance(value, dict):
            raise invalid(f"{key}: expected an object, got {_show(value)}", key)
    if envelope:
        _merge_envelope(event, envelope)
    _check_identity(event, type)
    if type == "track":
        name = event.get("event")
        if not isinstance(name, str) or not name:
            raise invalid("event: required for track (the event's name)", "event")
    elif type == "group":
        _id_field(event, "groupId", required=True, why="required for group")
    message_id = event.get("messageId")
    if message_id is None or message_id == "":
        event["messageId"] = new_id()
    elif not isinstance(message_id, str):
        raise invalid(f"messageId: expected a string, got {_show(message_id)}", "messageId")
    elif len(message_id) >= MAX_MESSAGE_ID_CHARS:
        raise invalid(f"messageId: must be shorter than {MAX_MESSAGE_ID_CHARS} characters, got {len(message_id)}", "messageId")
    _stamp(event, received_at)
    event.setdefault("channel", DEFAULT_CHANNEL)
    event.setdefault("version", SPEC_VERSION)
    return event


def _merge_envelope(event: dict[str, Any], envelope: Mapping[str, Any]) -> None:
    """Batch-level context / integrations / sentAt apply to the item; the item's keys win."""
    for key in ("context", "integrations"):
        outer = envelope.get(key)
        if isinstance(outer, dict) and outer:
            inner = event.get(key)
            event[key] = {**outer, **inner} if inner else dict(outer)
    if "sentAt" not in event and envelope.get("sentAt") is not None:
        event["sentAt"] = envelope["sentAt"]


def _check_identity(event: dict[str, Any], type: str) -> None:
    if type == "alias":
        _id_field(event, "previousId", required=True, why="required for alias")
        _id_field(event, "userId", required=True, why="required for alias")
        _id_field(event, "anonymousId", required=False, why="")
        return
    user = _id_field(event, "userId", required=False, why="")
    anon = _id_field(event, "anonymousId", required=False, why="")
    if not user and not anon:
        raise invalid("userId or anonymousId: one of them is required", "userId")


def _id_field(event: dict[str, Any], key: str, *, required: bool, why: str) -> bool:
    """Check an id field; numbers are accepted and stored as strings, as Segment does."""
    value = event.get(key)
    if value is None or value == "":
        if required:
            raise invalid(f"{key}: {why}", key)
        return False
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise invalid(f"{key}: expected a string, got {_show(value)}", key)
    if not isinstance(value, str):
        event[key] = str(value)
    return True


def _stamp(event: dict[str, Any], received_at: datetime) -> None:
    """receivedAt, originalTimestamp and the clock-skew-corrected timestamp."""
    event["receivedAt"] = format_time(received_at)
    supplied = event.get("timestamp")
    if supplied is None:
        supplied = event.get("originalTimestamp")
    if supplied is None:
        event["timestamp"] = event["receivedAt"]
        if event.get("sentAt") is not None:
            event["sentAt"] = format_time(parse_time(event["sentAt"], "sentAt"))
        return
    original = parse_time(supplied, "timestamp")
    event["originalTimestamp"] = format_time(original)
    sent = event.get("sentAt")
    if sent is None:
        event["timestamp"] = format_time(original)
        return
    sent_at = parse_time(sent, "sentAt")
    event["sentAt"] = format_time(sent_at)
    event["timestamp"] = format_time(received_at - (sent_at - original))


def prepare_batch(
    body: Any, *, received_at: datetime, new_id: Callable[[], str]
) -> tuple[list[tuple[int, dict[str, Any]]], list[Rejection]]:
    """Validate a /v1/batch body -> ([(index, event)], [Rejection]); the envelope itself must be valid."""
    if not isinstance(body, dict):
        raise invalid(f"expected a JSON object, got {_show(body)}")
    items = body.get("batch")
    if not isinstance(items, list):
        raise invalid("batch: required, an array of events", "batch")
    if not items:
        raise invalid("batch: is empty", "batch")
    if len(items) > MAX_BATCH_EVENTS:
        raise invalid(f"batch: {len(items)} events; the limit is {MAX_BATCH_EVENTS} per batch", "batch")
    for key in ("context", "integrations"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            raise invalid(f"{key}: expected an object, got {_show(body[key])}", key)
    if body.get("sentAt") is not None:
        parse_time(body["sentAt"], "sentAt")
    accepted: list[tuple[int, dict[str, Any]]] = []
    rejected: list[Rejection] = []
    for index, item in enumerate(items):
        try:
            accepted.append((index, prepare_event(item, type=None, received_at=received_at, new_id=new_id, envelope=body)))
        except IntakeError as exc:
            rejected.append(Rejection(index=index, message=exc.message))
    return accepted, rejected


def dedupe_key(event: Mapping[str, Any]) -> str:
    """The key a retried send shares with its first try: the messageId."""
    return str(event["messageId"])


def route_event(event: Mapping[str, Any], enabled: Sequence[str]) -> tuple[str, ...]:
    """The enabled functions this event goes to, honouring its `integrations` object.

    `{"All": false, "teams": true}` selects only teams; `{"teams": false}` all but teams.
    Names are case-sensitive, as plugin file names are. Any value other than `false` (an
    options object, `true`) enables a function, as in Segment.
    """
    integrations = event.get("integrations")
    if not isinstance(integrations, dict) or not integrations:
        return tuple(enabled)
    default = integrations.get("All", True) is not False
    out = []
    for name in enabled:
        value = integrations.get(name)
        if (default if value is None else value is not False):
            out.append(name)
    return tuple(out)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."
