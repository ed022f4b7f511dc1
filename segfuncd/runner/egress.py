"""The egress policy: which addresses fetch() may reach. Pure (no I/O but `resolve`).

One job: given a URL a function asked for, say where it really points and whether the
policy lets it go there. fetch.py calls it before every connection it makes itself, on
every redirect hop, and before it hands a request to a proxy.

* Hosts are parsed the way the WHATWG URL parser (and so a browser, Node's `URL` and
  curl's "ends in a number" rule) parses them: percent-decoding, IDNA mapping (full-width
  digits are digits), and every IPv4 spelling (`2130706433`, `0x7f000001`, `0177.0.0.1`,
  `127.1`, `127.0.0.1.`). A host that ends in a number but is no valid IPv4 address is a
  malformed URL. So `169.254.43518` is checked as 169.254.169.254, not as a name.
* An IPv6 address that embeds an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
  `::a.b.c.d`, NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4 `2002::/16`, Teredo
  `2001::/32`, SIIT `::ffff:0:a.b.c.d`) is checked as itself *and* as each IPv4 address it
  embeds: denied if either is.
* Rules are CIDRs (`10.0.0.0/8`, `::1`), optionally with a port (`127.0.0.1:8080`,
  `[::1]:8080`). The built-in deny list (`BUILTIN_DENY`) always applies; `egress_deny`
  adds to it and `egress_allow` opens holes in it. For one address, the most specific
  matching rule wins (longer prefix, then a rule with a port over one without); on a tie,
  allow wins. So `egress_allow = ["127.0.0.1:8080"]` opens exactly one loopback service.
* A hostname is resolved and every address it resolves to is checked. Direct requests then
  connect to a vetted address (not to the name again: no DNS-rebinding gap). A proxy
  resolves the name again itself; we cannot see its answer, so a proxied request is sent
  only when *every* address the name resolves to here is allowed. A name that does not
  resolve here at all is left to the proxy (VMs behind an egress proxy often have no
  public DNS): the proxy's own rules then apply to it.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field

import idna
import trio

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Loopback, unspecified/"this network" (Linux connects 0.0.0.0 to loopback), link-local
# (169.254.169.254 is the AWS/GCP/Azure metadata service), Alibaba's metadata address and
# AWS's IPv6 metadata address. Private ranges are *not* here: internal services are what
# destination functions are for.
BUILTIN_DENY = (
    "127.0.0.0/8",
    "::1/128",
    "0.0.0.0/8",
    "::/128",
    "169.254.0.0/16",
    "fe80::/10",
    "100.100.100.200/32",
    "fd00:ec2::254/128",
)

_V4_TAIL_PREFIXES = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::ffff:0:0/96",  # IPv4-mapped
        "::/96",  # IPv4-compatible (deprecated, still routed by some stacks)
        "64:ff9b::/96",  # NAT64 well-known prefix
        "64:ff9b:1::/48",  # NAT64 local-use prefix
        "::ffff:0:0:0/96",  # SIIT IPv4-translated
    )
)
# WHATWG "forbidden domain code points" (after percent-decoding), plus the C0 controls/DEL.
_FORBIDDEN = frozenset(" #%/:<>?@[\\]^|") | frozenset(chr(c) for c in range(0x20)) | {"\x7f"}


class EgressError(ValueError):
    """A URL that is malformed or that the policy refuses; str() says which and why."""

    def __init__(self, reason: str, *, blocked: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.blocked = blocked


@dataclass(frozen=True, slots=True)
class Target:
    """Where one request goes, parsed once: every later step uses these fields, not the raw URL."""

    scheme: str  # "http" | "https"
    host: str  # canonical: an IPv4 dotted quad, a bare IPv6 address, or a lower-case ASCII name
    ip: IPAddress | None  # set when the host is an address literal
    port: int
    explicit_port: bool
    target: str  # path and query, as sent in the request line
    # derived once (a Target is kept per URL and read by every request to it)
    netloc: str = field(init=False)  # the Host header: [v6] in brackets, the port only when given
    name: str = field(init=False)  # the host without a trailing dot (NO_PROXY, TLS server names)

    def __post_init__(self) -> None:
        shown = f"[{self.host}]" if self.ip is not None and self.ip.version == 6 else self.host
        object.__setattr__(self, "netloc", shown if not self.explicit_port else f"{shown}:{self.port}")
        object.__setattr__(self, "name", self.host.rstrip(".") if self.ip is None else self.host)

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    @property
    def url(self) -> str:
        """The canonical URL: what is handed to a proxy, so it cannot read the host differently."""
        return f"{self.scheme}://{self.netloc}{self.target}"


_CONTROL_OR_BACKSLASH = re.compile(r"[\x00-\x1f\x7f\\]")
DECISION_CACHE_SIZE = 4096  # (address, port) answers kept per policy


CACHED_URL_CHARS = 2048  # longer URLs are parsed every time: the cache is the runner's, not one function's


def parse_target(url: str) -> Target:
    """Parse an absolute http(s) URL; EgressError (never another exception) when it is malformed."""
    try:
        return _cached_target(url) if len(url) <= CACHED_URL_CHARS else _parse_target(url)
    except EgressError:
        raise
    except (ValueError, UnicodeError, TypeError) as exc:
        raise EgressError(f"invalid URL: {exc}") from None


def _parse_target(url: str) -> Target:
    if _CONTROL_OR_BACKSLASH.search(url):
        raise EgressError("invalid URL: control character or backslash")
    parts = urllib.parse.urlsplit(url.strip(" "))
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise EgressError(f"unsupported protocol {scheme + ':' if scheme else '(none)'}")
    netloc = parts.netloc.rpartition("@")[2]
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise EgressError("invalid URL: unclosed [ in the host")
        raw_host, rest = netloc[: end + 1], netloc[end + 1 :]
    else:
        raw_host, colon, port_text = netloc.partition(":")
        rest = colon + port_text
    if rest and not rest.startswith(":"):
        raise EgressError("invalid URL: junk after the host")
    port_text = rest[1:]
    if port_text and not (port_text.isascii() and port_text.isdigit()):
        raise EgressError(f"invalid URL: bad port {port_text!r}")
    default = 443 if scheme == "https" else 80
    port = int(port_text) if port_text else default
    if port > 65535:
        raise EgressError(f"invalid URL: port {port} out of range")
    ip, host = parse_host(raw_host)
    target = _encode_target((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    return Target(scheme, host, ip, port, bool(port_text) and port != default, target)


# pure (Target is frozen), and a function fetches the same URLs over and over; at most
# 1024 x ~2 KB, whatever a function sends
_cached_target = functools.lru_cache(maxsize=1024)(_parse_target)


def _encode_target(target: str) -> str:
    """Spaces, other controls and non-ASCII in the path and query percent-encoded (as `new URL()`
    does), so the request line can never be split by what the URL holds."""
    if target.isascii() and " " not in target:
        return target
    return urllib.parse.quote(target, safe="".join(chr(c) for c in range(0x21, 0x7F)))


@functools.lru_cache(maxsize=1024)  # pure, and a runner sees few distinct hosts
def parse_host(raw: str) -> tuple[IPAddress | None, str]:
    """A URL's host -> (address if it is one, canonical host text), as the WHATWG host parser does."""
    if not raw:
        raise EgressError("invalid URL: empty host")
    if raw.startswith("["):
        if not raw.endswith("]") or "%" in raw:
            raise EgressError(f"invalid URL: bad IPv6 host {raw!r}")
        try:
            v6 = ipaddress.IPv6Address(raw[1:-1])
        except ValueError:
            raise EgressError(f"invalid URL: bad IPv6 host {raw!r}") from None
        return v6, str(v6)
    try:
        decoded = urllib.parse.unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise EgressError("invalid URL: host is not UTF-8 after percent-decoding") from None
    try:
        ascii_host = decoded.lower() if decoded.isascii() else _to_ascii(decoded)
        for label in ascii_host.split("."):
            if label.startswith("xn--"):
                idna.decode(label)  # a bad punycode label makes the URL invalid, as in WHATWG
    except (idna.IDNAError, UnicodeError) as exc:
        raise EgressError(f"invalid URL: bad host name ({exc})") from None
    if not ascii_host or any(c in _FORBIDDEN for c in ascii_host):
        raise EgressError(f"invalid URL: forbidden character in host {raw!r}")
    if _ends_in_number(ascii_host):
        v4 = parse_ipv4(ascii_host)
        return v4, str(v4)
    return None, ascii_host


def _to_ascii(host: str) -> str:
    mapped = idna.uts46_remap(host, std3_rules=False, transitional=False)
    labels = mapped.split(".")
    return ".".join(lbl if lbl.isascii() else idna.alabel(lbl).decode("ascii") for lbl in labels).lower()


def _ends_in_number(host: str) -> bool:
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    last = parts[-1]
    if last and all(c in "0123456789" for c in last):
        return True
    return _ipv4_number(last) is not None


def _ipv4_number(part: str) -> int | None:
    """One dotted part: decimal, 0x hex or leading-0 octal; None when it is not a number."""
    if not part:
        return None
    radix = 10
    if part[:2] in ("0x", "0X"):
        part, radix = part[2:], 16
    elif len(part) > 1 and part[0] == "0":
        part, radix = part[1:], 8
    if not part:
        return 0
    digits = "0123456789abcdef"[:radix]
    if not all(c in digits for c in part.lower()):
        return None
    return int(part, radix)


def parse_ipv4(host: str) -> ipaddress.IPv4Address:
    """The WHATWG IPv4 parser; EgressError for a host that ends in a number but is no address."""
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if len(parts) > 4:
        raise EgressError(f"invalid URL: bad IPv4 host {host!r}")
    numbers = []
    for part in parts:
        n = _ipv4_number(part)
        if n is None:
            raise EgressError(f"invalid URL: bad IPv4 host {host!r}")
        numbers.append(n)
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise EgressError(f"invalid URL: bad IPv4 host {host!r}")
    value = numbers[-1] + sum(n * 256 ** (3 - i) for i, n in enumerate(numbers[:-1]))
    return ipaddress.IPv4Address(value)


def embedded_ipv4(addr: IPAddress) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address an IPv6 address embeds in a form some stack or gateway routes."""
    if addr.version == 4:
        return []
    assert isinstance(addr, ipaddress.IPv6Address)
    out: list[ipaddress.IPv4Address] = []
    if any(addr in net for net in _V4_TAIL_PREFIXES):
        out.append(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    if addr.sixtofour is not None:
        out.append(addr.sixtofour)
    if addr.teredo is not None:
        out.extend(addr.teredo)
    return out


@dataclass(frozen=True, slots=True)
class Rule:
    """One policy entry: a network, optionally one port, and the text it was written as."""

    network: Network
    port: int | None
    text: str

    def matches(self, addr: IPAddress, port: int) -> bool:
        return addr.version == self.network.version and addr in self.network and self.port in (None, port)

    @property
    def specificity(self) -> tuple[int, int]:
        return (self.network.prefixlen, 0 if self.port is None else 1)


def parse_rule(text: str) -> Rule:
    """`10.0.0.0/8`, `::1`, `127.0.0.1:8080`, `[::1]:8080`, `[fd00::/8]:443`; ValueError says what is wrong."""
    spec, port = text.strip(), None
    if spec.startswith("["):
        inner, _, after = spec[1:].partition("]")
        if after:
            if not after.startswith(":") or not after[1:].isdigit():
                raise ValueError(f'expected "CIDR" or "host:port", got {text!r}')
            port = int(after[1:])
        spec = inner
    elif spec.count(":") == 1:
        spec, _, port_text = spec.partition(":")
        if not port_text.isdigit():
            raise ValueError(f'expected "CIDR" or "host:port", got {text!r}')
        port = int(port_text)
    if port is not None and not 0 < port <= 65535:
        raise ValueError(f"port out of range in {text!r}")
    try:
        network = ipaddress.ip_network(spec, strict=False)
    except ValueError:
        raise ValueError(f"not an IP address or CIDR network: {text!r} (host names are not allowed here)") from None
    return Rule(network, port, text)


class EgressPolicy:
    """The built-in deny list plus the operator's `egress_deny`, with `egress_allow` holes."""

    def __init__(self, *, allow: Iterable[str] = (), deny: Iterable[str] = ()) -> None:
        self.allow = tuple(parse_rule(t) for t in allow)
        self.deny = tuple(parse_rule(t) for t in (*BUILTIN_DENY, *deny))
        # The answer for an (address, port) never changes for one policy; a runner talks to
        # few destinations, and each request would otherwise walk every rule (~20 us).
        self._decided: dict[tuple[IPAddress, int], str | None] = {}

    def refusal(self, addr: IPAddress, port: int) -> str | None:
        """None when (addr, port) may be reached; else why not (names the rule)."""
        key = (addr, port)
        try:
            return self._decided[key]
        except KeyError:
            pass
        why = self._refusal(addr, port)
        if len(self._decided) < DECISION_CACHE_SIZE:
            self._decided[key] = why
        return why

    def _refusal(self, addr: IPAddress, port: int) -> str | None:
        candidates: list[IPAddress] = [addr, *embedded_ipv4(addr)]
        for cand in candidates:
            deny = _most_specific(self.deny, cand, port)
            if deny is None:
                continue
            allow = _most_specific(self.allow, cand, port)
            if allow is not None and allow.specificity >= deny.specificity:
                continue
            via = "" if cand == addr else f" (embeds {cand})"
            return f"{addr}{via} is in {deny.text} (egress deny)"
        return None

    def check(self, target: Target) -> None:
        """For an address literal: EgressError(blocked) when the policy refuses it."""
        if target.ip is not None:
            why = self.refusal(target.ip, target.port)
            if why is not None:
                raise EgressError(f"blocked by egress policy: {why}", blocked=True)

    async def resolve(self, target: Target, *, every: bool) -> list[str]:
        """The addresses of target that may be reached (literal or resolved); EgressError when none may.

        every=True (a proxy will resolve the name again): refused if *any* address is denied.
        """
        if target.ip is not None:
            self.check(target)
            return [str(target.ip)]
        try:
            infos = await trio.socket.getaddrinfo(target.name, target.port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            if every:
                return []  # only the proxy can resolve it; see the module docstring
            raise EgressError(f"getaddrinfo ENOTFOUND {target.name}") from exc
        allowed: list[str] = []
        blocked: list[str] = []
        for info in infos:
            ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            why = self.refusal(ip, target.port)
            if why is None:
                if str(ip) not in allowed:
                    allowed.append(str(ip))
            else:
                blocked.append(why)
        if blocked and (every or not allowed):
            raise EgressError(f"blocked by egress policy: {target.name} resolves to {'; '.join(blocked)}", blocked=True)
        return allowed


def _most_specific(rules: tuple[Rule, ...], addr: IPAddress, port: int) -> Rule | None:
    best: Rule | None = None
    for rule in rules:
        if rule.matches(addr, port) and (best is None or rule.specificity > best.specificity):
            best = rule
    return best
