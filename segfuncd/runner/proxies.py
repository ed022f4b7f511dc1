"""Which outbound requests go through a proxy: HTTP(S)_PROXY / ALL_PROXY and NO_PROXY.

Read once from the runner's environment (never visible to JavaScript). NO_PROXY is matched
against the *canonical* host of egress.parse_target, so `2852039166`, `0xa9fea9fe`,
`169.254.43518`, `169.254.169.254.` and `[::ffff:169.254.169.254]` are all the entry
`169.254.169.254`. Entries may be a name (`example.com` and `.example.com` match the name
and its subdomains), an address, a CIDR (`10.0.0.0/8`), either with `:port`, or `*`.
"""

from __future__ import annotations

import ipaddress
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from .egress import EgressError, Target, parse_host


@dataclass(frozen=True, slots=True)
class _NoProxyEntry:
    name: str | None  # a domain (no leading or trailing dot)
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    port: int | None

    def matches(self, target: Target) -> bool:
        if self.port is not None and self.port != target.port:
            return False
        if self.network is not None:
            ip = target.ip
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped  # [::ffff:a.b.c.d] is a.b.c.d
            return ip is not None and ip.version == self.network.version and ip in self.network
        name = target.name
        return self.name is not None and (name == self.name or name.endswith("." + self.name))


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """The proxy URL per scheme and the NO_PROXY entries."""

    proxies: Mapping[str, str]
    no_proxy: tuple[_NoProxyEntry, ...]
    bypass_all: bool = False

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> ProxySettings:
        found = urllib.request.getproxies_environment() if env is None else _from_mapping(env)
        no = found.pop("no", "")
        entries = []
        bypass_all = False
        for raw in no.replace(";", ",").split(","):
            item = raw.strip()
            if item == "*":
                bypass_all = True
            elif item:
                entry = _no_proxy_entry(item)
                if entry is not None:
                    entries.append(entry)
        return cls(proxies=found, no_proxy=tuple(entries), bypass_all=bypass_all)

    def proxy_for(self, target: Target) -> str | None:
        """The proxy URL this request goes through, or None for a direct connection."""
        proxy = self.proxies.get(target.scheme) or self.proxies.get("all")
        if not proxy or self.bypass_all or any(e.matches(target) for e in self.no_proxy):
            return None
        return proxy


def _from_mapping(env: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in env.items():
        low = key.lower()
        if value and low.endswith("_proxy"):
            out.setdefault(low[: -len("_proxy")], value)
    return out


def _no_proxy_entry(item: str) -> _NoProxyEntry | None:
    """One NO_PROXY item, canonicalised like a URL host; None for an item that is none."""
    host, port = item, None
    if host.startswith("["):
        inner, _, after = host[1:].partition("]")
        host = inner
        if after.startswith(":") and after[1:].isdigit():
            port = int(after[1:])
    elif host.count(":") == 1:
        head, _, tail = host.partition(":")
        if tail.isdigit():
            host, port = head, int(tail)
    if "/" in host:
        try:
            return _NoProxyEntry(None, ipaddress.ip_network(host, strict=False), port)
        except ValueError:
            return None
    host = host.lstrip("*").lstrip(".")
    try:
        ip, canonical = parse_host(f"[{host}]" if ":" in host else host)
    except EgressError:
        return None
    if ip is not None:
        return _NoProxyEntry(None, ipaddress.ip_network(ip), port)
    return _NoProxyEntry(canonical.rstrip("."), None, port)
