"""The NATS side: connect, create streams and consumers, and the batched calls the store makes.

Every coroutine here runs on the bridge's asyncio thread (bridge.py) and touches nats-py
objects only there. `translate()` is the one boundary where nats-py exceptions become
ours (ClusterError, or Backpressure for a full stream); nothing else catches them.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    PubAck,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from ..config import JetStreamConfig
from ..errors import Backpressure, ClusterError
from .codec import (
    H_ATTEMPTS,
    H_DELIVERY,
    H_FUNCTION,
    H_SOURCE,
    H_TYPE,
    Names,
    delivery_id,
    event_headers,
    header_delivery,
    header_json,
    header_number,
    parked_headers,
    routed_to,
)

STREAM_SETUP_S = 30.0  # at start: how long creating the streams may keep failing for a passing cause
PUBLISH_TIMEOUT_S = 5.0
MOVE_FETCH_WAIT_S = 3.0  # replay / unpark: one fetch may wait this long on a busy server
LOG_STREAM_BYTES = 64 << 20  # the cluster's log stream: size-capped, oldest dropped
LOG_STREAM_MSGS = 100_000  # messages (each a batch of lines from one node)
ATTEMPT_STREAM_BYTES = 64 << 20  # the cluster's attempt summaries: size-capped, oldest dropped
ATTEMPT_STREAM_MSGS = 200_000  # one subject each at most: the servers keep ~100 B per subject in memory
ATTEMPT_READ_MSGS = 200  # `deliveries show` reads at most this many summaries of one delivery
NODE_TTL_S = 30.0  # a node's list of functions expires this long after its last presence message
SWEEP_BATCH = 500  # an orphaned consumer is swept this many messages per fetch
FIND_BATCH = 500  # replay --id: dead letters' headers read per fetch while looking for one
LOG_READ_MSGS = 500  # `logs --cluster` reads at most this many of the newest messages  # an unconfirmed publish (no quorum) fails the request: 503
MAX_NAK_DELAY_S = 86_400.0  # a Segfuncd-Due header far in the future (not ours) waits a day, not forever
# Unlimited: a retry waiting for its due time (nak with delay) counts as ack-pending, and a
# limit would stop a function's new events behind its retry backlog. What a node holds at
# once is bounded by the store's fetch sizes (MAX_HELD) instead.
MAX_ACK_PENDING = -1
# Stream-full answers (JSStreamStoreFailedF, max bytes / messages / insufficient resources).
FULL_ERR_CODES = frozenset({10077, 10047, 10028, 10039})
FULL_WORDS = ("maximum bytes", "maximum messages", "insufficient resources", "resource limits")


class Publisher:
    """Pipelined JetStream publishes: many in flight, one reply inbox, a future per message.

    Why not `JetStreamContext.publish_async`: in nats-py 2.16 an error reply (stream full,
    no quorum) raises inside its reply handler (`APIError.from_error` raises instead of
    returning), so the future never completes and the caller only sees a timeout. Here an
    error reply fails its own message with the server's error, at once.
    """

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._prefix = ""
        self._futures: dict[str, asyncio.Future[Any]] = {}
        self._next = 0

    async def start(self) -> None:
        self._prefix = self._nc.new_inbox()
        await self._nc.subscribe(self._prefix + ".*", cb=self._on_reply)

    async def _on_reply(self, msg: Msg) -> None:
        future = self._futures.pop(msg.subject.rpartition(".")[2], None)
        if future is None or future.done():
            return
        headers = msg.headers or {}
        if headers.get("Status") == "503":
            future.set_exception(nats.js.errors.NoStreamResponseError())
            return
        try:
            resp = json.loads(msg.data)
        except ValueError as exc:
            future.set_exception(exc)
            return
        error = resp.get("error") if isinstance(resp, dict) else None
        if error is not None:
            future.set_exception(
                nats.js.errors.APIError(
                    code=error.get("code"), description=error.get("description"), err_code=error.get("err_code")
                )
            )
            return
        future.set_result(PubAck.from_response(resp))

    async def publish_all(self, items: Sequence[tuple[str, bytes, dict[str, str]]], *, timeout_s: float) -> list[Any]:
        """Per item its PubAck or its exception (TimeoutError when the cluster did not answer)."""
        loop = asyncio.get_running_loop()
        tokens = []
        for subject, payload, headers in items:
            self._next += 1
            token = str(self._next)
            self._futures[token] = loop.create_future()
            tokens.append(token)
            await self._nc.publish(subject, payload, reply=f"{self._prefix}.{token}", headers=headers)
        futures = [self._futures[t] for t in tokens if t in self._futures]
        waiting = [f for f in futures if not f.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=timeout_s)
        out: list[Any] = []
        for token, future in zip(tokens, futures, strict=True):
            self._futures.pop(token, None)
            if not future.done():
                future.cancel()
                out.append(nats.errors.TimeoutError())
            elif future.exception() is not None:
                out.append(future.exception())
            else:
                out.append(future.result())
        return out


@dataclass(slots=True)
class Connection:
    nc: Client
    js: JetStreamContext
    publisher: Publisher
    errors: list[str]  # the last errors nats-py reported asynchronously (auth, permissions)


def translate(exc: BaseException, *, doing: str, max_bytes: int | None = None) -> Exception:
    """A nats-py (or asyncio) exception as ours; the caller raises it `from exc`."""
    if isinstance(exc, (Backpressure, ClusterError)):
        return exc
    if isinstance(exc, nats.js.errors.APIError):
        text = f"{exc.description or ''}".lower()
        if exc.err_code in FULL_ERR_CODES or any(w in text for w in FULL_WORDS):
            limit = f" (storage.jetstream.max_bytes = {max_bytes})" if max_bytes else ""
            return Backpressure(f"the cluster's event stream is full{limit}: {exc.description}", retry_after_s=5)
        if exc.code == 503:
            return ClusterError(f"{doing}: JetStream is unavailable (no quorum, or not enabled): {exc.description}")
        return ClusterError(f"{doing}: JetStream refused: {exc.description} (code {exc.err_code})")
    if isinstance(exc, (nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError)):
        return ClusterError(f"{doing}: no JetStream stream answered (JetStream off, or the stream is gone)")
    if isinstance(exc, (nats.errors.TimeoutError, asyncio.TimeoutError, TimeoutError)):
        return ClusterError(f"{doing}: the cluster did not answer in time (a server down, or no quorum)")
    if isinstance(exc, (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError)):
        return ClusterError(f"{doing}: not connected to NATS (reconnecting)")
    if isinstance(exc, nats.errors.Error):
        return ClusterError(f"{doing}: {type(exc).__name__}: {exc}")
    if isinstance(exc, OSError):
        return ClusterError(f"{doing}: {exc.strerror or exc}")
    return ClusterError(f"{doing}: {type(exc).__name__}: {exc}")


def _tls(config: JetStreamConfig, resolve: Any) -> ssl.SSLContext | None:
    wants_tls = bool(config.tls_ca or config.tls_cert) or any(s.startswith("tls://") for s in config.servers)
    if not wants_tls:
        return None
    # Each file is loaded on its own so that the error names the key and the path at fault.
    for key in ("tls_ca", "tls_cert", "tls_key"):
        value = getattr(config, key)
        if value and not Path(resolve(value)).is_file():
            raise ClusterError(f"storage.jetstream.{key}: no such file: {resolve(value)}")
    ca = str(resolve(config.tls_ca)) if config.tls_ca else None
    try:
        context = ssl.create_default_context(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise ClusterError(f"storage.jetstream.tls_ca: cannot load {ca} as PEM CA certificates: {exc}") from exc
    if config.tls_cert:
        cert, key_file = str(resolve(config.tls_cert)), str(resolve(config.tls_key))
        try:
            context.load_cert_chain(cert, key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ClusterError(
                f"storage.jetstream.tls_cert / tls_key: cannot load {cert} with key {key_file}"
                f" (PEM certificate and its private key): {exc}"
            ) from exc
    return context


def _check_nkey_seed(path: Path) -> str:
    """The seed file's path, once it is known to hold a user seed (nats-py would otherwise
    fail at connect with a bare "nkeys: invalid seed" that names neither key nor file)."""
    import nkeys  # type: ignore[import-untyped]  # nats-py[nkeys]; untyped

    try:
        text = path.read_bytes().strip()
        nkeys.from_seed(bytearray(text))
    except OSError as exc:
        raise ClusterError(f"storage.jetstream.nkey: cannot read {path}: {exc.strerror or exc}") from exc
    except Exception as exc:  # nkeys raises its own errors, binascii's and IndexError on junk
        raise ClusterError(
            f"storage.jetstream.nkey: {path} holds no nkey seed (expected one line starting with SU, not the public key)"
        ) from exc
    return str(path)


def _check_credentials(path: Path) -> str:
    """The .creds file's path, once it is known to hold a user JWT and a user seed. nats-py
    reads the JWT in a loop that never ends on a file with a seed but no JWT block (the daemon
    would hang at start, one core busy), and fails on a missing seed with a bare TypeError."""
    import nkeys

    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise ClusterError(f"storage.jetstream.credentials: cannot read {path}: {exc.strerror or exc}") from exc

    def after(marker: bytes) -> bytes:
        for i, line in enumerate(lines[:-1]):
            if marker in line:
                return lines[i + 1].strip()
        return b""

    jwt, seed = after(b"BEGIN NATS USER JWT"), after(b"BEGIN USER NKEY SEED")
    try:
        nkeys.from_seed(bytearray(seed))
        ok = jwt.count(b".") == 2
    except Exception:  # nkeys raises its own errors, binascii's and IndexError on junk
        ok = False
    if not ok:
        raise ClusterError(
            f"storage.jetstream.credentials: {path} is not a NATS .creds file"
            " (expected a user JWT block and a USER NKEY SEED block, as `nsc generate creds` writes)"
        )
    return str(path)


def _connect_failed(where: str, detail: str, config: JetStreamConfig) -> str:
    """Why the first connect failed, naming the config key an operator would change."""
    text = detail.lower()
    if "certificate verify failed" in text or "certificate_verify_failed" in text:
        given = "the CA in storage.jetstream.tls_ca" if config.tls_ca else "no storage.jetstream.tls_ca (system CAs)"
        return f"NATS at {where}: TLS: the server's certificate is not trusted by {given}: {detail}"
    if "certificate required" in text or "certificate_required" in text:
        return (
            f"NATS at {where} requires a client certificate (mutual TLS):"
            f" set storage.jetstream.tls_cert and tls_key: {detail}"
        )
    if "authorization violation" in text or "authentication" in text:
        keys = "storage.jetstream.credentials / nkey / user / token"
        return f"NATS at {where} refused us: authorization violation (check {keys}): {detail}"
    if "ssl" in text or "tls" in text:
        return f"NATS at {where}: TLS failed (storage.jetstream.tls_ca / tls_cert / tls_key): {detail}"
    return f"cannot reach NATS at {where} (storage.jetstream.servers): {detail}"


async def connect(config: JetStreamConfig, *, resolve: Any) -> Connection:
    """Connect and check JetStream is there for us; ClusterError says what is wrong, by key."""
    errors: list[str] = []
    where = ", ".join(config.servers)
    causes: set[str] = set()  # while connecting: each distinct cause an attempt met (bounded)
    connecting = True

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc) or type(exc).__name__)
        del errors[:-5]
        if connecting and len(causes) < 50:
            causes.add(_connect_failed(where, errors[-1], config))

    options: dict[str, Any] = {}
    for key in ("credentials", "nkey"):
        value = getattr(config, key)
        if value and not Path(resolve(value)).is_file():
            raise ClusterError(f"storage.jetstream.{key}: no such file: {resolve(value)}")
    if config.credentials:
        options["user_credentials"] = _check_credentials(Path(resolve(config.credentials)))
    if config.nkey:
        options["nkeys_seed"] = _check_nkey_seed(Path(resolve(config.nkey)))
    if config.user:
        options["user"], options["password"] = config.user, config.password
    if config.token:
        options["token"] = config.token
    tls = _tls(config, resolve)
    if tls is not None:
        options["tls"] = tls
    try:
        nc = await asyncio.wait_for(
            nats.connect(
                servers=list(config.servers),
                name="segfuncd",
                error_cb=on_error,
                connect_timeout=config.connect_timeout_s,
                reconnect_time_wait=0.5,
                max_reconnect_attempts=-1,
                allow_reconnect=True,
                **options,
            ),
            timeout=config.connect_timeout_s * (1 + len(config.servers)),
        )
    except Exception as exc:
        last = _connect_failed(where, errors[-1] if errors else (str(exc) or type(exc).__name__), config)
        # The retries end on whatever the last attempt met, often a bare "connection reset"
        # (the server closes right after its -ERR, sometimes before we read it): report a
        # cause that names a key (TLS, authorization) if any attempt met one.
        named = sorted(c for c in causes if not c.startswith("cannot reach NATS"))
        raise ClusterError(named[0] if named and last.startswith("cannot reach NATS") else last) from exc
    connecting = False
    js = nc.jetstream(timeout=PUBLISH_TIMEOUT_S)
    try:
        await js.account_info()
    except Exception as exc:
        await nc.close()
        denied = [e for e in errors if "permission" in e.lower() or "authoriz" in e.lower()]
        if denied:
            raise ClusterError(f"NATS at {where}: the account lacks permission for JetStream: {denied[-1]}") from exc
        if isinstance(exc, (nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError)):
            raise ClusterError(
                f"NATS at {where} does not offer JetStream: enable it (nats-server -js, or jetstream {{}} in its config)"
            ) from exc
        raise ClusterError(f"NATS at {where}: cannot use JetStream: {translate(exc, doing='account info')}") from exc
    publisher = Publisher(nc)
    await publisher.start()
    return Connection(nc=nc, js=js, publisher=publisher, errors=errors)


async def ensure_streams(conn: Connection, names: Names, config: JetStreamConfig) -> None:
    """Create the events and dead-letter streams, or update their limits; refuse a mismatch."""
    js = conn.js

    def file_stream(name: str, subjects: str, description: str, **limits: Any) -> StreamConfig:
        """A file stream on config.replicas servers; limits-retention, dropping the oldest, unless said."""
        limits.setdefault("retention", RetentionPolicy.LIMITS)
        limits.setdefault("discard", DiscardPolicy.OLD)
        return StreamConfig(
            name=name,
            subjects=[subjects],
            storage=StorageType.FILE,
            num_replicas=config.replicas,
            description=description,
            **limits,
        )

    full = {"max_bytes": config.max_bytes, "discard": DiscardPolicy.NEW}  # a full stream refuses (503)
    wanted = [
        file_stream(
            names.events_stream,
            names.events_subject,
            "segfuncd events (one message per accepted event)",
            retention=RetentionPolicy.INTEREST,
            duplicate_window=config.duplicate_window,
            **full,
        ),
        file_stream(
            names.held_stream,
            names.held_subjects,
            "segfuncd events of held functions (paused, failing to load), parked until they can run",
            duplicate_window=120.0,
            **full,
        ),
        file_stream(
            names.dead_stream,
            names.dead_subjects,
            "segfuncd dead letters (segfuncctl replay)",
            duplicate_window=config.duplicate_window,
            **full,
        ),
        file_stream(
            names.pauses_stream,
            names.pauses_subjects,
            "segfuncd paused functions, shared by every node (segfuncctl pause / resume)",
            max_msgs_per_subject=1,
            max_bytes=1 << 20,
        ),
        file_stream(
            names.logs_stream,
            names.logs_subjects,
            "segfuncd log lines of every node (segfuncctl logs --cluster)",
            max_bytes=min(LOG_STREAM_BYTES, config.max_bytes),
            max_msgs=LOG_STREAM_MSGS,
        ),
        file_stream(
            names.nodes_stream,
            names.nodes_subjects,
            "segfuncd nodes and the functions each runs (orphaned consumers are swept)",
            max_msgs_per_subject=1,
            max_age=NODE_TTL_S,
            max_bytes=1 << 20,
        ),
        file_stream(
            names.attempts_stream,
            names.attempts_subjects,
            "segfuncd attempt summaries of every node (segfuncctl deliveries show)",
            max_bytes=min(ATTEMPT_STREAM_BYTES, config.max_bytes),
            max_msgs=ATTEMPT_STREAM_MSGS,
        ),
    ]
    for stream in wanted:
        deadline = asyncio.get_running_loop().time() + STREAM_SETUP_S
        while True:
            try:
                await _ensure_stream(js, stream)
                break
            except ClusterError:
                raise
            except Exception as exc:
                # Nodes starting together race to create the stream, and an R3 stream needs
                # its peers to agree: a timeout, a 503 or "already in use" is tried again.
                passing = isinstance(exc, (nats.errors.TimeoutError, asyncio.TimeoutError)) or (
                    isinstance(exc, nats.js.errors.APIError) and (exc.code == 503 or exc.err_code == 10058)
                )
                if passing and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.5)
                    continue
                error = translate(exc, doing=f"creating stream {stream.name}")
                if isinstance(error, Backpressure):
                    raise ClusterError(
                        f"creating stream {stream.name}: the servers cannot reserve storage.jetstream.max_bytes = "
                        f"{config.max_bytes} bytes (for each of the event, held and dead-letter streams, times replicas; "
                        "the log and attempt streams take up to 64 MB each): lower it, or give "
                        f"JetStream more storage (max_file_store): {exc}"
                    ) from exc
                raise error from exc


async def _ensure_stream(js: JetStreamContext, stream: StreamConfig) -> None:
    try:
        info = await js.stream_info(stream.name or "")
    except nats.js.errors.NotFoundError:
        await js.add_stream(stream)
        return
    if info.config.retention != stream.retention:
        raise ClusterError(
            f"stream {stream.name} exists with retention {info.config.retention}, not {stream.retention}: "
            "it belongs to something else; pick another storage.jetstream.stream"
        )
    if info.config.num_replicas != stream.num_replicas:
        raise ClusterError(
            f"stream {stream.name} has {info.config.num_replicas} replicas, storage.jetstream.replicas "
            f"asks for {stream.num_replicas}: change it with `nats stream edit` or match the config"
        )
    await js.update_stream(stream)


async def ensure_consumer(conn: Connection, names: Names, function: str, *, ack_wait_s: float) -> Any:
    """The function's durable pull consumer (created or updated) and a pull subscription bound to it."""
    config = ConsumerConfig(
        durable_name=names.consumer(function),
        description=function,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait_s,
        max_deliver=-1,  # our own retry schedule decides when to give up (dead letter)
        max_ack_pending=MAX_ACK_PENDING,
        filter_subject=names.events_subject,
    )
    await conn.js.add_consumer(names.events_stream, config)
    return await conn.js.pull_subscribe_bind(durable=names.consumer(function), stream=names.events_stream)


async def consumer_missing(conn: Connection, names: Names, function: str) -> bool:
    """True when the function's durable consumer is gone (deleted by hand, say); False when it
    is there or the cluster cannot tell now."""
    try:
        await conn.js.consumer_info(names.events_stream, names.consumer(function))
    except nats.js.errors.NotFoundError:
        return True
    except Exception:
        return False
    return False


async def publish_all(
    conn: Connection, items: Sequence[tuple[str, bytes, dict[str, str]]], *, timeout_s: float = PUBLISH_TIMEOUT_S
) -> list[Any]:
    """Publish (subject, payload, headers) items at once; per item its PubAck or its exception."""
    return await conn.publisher.publish_all(items, timeout_s=timeout_s)


async def fetch(sub: Any, batch: int, *, wait_s: float) -> list[Msg]:
    """Up to `batch` messages; [] when none came within `wait_s`."""
    try:
        msgs: list[Msg] = await sub.fetch(batch, timeout=wait_s)
    except (TimeoutError, nats.errors.TimeoutError):
        return []  # nats-py raises either when no message came in time
    return msgs


@dataclass(frozen=True, slots=True)
class Settle:
    """What to answer for one fetched message: ack, term, nak(delay), or keep working (+WPI)."""

    msg: Msg
    action: str  # "ack" | "term" | "nak" | "progress"
    delay_s: float | None = None


async def settle(conn: Connection, items: Sequence[Settle]) -> None:
    """Answer every message (fire-and-forget acks, then one flush)."""
    for item in items:
        if item.action == "ack":
            await item.msg.ack()
        elif item.action == "term":
            await item.msg.term()
        elif item.action == "nak":
            delay = min(item.delay_s, MAX_NAK_DELAY_S) if item.delay_s and item.delay_s > 0 else None
            await item.msg.nak(delay=delay)
        else:
            await item.msg.in_progress()
    await conn.nc.flush(timeout=int(PUBLISH_TIMEOUT_S))


async def move_back(
    conn: Connection,
    names: Names,
    *,
    stream: str,
    subject: str,
    kind: str,
    keep_attempts: bool,
    limit: int = 1_000_000,
) -> int:
    """Messages of `stream` matching `subject` (dead letters, or parked events) back to the
    events stream, each routed to its function only, then deleted; the number moved.

    Each republished message carries Nats-Msg-Id "<kind>:<its sequence in `stream`>", so
    two nodes moving at once publish it once. Dead letters come back with attempts reset
    (a replay starts over), parked events with theirs.
    """
    js = conn.js
    sub = await js.pull_subscribe(subject, stream=stream, config=ConsumerConfig(inactive_threshold=30.0, ack_wait=30.0))
    moved = 0
    try:
        # As many as match now (the consumer's pending count): an empty fetch on a busy
        # server must not end a replay early, and what arrives later waits for the next one.
        expected = min(limit, int((await sub.consumer_info()).num_pending or 0))
        while moved < expected:
            msgs = await fetch(sub, min(100, expected - moved), wait_s=MOVE_FETCH_WAIT_S)
            if not msgs:
                break
            items = [
                _moved(names, m.headers, m.data, m.metadata.sequence.stream, kind=kind, keep_attempts=keep_attempts)
                for m in msgs
            ]
            acks = await publish_all(conn, items)
            failed = next((a for a in acks if isinstance(a, BaseException)), None)
            if failed is not None:
                raise failed
            for m in msgs:
                try:
                    await js.delete_msg(stream, m.metadata.sequence.stream)
                except nats.js.errors.NotFoundError:
                    pass  # another node moved it at the same time
            moved += len(msgs)
    finally:
        try:
            await sub.unsubscribe()
        except Exception:
            pass
    return moved


def _moved(
    names: Names, headers: dict[str, str] | None, data: bytes, sequence: int, *, kind: str, keep_attempts: bool
) -> tuple[str, bytes, dict[str, str]]:
    """A dead letter or parked event as the events message that takes it back (see move_back)."""
    attempts = header_number(headers, H_ATTEMPTS) if keep_attempts else None
    return (
        names.events_subject,
        data,
        event_headers(
            functions=[str(header_json(headers, H_FUNCTION, ""))],
            source=str(header_json(headers, H_SOURCE, "")),
            type_=str(header_json(headers, H_TYPE, "")),
            dedupe=f"{kind}:{sequence}",
            attempts=int(attempts or 0),
            delivery=header_delivery(headers),
        ),
    )


async def find_dead(
    conn: Connection, names: Names, delivery: int, *, subject: str
) -> tuple[int, dict[str, str]] | None:
    """The sequence in the dead-letter stream of delivery `delivery`'s dead letter and its
    headers, None when there is none: a scan of the headers only (`subject` narrows it to
    one function's)."""
    js = conn.js
    sub = await js.pull_subscribe(
        subject,
        stream=names.dead_stream,
        config=ConsumerConfig(
            inactive_threshold=30.0, ack_policy=AckPolicy.NONE, headers_only=True, deliver_policy=DeliverPolicy.ALL
        ),
    )
    wanted = str(delivery)
    try:
        left = int((await sub.consumer_info()).num_pending or 0)
        while left > 0:
            msgs = await fetch(sub, min(FIND_BATCH, left), wait_s=MOVE_FETCH_WAIT_S)
            if not msgs:
                return None
            left -= len(msgs)
            for m in msgs:
                if (m.headers or {}).get(H_DELIVERY) == wanted:
                    return int(m.metadata.sequence.stream), dict(m.headers or {})
        return None
    finally:
        try:
            await sub.unsubscribe()
        except Exception:
            pass


async def move_one(conn: Connection, names: Names, sequence: int) -> dict[str, str] | None:
    """The dead letter at `sequence` back to the events stream (attempts reset), then deleted;
    its headers, or None when it was gone (another node replayed it meanwhile)."""
    js = conn.js
    try:
        msg = await js.get_msg(names.dead_stream, sequence)
    except nats.js.errors.NotFoundError:
        return None
    headers = dict(msg.headers or {})
    item = _moved(names, headers, msg.data or b"", sequence, kind="replay", keep_attempts=False)
    (ack,) = await publish_all(conn, [item])
    if isinstance(ack, BaseException):
        raise ack
    try:
        await js.delete_msg(names.dead_stream, sequence)
    except nats.js.errors.NotFoundError:
        pass  # another node moved it at the same time (the same Nats-Msg-Id: published once)
    return headers


async def publish_attempts(conn: Connection, items: Sequence[tuple[str, bytes]]) -> None:
    """Best effort (no stream ack awaited), as for log lines: summaries never slow delivery."""
    for subject, payload in items:
        await conn.nc.publish(subject, payload)


async def read_attempts(conn: Connection, names: Names, delivery: int) -> list[bytes]:
    """The attempt summaries of one delivery in the cluster's attempts stream, oldest first
    (next-by-subject gets: no consumer is made for a read)."""
    js, subject = conn.js, names.attempts_subject(delivery)
    out: list[bytes] = []
    seq = 1
    while len(out) < ATTEMPT_READ_MSGS:
        try:
            msg = await js.get_msg(names.attempts_stream, seq=seq, subject=subject, next=True)
        except nats.js.errors.NotFoundError:
            break
        if msg.data:
            out.append(msg.data)
        seq = int(msg.seq or seq) + 1
    return out


async def publish_presence(conn: Connection, names: Names, node: str, functions: Sequence[str]) -> None:
    """This node is alive and runs `functions` (the newest message per node is kept NODE_TTL_S)."""
    payload = json.dumps({"node": node, "functions": sorted(functions)}).encode()
    (ack,) = await publish_all(conn, [(names.nodes_subject(node), payload, {})])
    if isinstance(ack, BaseException):
        raise ack


async def presence(conn: Connection, names: Names) -> frozenset[str]:
    """The functions some live node runs (listed in an unexpired presence message)."""
    js = conn.js
    info = await js.stream_info(names.nodes_stream, subjects_filter=names.nodes_subjects)
    out: set[str] = set()
    for subject in info.state.subjects or {}:
        try:
            msg = await js.get_msg(names.nodes_stream, subject=subject)
            value = json.loads(msg.data or b"{}")
        except (nats.js.errors.NotFoundError, ValueError):
            continue
        functions = value.get("functions") if isinstance(value, dict) else None
        out.update(f for f in functions or () if isinstance(f, str))
    return frozenset(out)


async def consumer_functions(conn: Connection, names: Names) -> list[str]:
    """The functions with a durable consumer on the events stream (ours: named after their description)."""
    return [
        c.config.description
        for c in await conn.js.consumers_info(names.events_stream)
        if c.config.description and c.name == names.consumer(c.config.description)
    ]


async def sweep(conn: Connection, names: Names, function: str, *, limit: int, retry_s: float) -> tuple[int, int]:
    """Answer what waits in the consumer of `function` (which no node runs): events not routed
    to it are acked (the interest stream may drop them); its own are parked in the held stream
    (published and stored first, then acked), where any node that runs it again picks them up.
    A park that fails is naked for `retry_s`. (acked, parked)."""
    sub = await conn.js.pull_subscribe_bind(durable=names.consumer(function), stream=names.events_stream)
    acked = parked = 0
    try:
        while acked + parked < limit:
            msgs = await fetch(sub, min(SWEEP_BATCH, limit - acked - parked), wait_s=0.5)
            if not msgs:
                break
            own = []
            for m in msgs:
                routed = routed_to(m.headers)
                if function in routed:
                    own.append((m, routed.index(function)))
                else:
                    await m.ack()
                    acked += 1
            if own:
                items = [
                    (
                        names.held_subject(function),
                        m.data,
                        parked_headers(
                            function=function,
                            source=str(header_json(m.headers, H_SOURCE, "")),
                            type_=str(header_json(m.headers, H_TYPE, "")),
                            attempts=max(0, int(header_number(m.headers, H_ATTEMPTS) or 0)),
                            delivery=header_delivery(m.headers) or delivery_id(m.metadata.sequence.stream, index),
                        ),
                    )
                    for m, index in own
                ]
                acks = await publish_all(conn, items)
                for (m, _), ack in zip(own, acks, strict=True):
                    if isinstance(ack, BaseException):
                        await m.nak(delay=retry_s)
                    else:
                        await m.ack()
                        parked += 1
            await conn.nc.flush(timeout=int(PUBLISH_TIMEOUT_S))
    finally:
        try:
            await sub.unsubscribe()
        except Exception:
            pass
    return acked, parked


async def held_counts(conn: Connection, names: Names) -> dict[str, int]:
    """Parked events per subject token of the held stream (empty: nothing parked)."""
    info = await conn.js.stream_info(names.held_stream, subjects_filter=names.held_subjects)
    prefix = f"{names.prefix}.held."
    return {subject.removeprefix(prefix): int(n) for subject, n in (info.state.subjects or {}).items()}


async def set_paused(conn: Connection, names: Names, function: str, paused: bool) -> None:
    """Record `function` as paused or not, for every node (the newest message per subject wins)."""
    payload = json.dumps({"function": function, "paused": paused}).encode()
    (ack,) = await publish_all(conn, [(names.pauses_subject(function), payload, {})])
    if isinstance(ack, BaseException):
        raise ack


async def paused(conn: Connection, names: Names) -> frozenset[str]:
    """The functions paused in the cluster now."""
    js = conn.js
    info = await js.stream_info(names.pauses_stream, subjects_filter=names.pauses_subjects)
    out = set()
    for subject in info.state.subjects or {}:
        try:
            msg = await js.get_msg(names.pauses_stream, subject=subject)
            value = json.loads(msg.data or b"{}")
        except (nats.js.errors.NotFoundError, ValueError):
            continue
        if isinstance(value, dict) and value.get("paused") is True and isinstance(value.get("function"), str):
            out.add(value["function"])
    return frozenset(out)


async def publish_logs(conn: Connection, subject: str, payload: bytes) -> None:
    """Best effort (no stream ack awaited): log lines must never slow delivery down."""
    await conn.nc.publish(subject, payload)


async def read_logs(
    conn: Connection, names: Names, *, after: int | None = None, max_msgs: int = LOG_READ_MSGS
) -> tuple[int, list[bytes]]:
    """(the log stream's last sequence, messages newest first): the newest `max_msgs`, or
    (with `after`) those after that sequence, at most `max_msgs` of the oldest of them."""
    js = conn.js
    state = (await js.stream_info(names.logs_stream)).state
    last = int(state.last_seq or 0)
    first = max(int(state.first_seq or 0), 1)
    if after is not None:
        first = max(first, after + 1)
        top = min(last, first + max_msgs - 1)
    else:
        top = last
    out: list[bytes] = []
    seq = top
    while seq >= first and len(out) < max_msgs:
        try:
            msg = await js.get_msg(names.logs_stream, seq)
        except nats.js.errors.NotFoundError:
            seq -= 1
            continue
        if msg.data:
            out.append(msg.data)
        seq -= 1
    return (top if after is not None else last), out


@dataclass(frozen=True, slots=True)
class Info:
    """Raw figures from one round of stream and consumer info (made into ClusterStats by the store)."""

    connected_url: str | None
    events: Any  # StreamInfo
    dead: Any  # StreamInfo with per-subject counts
    consumers: list[Any]  # ConsumerInfo of every consumer on the events stream
    held: dict[str, int]  # parked events per function token


async def info(conn: Connection, names: Names) -> Info:
    js = conn.js
    events = await js.stream_info(names.events_stream)
    dead = await js.stream_info(names.dead_stream, subjects_filter=names.dead_subjects)
    consumers = await js.consumers_info(names.events_stream)
    held = await held_counts(conn, names)
    url = conn.nc.connected_url
    return Info(
        connected_url=None if url is None else f"{url.scheme}://{url.hostname}:{url.port}",
        events=events,
        dead=dead,
        consumers=consumers,
        held=held,
    )


async def close(conn: Connection) -> None:
    try:
        await asyncio.wait_for(conn.nc.close(), timeout=3.0)
    except Exception:
        pass
