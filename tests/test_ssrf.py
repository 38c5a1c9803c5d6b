"""The SSRF guard with the guard on: each refused URL is refused at registration and never
contacted; names resolve through an injected resolver, so no traffic goes anywhere but 127.0.0.1;
the connection-time check catches DNS rebinding and redirects to a refused address."""

from __future__ import annotations

import socket

import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet

from arena.models.config import ModelSpec
from arena.models.endpoints import EndpointError, EndpointPool
from arena.owners.service import ModelRegistration, OwnerService
from arena.owners.store import OwnerError, OwnerStore
from arena.trust.secret_box import SecretBox
from arena.trust.ssrf import EndpointGuard
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
