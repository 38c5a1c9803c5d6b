"""EndpointPool over real HTTP: the real openai and huggingface_hub clients against DemoServer on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import openai
import pytest

from arena.models.config import PROVIDERS, ModelConfigError, ModelSpec
from arena.models.demo_models import demo_model_specs
from arena.models.demo_server import DemoServer
from arena.models.endpoints import NO_API_KEY, EndpointError, EndpointPool
from arena.ops.redis_server import free_port

QUESTION = [{"role": "user", "content": "How should I water tomato plants in a hot summer?"}]


@pytest.fixture(scope="module")
def demo_server():
    with DemoServer(token_delay=0.002) as server:
        yield server


def spec_for(server_url: str, model: str, provider: str = "openai", **options) -> ModelSpec:
    # Temperature 0 by default: these tests compare answers to one conversation asked several
    # times, and the demo server varies a repeated conversation's answer at a temperature above 0.
    options.setdefault("temperature", 0.0)
    return ModelSpec(
        name=options.pop("name", f"{provider}:{model}"),
        provider=provider,
        base_url=server_url,
        model_id=model,
        max_retries=options.pop("max_retries", 0),
        **options,
    )


async def error_from_complete(pool: EndpointPool, name: str) -> EndpointError:
    """The EndpointError that asking ``name`` the QUESTION raises (failing the test if none is)."""
    with pytest.raises(EndpointError) as raised:
        await pool.complete(name, QUESTION)
    return raised.value


async def error_from_stream(pool: EndpointPool, name: str) -> tuple[EndpointError, list[str]]:
    """The EndpointError that streaming the QUESTION to ``name`` raises, and the deltas received before it."""
    received: list[str] = []
    with pytest.raises(EndpointError) as raised:
        async for delta in pool.stream(name, QUESTION):
            received.append(delta)
    return raised.value, received


async def non_streaming_answer(server_url: str, model: str, messages: list[dict]) -> str:
    client = openai.AsyncOpenAI(base_url=server_url, api_key=NO_API_KEY, max_retries=0)
    try:
        response = await client.chat.completions.create(model=model, messages=messages)
        return response.choices[0].message.content
    finally:
        await client.close()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_stream_yields_several_deltas_that_join_to_the_non_streaming_answer(demo_server, provider):
    async with EndpointPool([spec_for(demo_server.url, "demo-verbose", provider, name="verbose")]) as pool:
        deltas = [delta async for delta in pool.stream("verbose", QUESTION)]
        whole = await pool.complete("verbose", QUESTION)
    assert len(deltas) > 10
    assert "".join(deltas) == whole == await non_streaming_answer(demo_server.url, "demo-verbose", QUESTION)
    assert "tomato" in whole


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_two_models_answer_the_same_prompt_differently(demo_server, provider):
    specs = [spec_for(demo_server.url, model, provider, name=model) for model in demo_server.model_names]
    async with EndpointPool(specs) as pool:
        answers = [await pool.complete(model, QUESTION) for model in pool.names]
    assert len(set(answers)) == len(answers) >= 4


async def test_history_changes_the_answer_and_the_same_history_gives_the_same_answer(demo_server):
    follow_up = {"role": "user", "content": "And what about in winter?"}
    about_tomatoes = [*QUESTION, {"role": "assistant", "content": "Water deeply."}, follow_up]
    about_roses = [
        {"role": "user", "content": "How do I prune climbing roses?"},
        {"role": "assistant", "content": "Cut old canes."},
        follow_up,
    ]
    async with EndpointPool([spec_for(demo_server.url, "demo-terse", name="terse")]) as pool:
        first = await pool.complete("terse", about_tomatoes)
        again = await pool.complete("terse", about_tomatoes)
        other_history = await pool.complete("terse", about_roses)
        no_history = await pool.complete("terse", [follow_up])
    assert first == again
    assert len({first, other_history, no_history}) == 3
    assert "water" in first and "prune" in other_history  # each refers back to its own earlier question


async def test_twenty_concurrent_streams_overlap():
    # Each answer takes several token delays; if streams ran one after another, the last
    # would start after the first had finished.
    with DemoServer(token_delay=0.05) as server:
        specs = [spec_for(server.url, "demo-terse", provider, name=f"terse-{provider}") for provider in PROVIDERS]
        first_delta_at: list[float] = []
        finished_at: list[float] = []

        async def one_stream(pool: EndpointPool, index: int) -> str:
            parts = []
            messages = [{"role": "user", "content": f"Question number {index} about sailing boats"}]
            async for delta in pool.stream(specs[index % 2].name, messages):
                if not parts:
                    first_delta_at.append(time.monotonic())
                parts.append(delta)
            finished_at.append(time.monotonic())
            return "".join(parts)

        async with EndpointPool(specs) as pool:
            answers = await asyncio.gather(*(one_stream(pool, index) for index in range(20)))
    assert len(first_delta_at) == len(finished_at) == 20
    assert all(answers)
    assert max(first_delta_at) < min(finished_at), "all 20 streams should have started before the first finished"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_closed_port_is_reported_unreachable_with_the_model_name(provider):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens once the probe is closed
    async with EndpointPool([spec_for(url, "anything", provider, name="Nowhere Model")]) as pool:
        error = await error_from_complete(pool, "Nowhere Model")
    assert error.kind == "unreachable"
    assert "Nowhere Model" in str(error)
    assert "unreachable" in str(error) and "refused" in str(error).lower()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_unknown_host_is_reported_unreachable(provider):
    async with EndpointPool([spec_for("http://no-such-host.invalid/v1", "anything", provider, name="Lost")]) as pool:
        error = await error_from_complete(pool, "Lost")
    assert error.kind == "unreachable" and "Lost" in str(error)
    assert "no-such-host.invalid" in str(error)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_unknown_model_gives_the_servers_404_message(demo_server, provider):
    async with EndpointPool([spec_for(demo_server.url, "no-such-model", provider, name="Ghost")]) as pool:
        error = await error_from_complete(pool, "Ghost")
    assert error.kind == "http" and error.status_code == 404
    assert "Ghost" in str(error)
    assert "HTTP 404" in str(error) and "'no-such-model' does not exist" in str(error)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_slow_first_token_past_the_timeout_is_reported_timed_out(provider):
    with DemoServer(token_delay=0.0, first_token_delay=2.0) as server:
        async with EndpointPool([spec_for(server.url, "demo-terse", provider, name="Sleepy", timeout=0.3)]) as pool:
            error = await error_from_complete(pool, "Sleepy")
    assert error.kind == "timeout"
    assert "Sleepy" in str(error) and "timed out" in str(error)


async def test_an_answer_longer_than_max_answer_seconds_is_cut_off():
    # Every chunk arrives well within `timeout`, but the whole answer takes too long. The limit leaves
    # a loaded machine seconds to connect and deliver the first chunks; the answer needs far longer.
    with DemoServer(token_delay=0.5) as server:
        spec = spec_for(server.url, "demo-verbose", name="Rambler", timeout=10.0, max_answer_seconds=3.0)
        async with EndpointPool([spec]) as pool:
            error, received = await error_from_stream(pool, "Rambler")
    assert error.kind == "timeout" and "longer than 3s" in str(error)
    assert received, "the deltas before the cut-off should have been delivered"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_api_key_from_the_named_variable_is_sent_and_never_shown(provider, monkeypatch):
    secret = "sk-arena-test-0123456789abcdef"
    with DemoServer(token_delay=0.0, api_key=secret) as server:
        monkeypatch.setenv("ARENA_TEST_ENDPOINT_KEY", secret)
        spec = spec_for(server.url, "demo-friendly", provider, name="Keyed", api_key_env="ARENA_TEST_ENDPOINT_KEY")
        async with EndpointPool([spec]) as pool:
            answer = await pool.complete("Keyed", QUESTION)
        assert answer and server.request_log.last_authorization == f"Bearer {secret}"
        assert secret not in repr(pool) and secret not in repr(spec) and secret not in str(spec.model_dump())

        wrong = "sk-arena-wrong-key-fedcba9876543210"
        monkeypatch.setenv("ARENA_TEST_ENDPOINT_KEY", wrong)
        async with EndpointPool([spec]) as pool:
            error = await error_from_complete(pool, "Keyed")
    message = str(error)
    assert error.kind == "auth" and error.status_code == 401
    assert "Keyed" in message and "authentication failed" in message and "ARENA_TEST_ENDPOINT_KEY" in message
    assert secret not in message and wrong not in message and wrong not in repr(error)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_keys_in_the_environment_are_not_sent_to_a_model_without_api_key_env(provider, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-operator-openai-key")
    monkeypatch.setenv("HF_TOKEN", "hf_operatortoken")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-operator")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_operator")
    with DemoServer(token_delay=0.0) as server:
        async with EndpointPool([spec_for(server.url, "demo-echo", provider, name="Open")]) as pool:
            await pool.complete("Open", QUESTION)
        assert server.request_log.last_authorization == f"Bearer {NO_API_KEY}"
        sent = " ".join(server.request_log.last_headers.values())
        assert "operator" not in sent, server.request_log.last_headers


def test_a_named_but_unset_key_variable_fails_at_start_up(monkeypatch):
    monkeypatch.delenv("ARENA_TEST_UNSET_KEY", raising=False)
    spec = spec_for("http://127.0.0.1:1/v1", "m", name="Needs key", api_key_env="ARENA_TEST_UNSET_KEY")
    with pytest.raises(ModelConfigError, match="ARENA_TEST_UNSET_KEY.*not set"):
        EndpointPool([spec])


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_empty_answer_is_an_error(provider):
    with DemoServer(token_delay=0.0, models={"silent": lambda conversation: ""}) as server:
        async with EndpointPool([spec_for(server.url, "silent", provider, name="Mute")]) as pool:
            error = await error_from_complete(pool, "Mute")
    assert error.kind == "empty" and "Mute" in str(error) and "empty answer" in str(error)


async def test_system_prompt_is_sent_first():
    first_message = {"first-message": lambda conversation: conversation.messages[0][1]}
    with DemoServer(token_delay=0.0, models=first_message) as server:
        spec = spec_for(server.url, "first-message", name="Briefed", system_prompt="Answer like a pirate.")
        async with EndpointPool([spec]) as pool:
            assert await pool.complete("Briefed", QUESTION) == "Answer like a pirate."


async def test_stopping_a_stream_early_leaves_the_pool_usable(demo_server):
    async with EndpointPool([spec_for(demo_server.url, "demo-verbose", name="verbose")]) as pool:
        stream = pool.stream("verbose", QUESTION)
        first = await anext(stream)
        await stream.aclose()
        assert first and await pool.complete("verbose", QUESTION)


def test_pool_names_specs_and_rejects_unknown_or_duplicate_names(demo_server):
    specs = demo_model_specs(demo_server.url)
    pool = EndpointPool(specs)
    assert pool.names == [spec.name for spec in specs]
    assert pool.spec("demo-echo").model_id == "demo-echo"
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        pool.spec("nope")
    with pytest.raises(ValueError, match="duplicate model name 'demo-echo'"):
        EndpointPool([*specs, specs[-1]])


async def test_huggingface_clients_are_replaced_and_closed_after_a_number_of_answers(demo_server):
    # AsyncInferenceClient keeps each streamed response until close(); the pool recycles it.
    from huggingface_hub import AsyncInferenceClient

    from arena.models.endpoint_clients import RecyclingInferenceClient

    made: list[AsyncInferenceClient] = []

    def make_client() -> AsyncInferenceClient:
        made.append(AsyncInferenceClient(base_url=demo_server.url, token=NO_API_KEY))
        return made[-1]

    async def answer(client: AsyncInferenceClient, index: int) -> str:
        chunks = await client.chat_completion([{"role": "user", "content": f"topic {index}"}], model="demo-echo",
                                              stream=True)
        return "".join([chunk.choices[0].delta.content or "" async for chunk in chunks if chunk.choices])

    def is_closed(client: AsyncInferenceClient) -> bool:
        return client._async_client is None or client._async_client.is_closed  # no public flag

    clients = RecyclingInferenceClient(make_client, streams_per_client=2)
    async with clients.lease() as held_open:  # still answering while its client is retired
        for index in range(4):
            async with clients.lease() as client:
                assert await answer(client, index)
        assert not is_closed(held_open)
        assert await answer(held_open, 99)
    assert len(made) == 3
    assert is_closed(made[0]) and is_closed(made[1]) and not is_closed(made[2])
    await clients.close()
    assert is_closed(made[2])


async def test_a_closed_pool_has_closed_its_clients_and_refuses_requests(demo_server):
    pool = EndpointPool([spec_for(demo_server.url, "demo-echo", provider) for provider in PROVIDERS])
    for name in pool.names:
        assert await pool.complete(name, QUESTION)  # each client now holds a connection
    assert not pool.closed
    await pool.aclose()
    assert pool.closed
    await pool.aclose()  # idempotent
    assert pool.closed
    for name in pool.names:  # the server is still up: only the closed clients stop these
        error = await error_from_complete(pool, name)
        assert error.kind == "closed" and "shutting down" in str(error)


@contextlib.asynccontextmanager
async def one_reply_server(reply: bytes):
    """A bare HTTP server on 127.0.0.1 that answers every request with ``reply`` and hangs up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    finally:
        server.close()
        await server.wait_closed()


def first_chunk(content: str) -> bytes:
    event = {
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "m",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": None}],
    }
    return f"data: {json.dumps(event)}\n\n".encode()


def chunked(*pieces: bytes, complete: bool = True) -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
    return body + (b"0\r\n\r\n" if complete else b"")


SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_connection_lost_mid_answer_is_reported_after_the_deltas_so_far(provider):
    async with one_reply_server(SSE_HEAD + chunked(first_chunk("Hello"), complete=False)) as url:
        async with EndpointPool([spec_for(url, "m", provider, name="Flaky")]) as pool:
            error, received = await error_from_stream(pool, "Flaky")
    assert received == ["Hello"]
    assert error.kind == "disconnected" and "Flaky" in str(error) and "lost mid-answer" in str(error)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_server_error_page_is_reported_with_its_status(provider):
    page = b"<html>upstream exploded</html>"
    reply = b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (len(page), page)
    async with one_reply_server(reply) as url:
        async with EndpointPool([spec_for(url, "m", provider, name="Behind a proxy")]) as pool:
            error = await error_from_complete(pool, "Behind a proxy")
    assert error.kind == "http" and error.status_code == 502
    assert "Behind a proxy" in str(error) and "HTTP 502: Bad Gateway (upstream exploded)" in str(error)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_error_event_inside_the_stream_is_reported_with_its_message(provider):
    event = b'data: {"error": {"message": "model overloaded, retry later", "type": "server_error"}}\n\n'
    async with one_reply_server(SSE_HEAD + chunked(event)) as url:
        async with EndpointPool([spec_for(url, "m", provider, name="Busy")]) as pool:
            error = await error_from_complete(pool, "Busy")
    assert error.kind == "error"
    assert str(error) == "model 'Busy': endpoint reported an error: model overloaded, retry later"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_stream_that_is_not_chat_completions_json_is_a_protocol_error(provider):
    async with one_reply_server(SSE_HEAD + chunked(b"data: {this is not json\n\n", b"data: [DONE]\n\n")) as url:
        async with EndpointPool([spec_for(url, "m", provider, name="Odd")]) as pool:
            error = await error_from_complete(pool, "Odd")
    assert error.kind == "protocol" and "Odd" in str(error)
