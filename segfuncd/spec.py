"""The Segment event model: validation, enrichment, routing and the handler table. Pure.

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
  item's own keys win). `channel` and `version` (2) are filled when absent: `channel` is
  "client" for a browser's request (an `Origin` header) or an analytics.js event
  (`context.library.name`), else "server". `context.ip` is the client's address, when
  the caller knows it, unless the event sets its own.
* Times are ISO-8601 and written back as Segment writes them: `2024-05-01T12:00:00.000Z`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import __version__
from .errors import IntakeError

EVENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")

# The handler table: which handlers may take one event of each type, in the order they are
# tried (Segment's onTrack & co., then the seed's bare names). "delete" is a handler type
# without an intake path (Segment sends it for user deletion). onBatch takes a list of
# events of any type. The runner, the sandbox, delivery and admin all read this table.
EVENT_HANDLERS: dict[str, tuple[str, ...]] = {
    "track": ("onTrack", "track"),
    "identify": ("onIdentify", "identify"),
    "page": ("onPage", "page"),
    "screen": ("onScreen", "screen"),
    "group": ("onGroup", "group"),
    "alias": ("onAlias", "alias"),
    "delete": ("onDelete",),
}
BATCH_HANDLER = "onBatch"
HANDLER_NAMES = (*(h for names in EVENT_HANDLERS.values() for h in names), BATCH_HANDLER)


def single_handlers(event_type: str) -> tuple[str, ...]:
    """The handlers that take one event of `event_type`, in the order they are tried."""
    return EVENT_HANDLERS.get(event_type, ())


def has_single_handler(handlers: Sequence[str]) -> bool:
    """Whether a plugin defining `handlers` takes single events of some type."""
    have = set(handlers)
    return any(h in have for names in EVENT_HANDLERS.values() for h in names)


def first_handled_type(handlers: Sequence[str], *, default: str = "track") -> str:
    """The first event type (in table order) one of `handlers` takes; `default` when none."""
    have = set(handlers)
    return next((t for t, names in EVENT_HANDLERS.items() if any(h in have for h in names)), default)


MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2_500
MAX_MESSAGE_ID_CHARS = 100  # a messageId must be shorter than this
DEFAULT_CHANNEL = "server"
CLIENT_CHANNEL = "client"
BROWSER_LIBRARIES = frozenset({"analytics.js", "analytics-next"})
SPEC_VERSION = 2
# Keys that must be JSON objects when present (null counts as absent).
_OBJECT_FIELDS = ("properties", "traits", "context", "integrations")
_TYPES = frozenset(EVENT_TYPES)


def _size_default(o: Any) -> Any:
    if isinstance(o, Unrepresentable):
        return o.text
    raise TypeError(f"not JSON: {type(o).__name__}")


_json_size = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_size_default).encode
_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z").fullmatch


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """An event already serialised as JSON, with its type: what the store keeps and a
    runner parses, passed through the daemon without a parse and a re-encode."""

    json: str
    type: str

    @classmethod
    def of(cls, event: Any) -> EncodedEvent:
        """Any JSON value (a non-object has no type: no handler takes it)."""
        kind = str(event.get("type", "")) if isinstance(event, Mapping) else ""
        return cls(json.dumps(event, separators=(",", ":")), kind)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    """One batch item that was refused, and why (the message names the field)."""

    index: int
    message: str


class Unrepresentable:
    """A JSON number no store can keep exactly (`1e400` is Infinity; a 5,000-digit integer):
    the intake's JSON decoder puts one of these in its place, and `json_problem` finds it."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def json_problem(value: Any) -> str | None:
    """Why `value` cannot be stored as JSON text (a lone UTF-16 surrogate, an unrepresentable
    number), else None. Walks the whole value: call it only when the decoder saw something odd."""
    todo = [value]
    while todo:
        cur = todo.pop()
        if isinstance(cur, str):
            if not cur.isascii():
                try:
                    cur.encode("utf-8")
                except UnicodeEncodeError:
                    return f"a string holds a lone UTF-16 surrogate ({cur.encode('utf-8', 'backslashreplace')[:40]!r})"
        elif isinstance(cur, dict):
            todo.extend(cur.keys())
            todo.extend(cur.values())
        elif isinstance(cur, list):
            todo.extend(cur)
        elif isinstance(cur, Unrepresentable):
            return f"number out of range: {cur.text[:40]}"
    return None


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
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def format_time(dt: datetime) -> str:
    """An aware datetime -> Segment's form, UTC with milliseconds: 2024-05-01T12:00:00.000Z."""
    # isoformat() is about twice as fast as strftime; this runs several times per event.
    return dt.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def from_epoch(seconds: float) -> datetime:
    """Seconds since the epoch -> aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


# --- validation and enrichment --------------------------------------------------------


def prepare_event(
    item: Any,
    *,
    type: str | None,
    received_at: datetime,
    new_id: Callable[[], str],
    envelope: Mapping[str, Any] | None = None,
    size: int | None = None,
    check_json: bool = False,
    browser: bool = False,
    ip: str | None = None,
) -> dict[str, Any]:
    """Validate one event and return its enriched copy; IntakeError(400) names the field.

    `type` is the path's type, or None in a batch (then the item's own `type` is required).
    `size` is the event's size in bytes when the caller knows it (a single call's body).
    `check_json`: the decoder saw a surrogate escape or an odd number; look for them (json_problem).
    `browser`: the request came from a browser (channel "client"); `ip`: the client's
    address, for `context.ip`.
    """
    if check_json:
        problem = json_problem(item)
        if problem:
            raise invalid(problem)
    if size is None and isinstance(item, dict):
        size = _size(item)
    if size is not None and size > MAX_EVENT_BYTES:
        raise _too_big(size)
    return _prepare(item, type, _Now(received_at, browser=browser, ip=ip), new_id, envelope)


class _Now:
    """What one request shares: its receive time (formatted once), the sentAt values seen in
    it, whether a browser sent it and the client's address."""

    __slots__ = ("at", "text", "sent", "browser", "ip")

    def __init__(self, at: datetime, *, browser: bool = False, ip: str | None = None) -> None:
        self.at = at
        self.text = format_time(at)
        self.sent: dict[str, datetime] = {}  # a batch's items share the envelope's sentAt
        self.browser = browser
        self.ip = ip


def _prepare(
    item: Any,
    kind: str | None,
    now: _Now,
    new_id: Callable[[], str],
    envelope: Mapping[str, Any] | None,
    copy: bool = True,
) -> dict[str, Any]:
    # The hot path of intake (once per event): exact-type checks first, slow paths only
    # for values that are unusual, so a valid event costs a few dict lookups.
    if item.__class__ is not dict:
        raise invalid(f"expected a JSON object, got {_show(item)}")
    event = dict(item) if copy else item
    if "writeKey" in event:
        del event["writeKey"]  # transport, not event: never stored
    if kind is None:
        kind = event.get("type")
        if kind.__class__ is not str or kind not in _TYPES:
            if kind is None:
                raise invalid("type: required in a batch item (one of " + ", ".join(EVENT_TYPES) + ")", "type")
            raise invalid(f"type: expected one of {', '.join(EVENT_TYPES)}, got {_show(kind)}", "type")
    else:
        event["type"] = kind
    for key in _OBJECT_FIELDS:
        if key in event and event[key].__class__ is not dict:
            if event[key] is not None:
                raise invalid(f"{key}: expected an object, got {_show(event[key])}", key)
            del event[key]
    if envelope:
        _merge_envelope(event, envelope)
    if kind == "alias":
        _id_field(event, "previousId", required=True, why="required for alias")
        _id_field(event, "userId", required=True, why="required for alias")
        _id_field(event, "anonymousId", required=False, why="")
    else:
        user = event.get("userId")
        if user.__class__ is not str or not user:
            user = _id_field(event, "userId", required=False, why="")
        anon = event.get("anonymousId")
        if anon is not None and (anon.__class__ is not str or not anon):
            anon = _id_field(event, "anonymousId", required=False, why="")
        if not user and not anon:
            raise invalid("userId or anonymousId: one of them is required", "userId")
        if kind == "track":
            name = event.get("event")
            if name.__class__ is not str or not name:
                raise invalid("event: required for track (the event's name)", "event")
        elif kind == "group":
            _id_field(event, "groupId", required=True, why="required for group")
    message_id = event.get("messageId")
    if message_id is None or message_id == "":
        event["messageId"] = new_id()
    elif message_id.__class__ is not str:
        raise invalid(f"messageId: expected a string, got {_show(message_id)}", "messageId")
    elif len(message_id) >= MAX_MESSAGE_ID_CHARS:
        raise invalid(
            f"messageId: must be shorter than {MAX_MESSAGE_ID_CHARS} characters, got {len(message_id)}", "messageId"
        )
    _stamp(event, now)
    if "channel" not in event:
        event["channel"] = CLIENT_CHANNEL if now.browser or _from_browser_library(event) else DEFAULT_CHANNEL
    if now.ip:
        context = event.get("context")
        if context is None:
            event["context"] = {"ip": now.ip}
        elif not context.get("ip"):
            event["context"] = {**context, "ip": now.ip}
    if "version" not in event:
        event["version"] = SPEC_VERSION
    return event


def _from_browser_library(event: dict[str, Any]) -> bool:
    """context.library.name is analytics.js (analytics-next sends that name)."""
    context = event.get("context")
    library = context.get("library") if context else None
    return isinstance(library, dict) and library.get("name") in BROWSER_LIBRARIES


def _merge_envelope(event: dict[str, Any], envelope: Mapping[str, Any]) -> None:
    """Batch-level context / integrations / sentAt apply to the item; the item's keys win."""
    for key in ("context", "integrations"):
        outer = envelope.get(key)
        if isinstance(outer, dict) and outer:
            inner = event.get(key)
            event[key] = {**outer, **inner} if inner else dict(outer)
    if "sentAt" not in event and envelope.get("sentAt") is not None:
        event["sentAt"] = envelope["sentAt"]


def _id_field(event: dict[str, Any], key: str, *, required: bool, why: str) -> bool:
    """Check an id field; numbers are accepted and stored as strings, as Segment does."""
    value = event.get(key)
    if value is None or value == "":
        if required:
            raise invalid(f"{key}: {why}", key)
        return False
    if value.__class__ is str:
        return True
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise invalid(f"{key}: expected a string, got {_show(value)}", key)
    if not isinstance(value, str):
        event[key] = str(value)
    return True


def _stamp(event: dict[str, Any], now: _Now) -> None:
    """receivedAt, originalTimestamp and the clock-skew-corrected timestamp."""
    event["receivedAt"] = now.text
    supplied = event.get("timestamp")
    if supplied is None:
        supplied = event.get("originalTimestamp")
    sent = event.get("sentAt")
    sent_at = None
    if sent is not None:
        sent_at = now.sent.get(sent) if isinstance(sent, str) else None
        if sent_at is None:
            sent_at = parse_time(sent, "sentAt")
            now.sent[sent] = sent_at
        event["sentAt"] = _canonical(sent, sent_at)
    if supplied is None:
        event["timestamp"] = now.text
        return
    original = _fast_parse(supplied) or parse_time(supplied, "timestamp")
    event["originalTimestamp"] = _canonical(supplied, original)
    if sent_at is None:
        event["timestamp"] = event["originalTimestamp"]
    else:
        event["timestamp"] = format_time(now.at - (sent_at - original))


def _fast_parse(value: Any) -> datetime | None:
    """parse_time for the common case (an aware ISO string); None sends the caller the slow way."""
    if value.__class__ is str:
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            return None
        if dt.tzinfo is not None:
            return dt
    return None


def _canonical(text: str, dt: datetime) -> str:
    """`text` when it already is in Segment's form (the common case: saves a format)."""
    return text if _CANONICAL(text) else format_time(dt)


def prepare_batch(
    body: Any,
    *,
    received_at: datetime,
    new_id: Callable[[], str],
    body_size: int | None = None,
    owned: bool = False,
    check_json: bool = False,
    browser: bool = False,
    ip: str | None = None,
) -> tuple[list[tuple[int, dict[str, Any]]], list[Rejection]]:
    """Validate a /v1/batch body -> ([(index, event)], [Rejection]); the envelope itself must be valid.

    `body_size` (bytes of the JSON body, when known) lets a small batch skip measuring its
    items; `owned=True` (the caller parsed the body and keeps no other use of it) lets
    items be enriched in place instead of copied. `check_json=True` (the decoder saw a
    surrogate escape or an odd number) rejects the items `json_problem` finds fault with.
    """
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
    if check_json:
        problem = json_problem({k: v for k, v in body.items() if k != "batch"})
        if problem:
            raise invalid(f"batch envelope: {problem}")
    accepted: list[tuple[int, dict[str, Any]]] = []
    rejected: list[Rejection] = []
    now = _Now(received_at, browser=browser, ip=ip)
    # Only what the envelope adds to items, so a bare batch skips the merge entirely.
    envelope = {k: body[k] for k in ("context", "integrations", "sentAt") if body.get(k)} or None
    too_big = (
        _oversized(items, 0, len(items), {}) if check_json or body_size is None or body_size > MAX_EVENT_BYTES else {}
    )
    for index, item in enumerate(items):
        try:
            if index in too_big:
                raise _too_big(too_big[index])
            if check_json:
                problem = json_problem(item)
                if problem:
                    raise invalid(problem)
            accepted.append((index, _prepare(item, None, now, new_id, envelope, copy=not owned)))
        except IntakeError as exc:
            rejected.append(Rejection(index=index, message=exc.message))
    return accepted, rejected


def _oversized(items: list[Any], lo: int, hi: int, out: dict[int, int]) -> dict[int, int]:
    """index -> size of the items over MAX_EVENT_BYTES, measuring as few times as possible.

    Encoding each item on its own costs a call per event; a slice that fits in the limit as
    a whole cannot hold an oversized item, so halve slices only until they fit.
    """
    size = _size(items[lo]) if hi - lo == 1 else _size(items[lo:hi])
    if size <= MAX_EVENT_BYTES:
        return out
    if hi - lo == 1:
        out[lo] = size
        return out
    mid = (lo + hi) // 2
    _oversized(items, lo, mid, out)
    return _oversized(items, mid, hi, out)


def _size(value: Any) -> int:
    # surrogatepass and `default`: a lone surrogate or an Unrepresentable is measured, not
    # raised on here; json_problem rejects it by name.
    return len(_json_size(value).encode("utf-8", "surrogatepass"))


def _too_big(size: int) -> IntakeError:
    return IntakeError(413, f"event is {size} bytes; the limit is {MAX_EVENT_BYTES} bytes per event")


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
        if default if value is None else value is not False:
            out.append(name)
    return tuple(out)


def _show(value: Any) -> str:
    # Any decoded value must be showable: an Unrepresentable number, a lone surrogate (kept
    # escaped, so the message stays valid UTF-8), a structure too deep to encode.
    try:
        text = json.dumps(value, ensure_ascii=False, default=_size_default)
        text.encode("utf-8")
    except (UnicodeEncodeError, ValueError, RecursionError):
        text = json.dumps(value, default=_size_default) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


# --- sample events (segfuncctl test without an event) ------------------------------------


def sample_event(event_type: str, *, now: float) -> dict[str, Any]:
    """A Segment-spec event of `event_type`, for `segfuncctl test` without an event."""
    ts = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    base: dict[str, Any] = {
        "type": event_type,
        "messageId": f"test-{uuid.uuid4()}",
        "userId": "test-user-id",
        "anonymousId": "test-anonymous-id",
        "timestamp": ts,
        "sentAt": ts,
        "receivedAt": ts,
        "originalTimestamp": ts,
        "channel": "server",
        "context": {"library": {"name": "segfuncctl", "version": __version__}, "ip": "127.0.0.1"},
        "integrations": {},
        "version": 2,
    }
    extra: dict[str, dict[str, Any]] = {
        "track": {"event": "Test Event", "properties": {"plan": "pro", "revenue": 42.5, "currency": "USD"}},
        "identify": {"traits": {"name": "Test User", "email": "test@example.com", "plan": "pro"}},
        "page": {
            "name": "Home",
            "properties": {"title": "Home", "path": "/", "url": "https://example.com/", "referrer": ""},
        },
        "screen": {"name": "Home", "properties": {"variation": "blue"}},
        "group": {"groupId": "test-group-id", "traits": {"name": "Example Inc.", "industry": "Technology"}},
        "alias": {"previousId": "test-previous-id"},
        "delete": {},
    }
    base.update(extra.get(event_type, {}))
    return base


def sample_type(handlers: tuple[str, ...]) -> str:
    """The event type a sample should have so that one of `handlers` runs (track by default)."""
    return first_handled_type(handlers)
