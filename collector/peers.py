"""The client's address, also behind a reverse proxy.

`client_address(request)` is the peer's address, unless the peer is one of
`collector.trusted_proxies` (CIDRs): then the right-most address of `X-Forwarded-For` that is not
itself a trusted proxy. Only addresses that a trusted proxy wrote are believed: a client can put
anything in the header, but it can only prepend, never append past the proxy's own entry.
Used for per-address rate limits, the enrollment attempt limiter, the metrics loopback rule and
the access log.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web

from collector.api import CONFIG_KEY

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_NETWORKS_KEY = web.AppKey("trusted_proxy_networks", tuple)
MAX_FORWARDED_HOPS = 16


def parse_trusted_proxies(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or single addresses); ValueError naming the bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"collector.trusted_proxies: {value!r} is not an address or CIDR, "
                             "e.g. 127.0.0.1/32 or 10.0.0.0/8") from None
    return tuple(networks)


def setup(app: web.Application) -> None:
    app[_NETWORKS_KEY] = parse_trusted_proxies(app[CONFIG_KEY].trusted_proxies)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None, networks: tuple[Network, ...]) -> bool:
    return address is not None and any(address in n for n in networks)


def client_address(request: web.Request) -> str:
    peer = request.remote or "unknown"
    networks = request.config_dict.get(_NETWORKS_KEY, ())
    if not networks or not _trusted(_address(peer), networks):
        return peer
    forwarded = request.headers.getall("X-Forwarded-For", [])
    hops = [h.strip() for line in forwarded for h in line.split(",") if h.strip()][-MAX_FORWARDED_HOPS:]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return peer  # a garbled header: fall back to the proxy itself, never to the garble
        if not _trusted(address, networks):
            return str(address)
    return str(_address(hops[0])) if hops else peer  # every hop is a trusted proxy


def is_loopback(address: str) -> bool:
    parsed = _address(address)
    return parsed is not None and parsed.is_loopback
