"""fetch() for the sandbox, performed with httpx: egress rules, limits, node-fetch errors.

What lives here: one `Fetcher` per runner process (one `httpx.AsyncClient`), the network
backend that enforces `egress_deny` after DNS resolution, and the translation of httpx
errors into the `reason` of a JS `FetchError` (the one boundary where they are mapped).

* Proxy and trust variables (HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE, ...) are honoured by
  httpx (`trust_env=True`); they live in this process's environment, never in JS.
* With a proxy the destination is resolved by the proxy, so egress_deny applies to the
  connections we make ourselves (direct requests, and the proxy's own address).
* Direct requests go through httpclient.py (httptools parsing on a keep-alive pool): on loopback it is
  ~6x faster than httpx on trio, whose pool is rescanned for every request (bench/runtime.py). Requests a
  proxy variable applies to go through httpx, which implements the proxy protocols.
* At most `max_in_flight` requests run at once; the rest wait on our own semaphore.
* Defaults as node-fetch v2: `Accept: */*`, `Accept-Encoding: gzip,deflate`, redirects
  followed (at most 20; 303, and 301/302 after POST, become GET), non-2xx resolves.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
import trio
from httpcore._backends.trio import TrioBackend, TrioStream  # what httpx uses under trio

from .httpclient import ConnectionPool, HTTPFailure, TooLarge

DEFAULT_MAX_IN_FLIGHT = 8
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
DEFAULT_REQUEST_TIMEOUT_S = 30.0
MAX_REDIRECTS = 20

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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


async def guarded_connect(host: str, port: int, deny: tuple[Network, ...]) -> trio.SocketStream:
    """Resolve, refuse deny-listed addresses, then connect to the vetted address itself
    (connecting by IP closes the DNS-rebinding gap between check and connect)."""
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchFailed(f"getaddrinfo ENOTFOUND {host}", "ENOTFOUND") from exc
    allowed: list[str] = []
    blocked: list[str] = []
    for info in infos:
        ip = str(info[4][0])
        net = denied_by(ip, deny)
        if net is None:
            allowed.append(ip)
        else:
            blocked.append(f"{ip} is in {net}")
    if not allowed:
        raise FetchFailed(f"blocked by egress_deny: {host} resolves to {', '.join(blocked)}", "EBLOCKED")
    try:
        return await trio.open_tcp_stream(allowed[0], port)
    except OSError as exc:
        if _refused(exc):
            raise FetchFailed(f"connect ECONNREFUSED {allowed[0]}:{port}", "ECONNREFUSED") from exc
        raise FetchFailed(f"connect {type(exc).__name__} {allowed[0]}:{port}: {exc}", None) from exc


class GuardedBackend(TrioBackend):
    """httpx's network backend, with guarded_connect (used for connections to proxies)."""

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
            return TrioStream(await guarded_connect(host, port, self._deny))
        except FetchFailed as exc:
            raise httpcore.ConnectError(exc.reason) from exc


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
    """The runner's HTTP client: keep-alive pool (httptools) for direct requests, httpx for proxied ones."""

    def __init__(
        self,
        *,
        user_agent: str,
        egress_deny: Iterable[str],
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
    ) -> None:
        self._deny = parse_networks(egress_deny)
        # no `transport=`: httpx then builds its own, and only then honours env proxies
        self._client = httpx.AsyncClient(trust_env=True, timeout=timeout_s, follow_redirects=False)
        # httpx has no public hook for the network backend; the pool reads it on each connect
        default_pool = self._client._transport._pool  # type: ignore[attr-defined]  # noqa: SLF001
        default_pool._network_backend = GuardedBackend(self._deny)
        self._pool = ConnectionPool(
            connect=lambda host, port: guarded_connect(host, port, self._deny),
            ssl_context=httpx.create_ssl_context(trust_env=True),  # honours SSL_CERT_FILE / _DIR
            max_body=max_response_bytes,
        )
        self._proxies = urllib.request.getproxies()  # the environment's, read once
        self._bypass: dict[str, bool] = {}
        self._user_agent = user_agent
        self._limit = trio.Semaphore(max_in_flight)
        self._max_bytes = max_response_bytes
        self._timeout_s = timeout_s

    async def aclose(self) -> None:
        await self._pool.aclose()
        await self._client.aclose()

    async def fetch(self, spec: FetchSpec) -> FetchReply:
        """Perform one request; FetchFailed for anything that is not an HTTP response."""
        headers = _with_defaults(spec.headers, self._user_agent)
        timeout = min(spec.timeout_s, self._timeout_s) if spec.timeout_s > 0 else self._timeout_s
        async with self._limit:
            try:
                with trio.fail_after(timeout):
                    return await self._follow(spec, headers)
            except (trio.TooSlowError, httpx.TimeoutException) as exc:
                raise FetchFailed(f"network timeout at: {spec.url}", "ETIMEDOUT") from exc
            except TooLarge as exc:
                raise FetchFailed(f"content size at {spec.url} over limit: {self._max_bytes}", "EMAXSIZE") from exc
            except HTTPFailure as exc:
                raise FetchFailed(str(exc), "ECONNRESET") from exc
            except (httpx.HTTPError, httpcore.ConnectError, OSError, ValueError, UnicodeError) as exc:
                raise FetchFailed(*_reason(exc)) from exc

    async def _follow(self, spec: FetchSpec, headers: list[tuple[str, str]]) -> FetchReply:
        """Send, following redirects the way node-fetch does."""
        url, method, body = spec.url, spec.method, spec.body
        for hop in range(MAX_REDIRECTS + 1):
            status, reason, resp_headers, raw = await self._send_one(method, url, headers, body)
            location = next((v for k, v in resp_headers if k.lower() == "location"), None)
            if not (spec.follow_redirects and status in (301, 302, 303, 307, 308) and location):
                return FetchReply(
                    status=status,
                    reason=reason,
                    headers=[[k, v] for k, v in resp_headers],
                    url=url,
                    text=_text(raw, resp_headers),
                    redirected=hop > 0,
                )
            url = urllib.parse.urljoin(url, location)
            if status == 303 or (status in (301, 302) and method == "POST"):
                method, body = "GET", None
                headers = [(k, v) for k, v in headers if k.lower() not in ("content-type", "content-length")]
        raise FetchFailed(f"maximum redirect reached at: {spec.url}", "EMAXREDIRECT")

    async def _send_one(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        parts = urllib.parse.urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        if scheme not in ("http", "https") or not host:
            raise FetchFailed(f"unsupported URL {url}", None)
        if self._proxied(scheme, host):
            return await self._via_httpx(method, url, headers, body)
        port = parts.port or (443 if scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        out = list(headers)
        if not any(k.lower() == "host" for k, _ in out):
            shown = f"[{host}]" if ":" in host else host
            out.insert(0, ("host", shown if parts.port is None else f"{shown}:{port}"))
        if body is not None or method in ("POST", "PUT", "PATCH"):
            out = [(k, v) for k, v in out if k.lower() != "content-length"]
            out.append(("content-length", str(len(body or b""))))
        raw = await self._pool.request(scheme, host.encode("idna").decode("ascii"), port, method, target, out, body)
        return raw.status, raw.reason, raw.headers, raw.body

    def _proxied(self, scheme: str, host: str) -> bool:
        if scheme not in self._proxies and "all" not in self._proxies:
            return False
        bypass = self._bypass.get(host)
        if bypass is None:
            check = getattr(urllib.request, "proxy_bypass_environment")  # noqa: B009 - not in typeshed
            bypass = self._bypass[host] = bool(check(host, self._proxies))
        return not bypass

    async def _via_httpx(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        request = self._client.build_request(method, url, headers=headers, content=body)
        response = await self._client.send(request, stream=True)
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


def _text(raw: bytes, headers: list[tuple[str, str]]) -> str:
    ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
    charset = "utf-8"
    for param in ctype.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip('"')
    try:
        return raw.decode(charset, errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")


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
