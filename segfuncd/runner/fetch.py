"""fetch() for the sandbox, performed with httpx: egress rules, limits, node-fetch errors.

What lives here: one `Fetcher` per runner process (one `httpx.AsyncClient`), the network
backend that enforces `egress_deny` after DNS resolution, and the translation of httpx
errors into the `reason` of a JS `FetchError` (the one boundary where they are mapped).

* Proxy and trust variables (HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE, ...) are honoured by
  httpx (`trust_env=True`); they live in this process's environment, never in JS.
* With a proxy the destination is resolved by the proxy, so egress_deny applies to the
  connections we make ourselves (direct requests, and the proxy's own address).
* httpx on trio slows down as concurrency on one pool grows (DESIGN.md §3), so at most
  `max_in_flight` requests run at once and the rest wait on our own semaphore.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
import trio
from httpcore._backends.trio import TrioBackend  # the backend httpx uses under trio

DEFAULT_MAX_IN_FLIGHT = 8
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
DEFAULT_REQUEST_TIMEOUT_S = 30.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Blocked(httpcore.ConnectError):
    """The destination resolved to an address in egress_deny."""


class NotFound(httpcore.ConnectError):
    """DNS resolution failed (node: getaddrinfo ENOTFOUND)."""


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def denied_by(ip: str, networks: tuple[Network, ...]) -> Network | None:
    """The deny-listed network containing ip (IPv4-mapped IPv6 counts as IPv4)."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    for net in networks:
        if addr.version == net.version and addr in net:
            return net
    return None


class GuardedBackend(TrioBackend):
    """Resolve, refuse deny-listed addresses, then connect to the vetted address itself
    (connecting by IP closes the DNS-rebinding gap between check and connect)."""

    def __init__(self, deny: tuple[Network, ...]) -> None:
        self._deny = deny

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NotFound(f"getaddrinfo ENOTFOUND {host}") from exc
        allowed: list[str] = []
        blocked: list[str] = []
        for info in infos:
            ip = str(info[4][0])
            net = denied_by(ip, self._deny)
            if net is None:
                allowed.append(ip)
            else:
                blocked.append(f"{ip} is in {net}")
        if not allowed:
            raise Blocked(f"blocked by egress_deny: {host} resolves to {', '.join(blocked)}")
        try:
            return await super().connect_tcp(allowed[0], port, timeout, local_address, socket_options)
        except httpcore.ConnectError as exc:
            if _refused(exc):
                raise httpcore.ConnectError(f"connect ECONNREFUSED {allowed[0]}:{port}") from exc
            raise


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
    follow_redirects: bool
    timeout_s: float


@dataclass(frozen=True, slots=True)
class FetchReply:
    status: int
    reason: str
    headers: list[list[str]]
    url: str
    text: str
    redirected: bool


class FetchFailed(Exception):
    """Becomes `FetchError: request to URL failed, reason: <reason>` in JS."""

    def __init__(self, reason: str, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class Fetcher:
    """The runner's one HTTP client."""

    def __init__(
        self,
        *,
        user_agent: str,
        egress_deny: Iterable[str],
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
    ) -> None:
        # no `transport=`: httpx then builds its own, and only then honours env proxies
        self._client = httpx.AsyncClient(
            trust_env=True, timeout=timeout_s, limits=httpx.Limits(max_connections=max_in_flight * 4)
        )
        # httpx has no public hook for the network backend; the pool reads it on each connect
        default_pool = self._client._transport._pool  # type: ignore[attr-defined]  # noqa: SLF001
        default_pool._network_backend = GuardedBackend(parse_networks(egress_deny))
        self._user_agent = user_agent
        self._limit = trio.Semaphore(max_in_flight)
        self._max_bytes = max_response_bytes
        self._timeout_s = timeout_s

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(self, spec: FetchSpec) -> FetchReply:
        """Perform one request; FetchFailed for anything that is not an HTTP response."""
        headers = list(spec.headers)
        if not any(k.lower() == "user-agent" for k, _ in headers):
            headers.append(("user-agent", self._user_agent))
        timeout = min(spec.timeout_s, self._timeout_s) if spec.timeout_s > 0 else self._timeout_s
        async with self._limit:
            try:
                return await self._send(spec, headers, timeout)
            except httpx.TimeoutException as exc:
                raise FetchFailed(f"network timeout after {timeout:g} s", "ETIMEDOUT") from exc
            except (httpx.HTTPError, httpcore.ConnectError, OSError, ValueError) as exc:
                raise FetchFailed(*_reason(exc)) from exc

    async def _send(self, spec: FetchSpec, headers: list[tuple[str, str]], timeout: float) -> FetchReply:
        request = self._client.build_request(spec.method, spec.url, headers=headers, content=spec.body, timeout=timeout)
        response = await self._client.send(request, stream=True, follow_redirects=spec.follow_redirects)
        try:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_raw():
                size += len(chunk)
                if size > self._max_bytes:
                    raise FetchFailed(f"content size at {spec.url} over limit: {self._max_bytes}", "EMAXSIZE")
                chunks.append(chunk)
        finally:
            await response.aclose()
        raw = b"".join(chunks)
        encoding = response.encoding or "utf-8"
        try:
            text = raw.decode(encoding, errors="replace")
        except LookupError:
            text = raw.decode("utf-8", errors="replace")
        return FetchReply(
            status=response.status_code,
            reason=response.reason_phrase,
            headers=[[k.decode("latin-1"), v.decode("latin-1")] for k, v in response.headers.raw],
            url=str(response.url),
            text=text,
            redirected=bool(response.history),
        )


def _reason(exc: BaseException) -> tuple[str, str | None]:
    """node-fetch style reason and code for a transport failure."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        text = str(cur)
        if isinstance(cur, NotFound):
            return text, "ENOTFOUND"
        if isinstance(cur, Blocked):
            return text, "EBLOCKED"
        if text.startswith("connect ECONNREFUSED"):
            return text, "ECONNREFUSED"
        cur = cur.__cause__ or cur.__context__
    return str(exc) or type(exc).__name__, None


def monotonic_ms() -> float:
    return time.monotonic() * 1000.0
