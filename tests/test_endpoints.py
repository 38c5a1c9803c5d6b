"""EndpointPool over real HTTP: the real openai and huggingface_hub clients against DemoServer on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time

import openai
import pytest

from arena.demo_server import DemoServer, demo_model_specs
from arena.endpoints import NO_API_KEY, EndpointError, EndpointPool
from arena.model_config import ModelConfigError, ModelSpec

PROVIDERS = ["openai", "huggingface"]
QUESTION = [{"role": "user", "content": "How should I water tomato plants in a hot summer?"}]


@pytest.fixture(scope="module")
def demo_server():
    with DemoServer(token_delay=0.002) as server:
        yield server


def spec_for(server_url: str, model: str, provider: str = "openai", **options) -> ModelSpec:
    return ModelSpec(
        name=options.pop("name", f"{provider}:{model}"),
        provider=provider,
        base_url=server_url,
        model_id=model,
        max_retries=options.pop("max_retries", 0),
        **options,
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the probe is closed


async def non_streaming_answer(server_url: str, model: str, messages: list[dict]) -> str:
    client = openai.AsyncOpenAI(base_url=server_url, api_key=NO_API_KEY, max_retries=0)
    try:
        response = await client.chat.completions.create(model=model, messages=messages)
        return response.choices[0].message.content
    finally:
        await client.close()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_stream_yields_several_deltas_that_join_to_the_non_streaming_answer(demo_server, provider):
    pool = EndpointPool([spec_for(demo_server.url, "demo-verbose", provider, name="verbose")])
    try:
        deltas = [delta async for delta in pool.stream("verbose", QUESTION)]
        whole = await pool.complete("verbose", QUESTION)
    finally:
        await pool.aclose()
    assert len(deltas) > 10
    assert "".join(deltas) == whole == await non_streaming_answer(demo_server.url, "demo-verbose", QUESTION)
    assert "tomato" in whole


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_two_models_answer_the_same_prompt_differently(demo_server, provider):
    pool = EndpointPool([spec_for(demo_server.url, model, provider, name=model) for model in demo_server.model_names])
    try:
        answers = [await pool.complete(model, QUESTION) for model in pool.names]
    finally:
        await pool.aclose()
    assert len(set(answers)) == len(answers) >= 4


async def test_history_changes_the_answer_and_the_same_history_gives_the_same_answer(demo_server):
    pool = EndpointPool([spec_for(demo_server.url, "demo-terse", name="terse")])
    follow_up = {"role": "user", "content": "And what about in winter?"}
    about_tomatoes = [*QUESTION, {"role": "assistant", "content": "Water deeply."}, follow_up]
    about_roses = [
        {"role": "user", "content": "How do I prune climbing roses?"},
        {"role": "assistant", "content": "Cut old canes."},
        follow_up,
    ]
    try:
        first = await pool.complete("terse", about_tomatoes)
        again = await pool.complete("terse", about_tomatoes)
        other_history = await pool.complete("terse", about_roses)
        no_history = await pool.complete("terse", [follow_up])
    finally:
        await pool.aclose()
    assert first == again
    assert len({first, other_history, no_history}) == 3
    assert "water" in first and "prune" in other_history  # each refers back to its own earlier question


async def test_twenty_concurrent_streams_overlap():
    # Each answer takes several token delays; if streams ran one after another, the last
    # would start after the first had finished.
    with DemoServer(token_delay=0.05) as server:
        specs = [spec_for(server.url, "demo-terse", provider, name=f"terse-{provider}") for provider in PROVIDERS]
        pool = EndpointPool(specs)
        first_delta_at: list[float] = []
        finished_at: list[float] = []

        async def one_stream(index: int) -> str:
            parts = []
            messages = [{"role": "user", "content": f"Question number {index} about sailing boats"}]
            async for delta in pool.stream(specs[index % 2].name, messages):
                if not parts:
                    first_delta_at.append(time.monotonic())
                parts.append(delta)
            finished_at.append(time.monotonic())
            return "".join(parts)

        try:
            answers = await asyncio.gather(*(one_stream(index) for index in range(20)))
        finally:
            await pool.aclose()
    assert len(first_delta_at) == len(finished_at) == 20
    assert all(answers)
    assert max(first_delta_at) < min(finished_at), "all 20 streams should have started before the first finished"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_closed_port_is_reported_unreachable_with_the_model_name(provider):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    pool = EndpointPool([spec_for(url, "anything", provider, name="Nowhere Model")])
    try:
        with pytest.raises(EndpointError) as raised:
            await pool.complete("Nowhere Model", QUESTION)
    finally:
        await pool.aclose()
    assert raised.value.kind == "unreachable"
    assert "Nowhere Model" in str(raised.value)
    assert "unreachable" in str(raised.value) and "refused" in str(raised.value).lower()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_unknown_host_is_reported_unreachable(provider):
    pool = EndpointPool([spec_for("http://no-such-host.invalid/v1", "anything", provider, name="Lost")])
    try:
        with pytest.raises(EndpointError) as raised:
            await pool.complete("Lost", QUESTION)
    finally:
        await pool.aclose()
    assert raised.value.kind == "unreachable" and "Lost" in str(raised.value)
    assert "no-such-host.invalid" in str(raised.value)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_unknown_model_gives_the_servers_404_message(demo_server, provider):
    pool = EndpointPool([spec_for(demo_server.url, "no-such-model", provider, name="Ghost")])
    try:
        with pytest.raises(EndpointError) as raised:
            await pool.complete("Ghost", QUESTION)
    finally:
        await pool.aclose()
    assert raised.value.kind == "http" and raised.value.status_code == 404
    assert "Ghost" in str(raised.value)
    assert "HTTP 404" in str(raised.value) and "'no-such-model' does not exist" in str(raised.value)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_slow_first_token_past_the_timeout_is_reported_timed_out(provider):
    with DemoServer(token_delay=0.0, first_token_delay=2.0) as server:
        pool = EndpointPool([spec_for(server.url, "demo-terse", provider, name="Sleepy", timeout=0.3)])
        try:
            with pytest.raises(EndpointError) as raised:
                await pool.complete("Sleepy", QUESTION)
        finally:
            await pool.aclose()
    assert raised.value.kind == "timeout"
    assert "Sleepy" in str(raised.value) and "timed out" in str(raised.value)


async def test_an_answer_longer_than_max_answer_seconds_is_cut_off():
    # Every chunk arrives well within `timeout`, but the whole answer takes too long.
    with DemoServer(token_delay=0.1) as server:
        pool = EndpointPool(
            [spec_for(server.url, "demo-verbose", name="Rambler", timeout=5.0, max_answer_seconds=0.4)]
        )
        received = []
        try:
            with pytest.raises(EndpointError) as raised:
                async for delta in pool.stream("Rambler", QUESTION):
                    received.append(delta)
        finally:
            await pool.aclose()
    assert raised.value.kind == "timeout" and "longer than 0.4s" in str(raised.value)
    assert received, "the deltas before the cut-off should have been delivered"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_api_key_from_the_named_variable_is_sent_and_never_shown(provider, monkeypatch):
    secret = "sk-arena-test-0123456789abcdef"
    with DemoServer(token_delay=0.0, api_key=secret) as server:
        monkeypatch.setenv("ARENA_TEST_ENDPOINT_KEY", secret)
        spec = spec_for(server.url, "demo-friendly", provider, name="Keyed", api_key_env="ARENA_TEST_ENDPOINT_KEY")
        pool = EndpointPool([spec])
        try:
            answer = await pool.complete("Keyed", QUESTION)
        finally:
            await pool.aclose()
        assert answer and server.request_log.last_authorization == f"Bearer {secret}"
        assert secret not in repr(pool) and secret not in repr(spec) and secret not in str(spec.model_dump())

        wrong = "sk-arena-wrong-key-fedcba9876543210"
        monkeypatch.setenv("ARENA_TEST_ENDPOINT_KEY", wrong)
        pool = EndpointPool([spec])
        try:
            with pytest.raises(EndpointError) as raised:
                await pool.complete("Keyed", QUESTION)
        finally:
            await pool.aclose()
    message = str(raised.value)
    assert raised.value.kind == "auth" and raised.value.status_code == 401
    assert "Keyed" in message and "authentication failed" in message and "ARENA_TEST_ENDPOINT_KEY" in message
    assert secret not in message and wrong not in message and wrong not in repr(raised.value)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_keys_in_the_environment_are_not_sent_to_a_model_without_api_key_env(provider, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-operator-openai-key")
    monkeypatch.setenv("HF_TOKEN", "hf_operatortoken")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-operator")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_operator")
    with DemoServer(token_delay=0.0) as server:
        pool = EndpointPool([spec_for(server.url, "demo-echo", provider, name="Open")])
        try:
            await pool.complete("Open", QUESTION)
        finally:
            await pool.aclose()
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
        pool = EndpointPool([spec_for(server.url, "silent", provider, name="Mute")])
        try:
            with pytest.raises(EndpointError) as raised:
                await pool.complete("Mute", QUESTION)
        finally:
            await pool.aclose()
    assert raised.value.kind == "empty" and "Mute" in str(raised.value) and "empty answer" in str(raised.value)


async def test_system_prompt_is_sent_first():
    with DemoServer(token_delay=0.0, models={"first-message": lambda conversation: conversation.messages[0][1]}) as server:
        pool = EndpointPool([spec_for(server.url, "first-message", name="Briefed", system_prompt="Answer like a pirate.")])
        try:
            assert await pool.complete("Briefed", QUESTION) == "Answer like a pirate."
        finally:
            await pool.aclose()


async def test_stopping_a_stream_early_leaves_the_pool_usable(demo_server):
    pool = EndpointPool([spec_for(demo_server.url, "demo-verbose", name="verbose")])
    try:
        stream = pool.stream("verbose", QUESTION)
        first = await anext(stream)
        await stream.aclose()
        assert first and await pool.complete("verbose", QUESTION)
    finally:
        await pool.aclose()


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

    from arena.endpoints import _RecyclingInferenceClient

    made: list[AsyncInferenceClient] = []

    def make_client() -> AsyncInferenceClient:
        made.append(AsyncInferenceClient(base_url=demo_server.url, token=NO_API_KEY))
        return made[-1]

    async def answer(client: AsyncInferenceClient, index: int) -> str:
        chunks = await client.chat_completion([{"role": "user", "content": f"topic {index}"}], model="demo-echo", stream=True)
        return "".join([chunk.choices[0].delta.content or "" async for chunk in chunks if chunk.choices])

    def is_closed(client: AsyncInferenceClient) -> bool:
        return client._async_client is None or client._async_client.is_closed  # no public flag

    clients = _RecyclingInferenceClient(make_client, streams_per_client=2)
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


@contextlib.asynccontextmanager
async def one_reply_server(reply: bytes):
    """A bare HTTP server on 127.0.0.1 that answers every request with ``reply`` and hangs up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
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
        pool = EndpointPool([spec_for(url, "m", provider, name="Flaky")])
        received = []
        try:
            with pytest.raises(EndpointError) as raised:
                async for delta in pool.stream("Flaky", QUESTION):
                    received.append(delta)
        finally:
            await pool.aclose()
    assert received == ["Hello"]
    assert raised.value.kind == "disconnected" and "Flaky" in str(raised.value) and "lost mid-answer" in str(raised.value)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_server_error_page_is_reported_with_its_status(provider):
    page = b"<html>upstream exploded</html>"
    reply = b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (len(page), page)
    async with one_reply_server(reply) as url:
        pool = EndpointPool([spec_for(url, "m", provider, name="Behind a proxy")])
        try:
            with pytest.raises(EndpointError) as raised:
                await pool.complete("Behind a proxy", QUESTION)
        finally:
            await pool.aclose()
    assert raised.value.kind == "http" and raised.value.status_code == 502
    assert "Behind a proxy" in str(raised.value) and "HTTP 502: Bad Gateway (upstream exploded)" in str(raised.value)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_error_event_inside_the_stream_is_reported_with_its_message(provider):
    event = b'data: {"error": {"message": "model overloaded, retry later", "type": "server_error"}}\n\n'
    async with one_reply_server(SSE_HEAD + chunked(event)) as url:
        pool = EndpointPool([spec_for(url, "m", provider, name="Busy")])
        try:
            with pytest.raises(EndpointError) as raised:
                await pool.complete("Busy", QUESTION)
        finally:
            await pool.aclose()
    assert raised.value.kind == "error"
    assert str(raised.value) == "model 'Busy': endpoint reported an error: model overloaded, retry later"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_stream_that_is_not_chat_completions_json_is_a_protocol_error(provider):
    async with one_reply_server(SSE_HEAD + chunked(b"data: {this is not json\n\n", b"data: [DONE]\n\n")) as url:
        pool = EndpointPool([spec_for(url, "m", provider, name="Odd")])
        try:
            with pytest.raises(EndpointError) as raised:
                await pool.complete("Odd", QUESTION)
        finally:
            await pool.aclose()
    assert raised.value.kind == "protocol" and "Odd" in str(raised.value)
