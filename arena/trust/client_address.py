"""Who is asking: which proxies may name the client, and the network a client address counts as.

A proxy header (``X-Forwarded-For``) is believed only from a peer inside the operator's
``--trusted-proxies`` list, and then only as uvicorn's ProxyHeadersMiddleware reads it (the right-
most address that is not itself a trusted proxy). Without the list no header is believed: the
peer address is the client. An IPv6 client is counted per /64 (one household, one phone network
customer, gets a whole /64 and can rotate through it freely); an IPv4 client per address.
"""

from __future__ import annotations

import argparse
import ipaddress

# An IPv6 client owns at least a /64 (RFC 6177 hands end sites a /48 to /64), so it counts as one.
IPV6_CLIENT_PREFIX = 64
# The block one party can be assumed to hold: an IPv4 /24 (a small hosting range) or an IPv6 /48
# (a whole end site). Used where many addresses of one party must count as one (owner sign-ups).
IPV4_BLOCK_PREFIX = 24
IPV6_BLOCK_PREFIX = 48


def parse_trusted_proxies(text: str) -> str:
    """``--trusted-proxies`` text (comma-separated addresses or CIDR networks) as the same list of
    normalised networks (``10.0.0.5,fd00::/8`` -> ``10.0.0.5/32,fd00::/8``); refuses anything
    else, and ``*`` (trusting everyone is trusting no one)."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item == "*":
            raise argparse.ArgumentTypeError("'*' would let any client name its own address; list the proxies' "
                                             "addresses or networks (CIDR), e.g. 10.0.0.0/24,127.0.0.1")
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item[:80]!r} is not an IP address or CIDR network "
                                             "(e.g. 10.0.0.5 or 10.0.0.0/24 or fd00::/8)") from None
    return ",".join(networks)


def forwarded_allow_ips(trusted_proxies: str | None) -> str:
    """uvicorn's ``forwarded_allow_ips`` for the trusted list (parsed by parse_trusted_proxies):
    empty (nobody) when there is none. Always passed explicitly, so uvicorn's own default
    (loopback, or $FORWARDED_ALLOW_IPS) never applies."""
    return parse_trusted_proxies(trusted_proxies) if trusted_proxies else ""


def client_network(host: str | None) -> str:
    """The unit a client is counted as: an IPv4 address, an IPv6 /64 (IPv4-mapped IPv6 as IPv4),
    or ``"unknown"`` for no address or text that is not one. Only ever hashed into a voter id."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(address)


def client_block(network: str) -> str:
    """The block (an IPv4 /24, an IPv6 /48) around a ``client_network`` value; ``"unknown"`` stays.
    Like the network, only ever hashed (never logged or stored)."""
    try:
        parsed = ipaddress.ip_network(network, strict=False)
    except ValueError:
        return "unknown"
    prefix = IPV4_BLOCK_PREFIX if parsed.version == 4 else IPV6_BLOCK_PREFIX
    return str(parsed.supernet(new_prefix=min(prefix, parsed.prefixlen)))
