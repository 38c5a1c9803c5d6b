"""The SSRF guard with the guard on: each refused URL is refused at registration and never
contacted; names resolve through an injected resolver, so no traffic goes anywhere but 127.0.0.1;
the connection-time check catches DNS rebinding and redirects to a refused address."""

from __future__ import annotations

import ipaddress
import socket

import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet

from arena.models.config import ModelSpec
from arena.models.endpoints import EndpointError, EndpointPool
from arena.owners.service import ModelRegistration, OwnerService
from arena.owners.store import OwnerError, OwnerStore
from arena.trust.secret_box import SecretBox
from arena.trust.ssrf import EndpointGuard, embedded_ipv4, refusal
from tests.owner_endpoints import OwnerEndpoint

PUBLIC_ADDRESS = "8.8.8.8"  # what the test resolver answers for a "public" name; dialled as 127.0.0.1


class Network:
    """The test's DNS and wires: names map to addresses, and a checked public address is dialled
    as a port on 127.0.0.1. Records every lookup and every dial, so "not contacted" is observable."""

    def __init__(self):
        self.names: dict[str, list[str]] = {}
        self.routes: dict[tuple[str, int], int] = {}
        self.lookups: list[str] = []
        self.dials: list[tuple[str, int]] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.names[host]

    def dial(self, address: str, port: int) -> tuple[str, int]:
        self.dials.append((address, port))
        if (address, port) in self.routes:
            return "127.0.0.1", self.routes[(address, port)]
        if address == "127.0.0.1":
            return address, port
        raise AssertionError(f"the test tried to send traffic to {address}:{port}")

    def guard(self, allow_private: bool = False) -> EndpointGuard:
        return EndpointGuard(allow_private=allow_private, resolve=self.resolve, dial=self.dial)


@pytest.fixture
async def owners(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    store = OwnerStore(client, "arena")
    network = Network()
    service = OwnerService(store, SecretBox(Fernet.generate_key()), network.guard(), configured_names=lambda: [])
    token = await store.add_owner("acme")
    yield service, await store.authenticate(token), network
    await client.aclose()


def registration(url: str, **fields) -> ModelRegistration:
    return ModelRegistration(name=fields.pop("name", "acme-1"), base_url=url, model_id="m", timeout=5, **fields)


@pytest.fixture
def listener():
    with OwnerEndpoint() as endpoint:
        yield endpoint


REFUSED = [
    ("http://127.0.0.1:{port}/v1", "base_url host 127.0.0.1 is a loopback address, a non-public address"),
    ("http://localhost:{port}/v1", "'localhost' resolves to a loopback address 127.0.0.1"),
    ("http://[::1]:{port}/v1", "base_url host ::1 is a loopback address"),
    ("http://10.0.0.1/v1", "base_url host 10.0.0.1 is a private address"),
    ("http://172.16.0.1/v1", "base_url host 172.16.0.1 is a private address"),
    ("http://192.168.1.1/v1", "base_url host 192.168.1.1 is a private address"),
    ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
    ("http://100.64.0.1/v1", "100.64.0.1 is a carrier-grade NAT address"),
    ("http://[::ffff:127.0.0.1]:{port}/v1", "an IPv4-mapped IPv6 address of 127.0.0.1, which is a loopback address"),
    ("file:///etc/passwd", "base_url must start with http:// or https://, got scheme 'file'"),
    ("http://model.rebind.test:{port}/v1", "'model.rebind.test' resolves to a loopback address 127.0.0.1"),
]


@pytest.mark.parametrize(("url", "message"), REFUSED)
async def test_each_refused_url_is_refused_at_registration_and_never_contacted(owners, listener, url, message):
    service, owner, network = owners
    network.names["localhost"] = ["127.0.0.1"]  # as /etc/hosts says, but answered by the test
    network.names["model.rebind.test"] = ["127.0.0.1"]
    with pytest.raises(OwnerError) as refused:
        await service.register(owner, registration(url.format(port=listener.port)))
    assert refused.value.status == 422
    assert message in str(refused.value)
    if "file:" not in url:
        assert "ask the operator to allow private endpoints" in str(refused.value)
    assert listener.connections == 0 and network.dials == []
    assert await service.store.models() == []  # nothing saved
    print(f"refused {url.format(port=listener.port)}: {refused.value}")


async def test_a_redirect_to_a_refused_address_is_not_followed(owners):
    service, owner, network = owners
    with OwnerEndpoint() as target, OwnerEndpoint("redirect") as redirector:
        redirector.redirect_to = f"http://127.0.0.1:{target.port}/v1/chat/completions"
        network.names["redirector.example"] = [PUBLIC_ADDRESS]
        network.routes[(PUBLIC_ADDRESS, 80)] = redirector.port
        with pytest.raises(OwnerError) as refused:
            await service.register(owner, registration("http://redirector.example/v1"))
        assert redirector.requests == 1  # the public server was asked ...
        assert target.connections == 0  # ... and its redirect to loopback was not followed
    assert "health check failed (blocked)" in str(refused.value)
    assert "127.0.0.1 is a loopback address" in str(refused.value)
    print(f"refused redirect to 127.0.0.1: {refused.value}")


async def test_dns_rebinding_after_registration_is_caught_at_connection_time(owners):
    service, owner, network = owners
    with OwnerEndpoint() as public, OwnerEndpoint() as internal:
        network.names["rebind.example"] = [PUBLIC_ADDRESS]
        network.routes[(PUBLIC_ADDRESS, 80)] = public.port
        model, report = await service.register(owner, registration("http://rebind.example/v1"))
        assert report.ok and public.requests == 1
        network.names["rebind.example"] = ["127.0.0.1"]  # the owner's DNS now points inside
        pool = EndpointPool([])
        pool.add(model.spec(), None, service.guard)
        with pytest.raises(EndpointError) as failed:
            await pool.complete(model.name, [{"role": "user", "content": "hi"}])
        await pool.aclose()
        assert failed.value.kind == "blocked" and "resolves to a loopback address 127.0.0.1" in str(failed.value)
        assert internal.connections == 0 and public.requests == 1


async def test_an_unresolvable_name_is_a_dns_error_and_public_addresses_pass(owners):
    service, owner, network = owners
    with pytest.raises(OwnerError, match=r"health check failed \(dns\)"):
        await service.register(owner, registration("http://no-such-model-host.example/v1"))
    with OwnerEndpoint() as public:
        network.names["models.example"] = [PUBLIC_ADDRESS]
        network.routes[(PUBLIC_ADDRESS, 443)] = public.port
        # https to a server speaking plain HTTP: the TLS handshake fails, and says so
        with pytest.raises(OwnerError, match=r"health check failed \(tls\)"):
            await service.register(owner, registration("https://models.example/v1"))


async def test_the_operator_may_allow_private_endpoints(owners, listener):
    service, owner, network = owners
    service.guard = network.guard(allow_private=True)
    model, report = await service.register(owner, registration(listener.url))
    assert report.ok and model.state == "pending" and listener.requests == 1


@pytest.mark.parametrize("provider", ["openai", "huggingface"])
async def test_the_guard_sits_inside_both_clients(listener, provider):
    """At connection time, for the openai and the huggingface_hub client alike: a refused address
    is never connected to, and an allowed one is (the same client, the guard's policy flipped)."""
    spec = ModelSpec(name="x", provider=provider, base_url=listener.url, model_id="m", timeout=5, max_retries=0)
    guard = EndpointGuard()
    pool = EndpointPool([])
    pool.add(spec, None, guard)
    with pytest.raises(EndpointError) as failed:
        await pool.complete("x", [{"role": "user", "content": "hi"}])
    assert failed.value.kind == "blocked" and listener.connections == 0
    guard.allow_private = True
    assert await pool.complete("x", [{"role": "user", "content": "hi"}]) == "Hello from the owner's model."
    assert listener.connections == 1
    await pool.aclose()


# Every IPv6 spelling that embeds an IPv4 address, each embedding a refused one: (address, what the
# refusal must say). Teredo's client is the last 32 bits inverted: 80ff:fffe is 127.0.0.1.
EMBEDDED_SPELLINGS = [
    ("::127.0.0.1", "an IPv4-compatible IPv6 address of 127.0.0.1, which is a loopback address"),
    ("::ffff:127.0.0.1", "an IPv4-mapped IPv6 address of 127.0.0.1, which is a loopback address"),
    ("::ffff:0:7f00:1", "an IPv4-translated IPv6 address of 127.0.0.1, which is a loopback address"),
    ("64:ff9b::7f00:1", "a NAT64 address (64:ff9b::/96) of 127.0.0.1, which is a loopback address"),
    ("64:ff9b::a9fe:a9fe", "a NAT64 address (64:ff9b::/96) of 169.254.169.254, which is a link-local address"),
    ("64:ff9b:1::a00:1", "a local-use NAT64 address (64:ff9b:1::/48) of 10.0.0.1, which is a private address"),
    ("64:ff9b:1:7f00:0:100::", "a local-use NAT64 address (64:ff9b:1::/48) of "),  # 127.0.0.1 at the /48 position
    ("2002:7f00:1::1", "a 6to4 address of 127.0.0.1, which is a loopback address"),
    ("2002:c0a8:101::", "a 6to4 address of 192.168.1.1, which is a private address"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "a Teredo address whose client is 127.0.0.1, which is a loopback"),
]


@pytest.mark.parametrize(("address", "message"), EMBEDDED_SPELLINGS)
async def test_ipv6_spellings_of_a_refused_ipv4_address_are_refused_at_registration(owners, address, message):
    service, owner, network = owners
    with pytest.raises(OwnerError) as refused:
        await service.register(owner, registration(f"http://[{address}]:8080/v1"))
    assert refused.value.status == 422
    assert f"base_url host {address} is {message}" in str(refused.value)
    assert network.dials == [] and await service.store.models() == []


@pytest.mark.parametrize(("address", "message"), EMBEDDED_SPELLINGS)
async def test_ipv6_spellings_of_a_refused_ipv4_address_are_refused_at_every_connection(owners, address, message):
    """A name registered on a public address, then pointed at the spelling: the connection is refused."""
    service, owner, network = owners
    with OwnerEndpoint() as public:
        network.names["spelling.example"] = [PUBLIC_ADDRESS]
        network.routes[(PUBLIC_ADDRESS, 80)] = public.port
        model, report = await service.register(owner, registration("http://spelling.example/v1"))
        assert report.ok and public.requests == 1
        network.names["spelling.example"] = [address]
        pool = EndpointPool([])
        pool.add(model.spec(), None, service.guard)
        with pytest.raises(EndpointError) as failed:
            await pool.complete(model.name, [{"role": "user", "content": "hi"}])
        await pool.aclose()
    assert failed.value.kind == "blocked" and message in str(failed.value)
    assert public.requests == 1 and network.dials == [(PUBLIC_ADDRESS, 80)]  # the spelling was never dialled


def test_a_local_use_nat64_address_is_judged_at_every_prefix_length_rfc_6052_allows():
    """64:ff9b:1::/48 may be cut at /48, /56, /64 or /96; the IPv4 address sits differently in each."""
    for address, prefix_length in [("64:ff9b:1:7f00:0:100::", 48), ("64:ff9b:1:7f:0:1::", 56),
                                   ("64:ff9b:1:0:7f:0:100:0", 64), ("64:ff9b:1::7f00:1", 96)]:
        inside = [str(ipv4) for _, ipv4 in embedded_ipv4(ipaddress.IPv6Address(address))]
        assert "127.0.0.1" in inside, (prefix_length, inside)
        assert refusal(ipaddress.IPv6Address(address)).startswith("a local-use NAT64 address")


@pytest.mark.parametrize("address", ["::8.8.8.8", "::ffff:8.8.8.8", "::ffff:0:808:808", "64:ff9b::808:808",
                                     "2002:808:808::1", "2001:0:4136:e378:8000:63bf:f7f7:f7f7"])
async def test_ipv6_spellings_of_a_public_ipv4_address_pass_the_guard(address):
    await EndpointGuard(resolve=Network().resolve).check_url(f"http://[{address}]/v1")
