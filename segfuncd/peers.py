"""Who sent a request: the client's address (peer or trusted proxy's X-Forwarded-For) and
whether it is a browser. Pure.

Rules:
* The client's address is the TCP peer, unless the peer is one of `intake.trusted_proxies`
  (IPs or CIDRs; "unix" trusts a proxy on the Unix socket) and sent X-Forwarded-For: then
  it is the first (leftmost) hop, the original client as the proxy saw it. A hop that is
  not an IP address is ignored (the peer stays the client). Only a trusted peer's header
  is read: anyone else could write any address in it.
* A request from a browser carries an `Origin` header (fetch, XHR and sendBeacon POSTs
  always do); that is what makes its events `channel: "client"`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

UNIX = "unix"  # the trusted_proxies entry for a proxy on the Unix socket

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """The parsed `intake.trusted_proxies`."""

    networks: tuple[Network, ...] = ()
    unix: bool = False

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedProxies:
        """ValueError names an entry that is neither an address, a network nor "unix"."""
        nets: list[Network] = []
        unix = False
        for entry in entries:
            if entry == UNIX:
                unix = True
            else:
                nets.append(ipaddress.ip_network(entry, strict=False))
        return cls(tuple(nets), unix)

    def trusts(self, peer: str | None) -> bool:
        if peer is None:
            return self.unix
        ip = _ip(peer)
        return ip is not None and any(ip in net for net in self.networks)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def client_address(peer: str | None, headers: Mapping[str, str], trusted: TrustedProxies) -> str | None:
    """The client's IP as text (None on an untrusted Unix socket): see the module rules."""
    if trusted.networks or trusted.unix:
        forwarded = headers.get("x-forwarded-for")
        if forwarded and trusted.trusts(peer):
            hop = _ip(forwarded.split(",", 1)[0])
            if hop is not None:
                return str(hop)
    if peer is None:
        return None
    ip = _ip(peer)
    return str(ip) if ip is not None else peer


def from_browser(headers: Mapping[str, str]) -> bool:
    """A browser's request: it carries an Origin header."""
    return "origin" in headers
