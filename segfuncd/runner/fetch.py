"""fetch() for the sandbox, performed with httpx: egress rules, limits, node-fetch errors.

What lives here: one `Fetcher` per runner process, the connect step that applies the
egress policy (egress.py) after DNS resolution, redirects, and the translation of httpx
errors into the `reason` of a JS `FetchError` (the one boundary where they are mapped).

* Proxy and trust variables (HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE, ...) are honoured
  (proxies.py decides on the canonical host); they live in this process's environment, never in JS.
* The egress policy is applied to the destination on every hop: at connect for direct
  requests, and before a request is handed to a proxy (the name is resolved here for the
  check; the proxy resolves it again). The proxy itself is the operator's and not policed.
* A redirect to another origin drops Authorization, Cookie and Proxy-Authorization.
* Direct requests go through httpclient.py (httptools parsing on a keep-alive pool): on loopback it is
  ~6x faster than httpx on trio, whose pool is rescanned for every request (bench/runtime.py). Requests a
  proxy variable applies to go through httpx, which implements the proxy protocols.
* Connections are shared fairly among functions (fairshare.py, keyed by function name):
  one function holds at most `max_in_flight_per_function` requests at once, the runner
  `max_in_flight` in all, and a function under its share always gets a slot, so a fetch
  storm or a hung destination of one function never makes another's requests wait. The
  caller learns when a request has to wait (`on_queue`), so that the wait is not charged
  to the invocation's timeout_ms (child.py pauses its clock).
* Defaults as node-fetch v2: `Accept: */*`, `Accept-Encoding: gzip,deflate`, redirects
  followed (at most `follow`, 20 by default; 303, and 301/302 after POST, become GET), non-2xx
  resolves. `redirect: 'manual'` answers the 3xx itself, `'error'` rejects (type `no-redirect`).
* Failures carry node-fetch's FetchError `type` (`system`, `request-timeout`, `max-redirect`,
  `no-redirect`, `invalid-redirect`, `max-size`) and name the URL of the hop that failed.
* Bodies are bytes end to end: the reply carries the UTF-8 text node-fetch's `res.text()` gives
  (whatever the charset says) and, only when that text would not give the bytes back, the exact
  bytes as latin-1 (`binary`), so `res.buffer()` / `res.arrayBuffer()` are byte-exact.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

import httpcore
import httpx
import trio

from ..fairshare import FairShare, FairShareStatistics
from .egress import EgressError, EgressPolicy, IPAddress, Target, parse_target
from .httpclient import Abort, Aborted, ConnectionPool, HTTPFailure, TooLarge, guarded
from .proxies import ProxySettings

QueueHook = Callable[[bool], None]  # on_queue(True): waits for a connection slot; (False): got one

DEFAULT_MAX_IN_FLIGHT = 64  # requests in flight per runner, all functions
# One function's requests in flight per runner: at least the invocations one context runs
# at once (child.DEFAULT_MAX_ACTIVE), so a function making one request per event never
# waits for a connection slot of its own.
DEFAULT_MAX_IN_FLIGHT_PER_FUNCTION = 32
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
DEFAULT_REQUEST_TIMEOUT_S = 30.0
MAX_REDIRECTS = 20  # node-fetch's default `follow`
MAX_FOLLOW = 100  # a function may ask for more than the default, not for an endless chain
TIMED_OUT = "the request's timeout"  # the Abort reason the timeout watchdog gives
WATCHDOG_MAX_SLEEP_S = 1.0
REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))
# node-fetch 2 sends the URL through Node's legacy url.parse, which escapes these too
_LEGACY_ESCAPE = frozenset("\t\n\r \"'<>\\^`{|}")
# node-fetch 2.6.7+ (CVE-2022-0235) drops these when a redirect leaves the origin.
CREDENTIAL_HEADERS = frozenset(("authorization", "cookie", "cookie2", "proxy-authorization", "www-authenticate"))


async def guarded_connect(host: str, port: int, policy: EgressPolicy) -> trio.SocketStream:
    """Resolve, refuse what the egress policy denies, then connect to the vetted address itself
    (connecting by IP closes the DNS-rebinding gap between check and connect)."""
    try:
        ip: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    try:
        allowed = await policy.resolve(Target("http", host, ip, port, True, "/"), every=False)
    except EgressError as exc:
        raise FetchFailed(exc.reason, "EBLOCKED" if exc.blocked else "ENOTFOUND") from exc
    try:
        return await _connect_to(allowed[0], port)
    except OSError as exc:
        if _refused(exc):
            raise FetchFailed(f"connect ECONNREFUSED {allowed[0]}:{port}", "ECONNREFUSED") from exc
        raise FetchFailed(f"connect {type(exc).__name__} {allowed[0]}:{port}: {exc}", None) from exc


async def _connect_to(address: str, port: int) -> trio.SocketStream:
    """A TCP connection to one vetted IP address. Not trio.open_tcp_stream: with a single
    address its happy-eyeballs machinery (a nursery, a task, cancel scopes per attempt) only
    costs, ~170 µs of Python per connection, and a function opening 32 at once stalls
    every other function of its runner that much longer."""
    sock = trio.socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    try:
        await sock.connect((address, port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)  # sets TCP_NODELAY, as open_tcp_stream's streams have


def _refused(exc: BaseException) -> bool:
    """Whether a connection-refused error hides in exc's causes or exception groups."""
    todo: list[BaseException] = [exc]
    seen: set[int] = set()
    while todo:
        cur = todo.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, ConnectionRefusedError):
            return True
        if isinstance(cur, BaseExceptionGroup):
            todo.extend(cur.exceptions)
        todo.extend(e for e in (cur.__cause__, cur.__context__) if e is not None)
    return False


@dataclass(frozen=True, slots=True)
class FetchSpec:
    """One request as JS described it (see fetch() in prelude/10_web.js)."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes | None
    redirect: str  # node-fetch's `redirect`: "follow", "manual" or "error"
    timeout_s: float
    follow: int = MAX_REDIRECTS  # redirects followed at most (node-fetch's `follow`)


@dataclass(frozen=True, slots=True)
class FetchReply:
    status: int
    reason: str
    headers: list[list[str]]
    url: str
    text: str  # the body decoded as UTF-8, invalid bytes replaced (node-fetch 2's res.text())
    redirected: bool
    binary: str | None = None  # the exact bytes as latin-1, when `text` does not encode back to them


class FetchFailed(Exception):
    """A JS `FetchError` of node-fetch's `type`: for `system`, `request to URL failed, reason: <reason>`
    (URL: the hop that failed, filled in by Fetcher.fetch); for the others the reason is the message.
    `code` is what JS sees as `code`/`errno` for `system` failures; for the others it only labels
    the failure on this side (node-fetch gives them none)."""

    def __init__(self, reason: str, code: str | None = None, *, type: str = "system", url: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.type = type
        self.url = url

    @property
    def message(self) -> str:
        if self.type != "system":
            return self.reason
        return f"request to {self.url} failed, reason: {self.reason}"


class FetchCancelled(Exception):
    """The caller stopped the request through its Abort; nothing is to be answered."""


class Fetcher:
    """The runner's HTTP client: keep-alive pool (httptools) for direct requests, httpx for proxied ones.

    Timeouts are kept by one watchdog task (a trio system task, started with the first
    request) that aborts requests past their deadline, not by a cancel scope per request:
    see httpclient.Abort for why.
    """

    def __init__(
        self,
        *,
        user_agent: str,
        egress_deny: Iterable[str] = (),
        egress_allow: Iterable[str] = (),
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_in_flight_per_function: int = DEFAULT_MAX_IN_FLIGHT_PER_FUNCTION,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
        proxies: ProxySettings | None = None,
    ) -> None:
        self._policy = EgressPolicy(allow=egress_allow, deny=egress_deny)
        self._ssl: ssl.SSLContext = httpx.create_ssl_context(trust_env=True)  # honours SSL_CERT_FILE / _DIR
        self._pool = ConnectionPool(
            connect=lambda host, port: guarded_connect(host, port, self._policy),
            ssl_context=self._ssl,
            max_body=max_response_bytes,
        )
        self._proxies = ProxySettings.from_environment() if proxies is None else proxies
        # one httpx client per proxy URL, built on first use (the proxy is the operator's: not policed)
        self._proxy_clients: dict[str, httpx.AsyncClient] = {}
        self._user_agent = user_agent
        self._slots = FairShare(max(1, max_in_flight))
        self._per_function = max(1, max_in_flight_per_function)
        self._max_bytes = max_response_bytes
        self._timeout_s = timeout_s
        # the requests holding a connection slot (dict as an ordered set), for the watchdog
        self._inflight: dict[Abort, None] = {}
        self._watchdog: trio.CancelScope | None = None
        self._wake = trio.Event()
        self._wake_at = 0.0

    async def aclose(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None  # a request after this starts a watchdog of its own
        await self._pool.aclose()
        for client in self._proxy_clients.values():
            await client.aclose()

    def statistics(self) -> FairShareStatistics:
        """Connection slots held and waited for, per function."""
        return self._slots.statistics()

    async def fetch(
        self, spec: FetchSpec, *, owner: str = "", on_queue: QueueHook | None = None, abort: Abort | None = None
    ) -> FetchReply:
        """Perform one request for function `owner`; FetchFailed for anything that is not an HTTP response.

        The request's own timeout starts once it holds a connection slot. `abort` (kept by
        the caller) stops it wherever it is: FetchCancelled.
        """
        abort = Abort() if abort is None else abort
        headers = _with_defaults(spec.headers, self._user_agent)
        timeout = min(spec.timeout_s, self._timeout_s) if spec.timeout_s > 0 else self._timeout_s
        queued = False

        def waiting() -> None:
            nonlocal queued
            queued = True
            if on_queue is not None:
                on_queue(True)

        if self._slots.try_acquire(owner, limit=self._per_function):
            # acquire()'s yield, kept: the requests of one round are written in one batch
            # (without it a request cost ~10 µs more, measured)
            await trio.lowlevel.cancel_shielded_checkpoint()
        else:
            acquire = partial(self._slots.acquire, owner, limit=self._per_function, on_wait=waiting)
            try:
                await guarded(abort, acquire)
            except Aborted as exc:
                raise FetchCancelled(str(exc)) from None
            finally:
                if queued and on_queue is not None:
                    on_queue(False)
        hop = [spec.url]  # the URL being requested now: node-fetch's errors name it
        abort.deadline = trio.current_time() + timeout
        try:
            self._watch(abort)
            try:
                return await self._follow(spec, headers, hop, abort)
            except Aborted as exc:
                if abort.reason != TIMED_OUT:
                    raise FetchCancelled(str(exc)) from None
                raise FetchFailed(
                    f"network timeout at: {hop[0]}", "ETIMEDOUT", type="request-timeout", url=hop[0]
                ) from exc
            except FetchFailed as exc:
                raise FetchFailed(exc.reason, exc.code, type=exc.type, url=exc.url or hop[0]) from exc
            except httpx.TimeoutException as exc:
                raise FetchFailed(
                    f"network timeout at: {hop[0]}", "ETIMEDOUT", type="request-timeout", url=hop[0]
                ) from exc
            except TooLarge as exc:
                reason = f"content size at {hop[0]} over limit: {self._max_bytes}"
                raise FetchFailed(reason, "EMAXSIZE", type="max-size", url=hop[0]) from exc
            except HTTPFailure as exc:
                raise FetchFailed(str(exc), "ECONNRESET", url=hop[0]) from exc
            except EgressError as exc:
                raise FetchFailed(exc.reason, "EBLOCKED" if exc.blocked else "EINVALIDURL", url=hop[0]) from exc
            except (httpx.HTTPError, httpcore.ConnectError, OSError, ValueError, UnicodeError) as exc:
                reason, code = _reason(exc)
                raise FetchFailed(reason, code, url=hop[0]) from exc
        finally:
            self._inflight.pop(abort, None)
            self._slots.release(owner)

    def _watch(self, abort: Abort) -> None:
        """Give `abort` (its deadline set) to the watchdog, started here the first time."""
        self._inflight[abort] = None
        if self._watchdog is None:
            self._watchdog = trio.CancelScope()
            trio.lowlevel.spawn_system_task(self._expire, self._watchdog, name="segfuncd fetch timeouts")
        elif abort.deadline < self._wake_at:
            self._wake.set()  # due before the watchdog's next look

    async def _expire(self, scope: trio.CancelScope) -> None:
        """Abort the requests past their deadline; sleep until the next one is due (at most
        WATCHDOG_MAX_SLEEP_S), or until a request due sooner arrives."""
        try:
            with scope:
                while True:
                    now = trio.current_time()
                    wake_at = now + WATCHDOG_MAX_SLEEP_S
                    for abort in list(self._inflight):
                        if abort.deadline <= now:
                            abort.abort(TIMED_OUT)
                        elif abort.deadline < wake_at:
                            wake_at = abort.deadline
                    self._wake = trio.Event()
                    self._wake_at = wake_at
                    with trio.move_on_at(wake_at):
                        await self._wake.wait()
        finally:
            if self._watchdog is scope:
                self._watchdog = None  # a later trio.run starts its own

    async def _follow(
        self, spec: FetchSpec, headers: list[tuple[str, str]], hop: list[str], abort: Abort
    ) -> FetchReply:
        """Send, handling redirects the way node-fetch 2.6 does; every hop is parsed and policed anew."""
        url, method, body = spec.url, spec.method, spec.body
        target = parse_target(url)
        follow = max(0, min(spec.follow, MAX_FOLLOW))
        counter = 0
        while True:
            status, reason, resp_headers, raw = await self._send_one(method, target, headers, body, abort)
            if status in REDIRECT_STATUSES and spec.redirect != "manual":
                location = next((v for k, v in resp_headers if k.lower() == "location"), None)
                following: Target | None = None
                if location is not None:
                    try:
                        next_url = _resolve(url, location)
                        following = parse_target(next_url)
                    except (EgressError, ValueError) as exc:
                        reason = f"uri requested responds with an invalid redirect URL: {location}"
                        raise FetchFailed(reason, type="invalid-redirect") from exc
                if spec.redirect == "error":
                    reason = f"uri requested responds with a redirect, redirect mode is set to error: {url}"
                    raise FetchFailed(reason, type="no-redirect")
                if following is not None:
                    if counter >= follow:
                        raise FetchFailed(f"maximum redirect reached at: {url}", "EMAXREDIRECT", type="max-redirect")
                    counter += 1
                    if following.origin != target.origin:
                        headers = [(k, v) for k, v in headers if k.lower() not in CREDENTIAL_HEADERS]
                    if status == 303 or (status in (301, 302) and method == "POST"):
                        method, body = "GET", None
                        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                    url, target = next_url, following
                    hop[0] = url
                    continue
            text, binary = _body_text(raw)
            return FetchReply(
                status=status,
                reason=reason,
                headers=[[k, v] for k, v in resp_headers],
                url=url,
                text=text,
                redirected=counter > 0,
                binary=binary,
            )

    async def _send_one(
        self, method: str, target: Target, headers: list[tuple[str, str]], body: bytes | None, abort: Abort
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        proxy = self._proxies.proxy_for(target)
        if proxy is not None:

            async def via_proxy() -> tuple[int, str, list[tuple[str, str]], bytes]:
                # The proxy resolves the name again; we check what it resolves to here, every address.
                await self._policy.resolve(target, every=True)
                return await self._via_httpx(proxy, method, target, headers, body)

            return await guarded(abort, via_proxy)
        self._policy.check(target)  # literals fail fast; names are checked at connect
        # one pass: a Host of the function's own is kept where it is; Content-Length is ours
        sized = body is not None or method in ("POST", "PUT", "PATCH")
        out: list[tuple[str, str]] = []
        has_host = False
        for k, v in headers:
            low = k.lower()
            if low == "host":
                has_host = True
            elif sized and low == "content-length":
                continue
            out.append((k, v))
        if not has_host:
            out.insert(0, ("host", target.netloc))
        if sized:
            out.append(("content-length", str(len(body or b""))))
        raw = await self._pool.request(target.scheme, target.name, target.port, method, target.target, out, body, abort)
        return raw.status, raw.reason, raw.headers, raw.body

    async def _via_httpx(
        self, proxy: str, method: str, target: Target, headers: list[tuple[str, str]], body: bytes | None
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        client = self._proxy_clients.get(proxy)
        if client is None:
            try:
                client = httpx.AsyncClient(
                    proxy=proxy, trust_env=False, verify=self._ssl, timeout=self._timeout_s, follow_redirects=False
                )
            except (ValueError, ImportError, httpx.HTTPError) as exc:
                # the proxy URL may hold credentials: name only its scheme
                scheme = proxy.partition("://")[0] if "://" in proxy else "?"
                raise FetchFailed(
                    f"the {scheme}:// proxy from the environment is unusable: {type(exc).__name__}"
                ) from exc
            self._proxy_clients[proxy] = client
        request = client.build_request(method, target.url, headers=headers, content=body)
        response = await client.send(request, stream=True)
        try:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self._max_bytes:
                    raise TooLarge()
                chunks.append(chunk)
        finally:
            await response.aclose()
        hs = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in response.headers.raw
            if k.lower() != b"content-encoding"
        ]  # already decoded by httpx
        return response.status_code, response.reason_phrase, hs, b"".join(chunks)


def _with_defaults(headers: list[tuple[str, str]], user_agent: str) -> list[tuple[str, str]]:
    names = {k.lower() for k, _ in headers}
    out = list(headers)
    for name, value in (("user-agent", user_agent), ("accept", "*/*"), ("accept-encoding", "gzip,deflate")):
        if name not in names:
            out.append((name, value))
    return out


def _body_text(raw: bytes) -> tuple[str, str | None]:
    """(UTF-8 text as node-fetch 2's res.text() gives it, whatever the charset; the bytes as latin-1
    when that text would not encode back to them, else None)."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), raw.decode("latin-1")


def _resolve(base: str, location: str) -> str:
    """The next hop's URL as node-fetch 2 makes it: Location resolved against the current URL, then
    escaped as Node's legacy url.parse does (spaces, quotes, `|`, `^`, non-ASCII...)."""
    joined = urllib.parse.urljoin(base, location.strip(" \t\n\r"))
    parts = urllib.parse.urlsplit(joined)
    rest = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))
    return f"{parts.scheme}://{parts.netloc}" + "".join(_escape_char(c) for c in rest)


def _escape_char(c: str) -> str:
    if c in _LEGACY_ESCAPE or not c.isascii() or ord(c) < 0x20 or ord(c) == 0x7F:
        return "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
    return c


def _reason(exc: BaseException) -> tuple[str, str | None]:
    """node-fetch style reason and code for a failure httpx reported (proxied requests)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, FetchFailed):
            return cur.reason, cur.code
        cur = cur.__cause__ or cur.__context__
    return str(exc) or type(exc).__name__, None
