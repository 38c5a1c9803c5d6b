"""The demo server's wire protocol (raw HTTP, as OpenAI sends it) and its demo models."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from arena.models.demo_models import DEMO_MODELS, demo_model_specs, make_conversation, topic_words
from arena.models.demo_server import DemoServer, split_tokens
from arena.ops.redis_server import free_port
from tests.helpers import PROJECT_ROOT, wait_until

PROMPT = [{"role": "user", "content": "What is the best way to learn the violin as an adult?"}]


@pytest.fixture(scope="module")
def demo_server():
    with DemoServer(token_delay=0.0) as server:
        yield server


@pytest.fixture
def http(demo_server):
    with httpx.Client(base_url=demo_server.url, timeout=10) as client:
        yield client


def sse_payloads(response: httpx.Response) -> list[str]:
    """The data of each server-sent event, in order (raw strings; the last is "[DONE]")."""
    events = response.text.split("\n\n")
    assert events[-1] == "", "the stream must end with a blank line"
    payloads = []
    for event in events[:-1]:
        assert event.startswith("data: "), event
        payloads.append(event.removeprefix("data: "))
    return payloads


def test_models_endpoint_lists_the_demo_models(http, demo_server):
    body = http.get("/models").json()
    assert body["object"] == "list"
    assert [model["id"] for model in body["data"]] == demo_server.model_names == list(DEMO_MODELS)
    assert len(demo_server.model_names) >= 4


def test_streaming_follows_openais_chunk_sequence(http):
    response = http.post(
        "/chat/completions",
        json={"model": "demo-steps", "messages": PROMPT, "stream": True, "stream_options": {"include_usage": True}},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    payloads = sse_payloads(response)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(payload) for payload in payloads[:-1]]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    assert {chunk["model"] for chunk in chunks} == {"demo-steps"}

    first, *content, finish, usage = chunks
    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert len(content) > 5
    assert all(chunk["choices"][0]["finish_reason"] is None and chunk["usage"] is None for chunk in content)
    assert finish["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == len(content)
    assert usage["usage"]["total_tokens"] == usage["usage"]["prompt_tokens"] + len(content)

    streamed = "".join(chunk["choices"][0]["delta"]["content"] for chunk in content)
    whole = http.post("/chat/completions", json={"model": "demo-steps", "messages": PROMPT}).json()
    assert whole["object"] == "chat.completion"
    assert whole["choices"][0]["message"]["role"] == "assistant"
    assert whole["choices"][0]["finish_reason"] == "stop"
    assert whole["choices"][0]["message"]["content"] == streamed
    assert whole["usage"]["completion_tokens"] == len(content)


def test_without_include_usage_there_is_no_usage_chunk(http):
    response = http.post("/chat/completions", json={"model": "demo-terse", "messages": PROMPT, "stream": True})
    chunks = [json.loads(payload) for payload in sse_payloads(response)[:-1]]
    assert all("usage" not in chunk and len(chunk["choices"]) == 1 for chunk in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_max_tokens_cuts_the_answer_with_finish_reason_length(http):
    full = http.post("/chat/completions", json={"model": "demo-verbose", "messages": PROMPT}).json()
    cut = http.post("/chat/completions", json={"model": "demo-verbose", "messages": PROMPT, "max_tokens": 5}).json()
    assert cut["choices"][0]["finish_reason"] == "length" and cut["usage"]["completion_tokens"] == 5
    assert full["choices"][0]["message"]["content"].startswith(cut["choices"][0]["message"]["content"])


def answer(http: httpx.Client, model: str, messages: list[dict]) -> str:
    response = http.post("/chat/completions", json={"model": model, "messages": messages})
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


def test_models_have_distinct_recognisable_styles(http, demo_server):
    answers = {model: answer(http, model, PROMPT) for model in demo_server.model_names}
    assert len(set(answers.values())) == len(answers)
    assert "\n## " in "\n" + answers["demo-verbose"] and "\n- " in answers["demo-verbose"]
    assert "**" in answers["demo-friendly"]
    assert "\n1. " in answers["demo-steps"] and "\n2. " in answers["demo-steps"]
    assert answers["demo-echo"].startswith("You said: What is the best way to learn the violin")
    assert len(answers["demo-terse"]) < len(answers["demo-friendly"]) < len(answers["demo-verbose"])
    assert all("violin" in text for text in answers.values()), "every answer should be about the prompt"


def test_answers_are_deterministic_and_depend_on_prompt_and_history(http, demo_server):
    other_prompt = [{"role": "user", "content": "How do volcanoes form under the ocean?"}]
    with_history = [*PROMPT, {"role": "assistant", "content": "Practice daily."},
                    {"role": "user", "content": "How long per day?"}]
    other_history = [*other_prompt, {"role": "assistant", "content": "Practice daily."},
                     {"role": "user", "content": "How long per day?"}]
    for model in demo_server.model_names:
        assert answer(http, model, PROMPT) == answer(http, model, PROMPT)
        assert answer(http, model, PROMPT) != answer(http, model, other_prompt)
        assert answer(http, model, with_history) != answer(http, model, other_history), model


def test_demo_model_functions_are_stable_across_processes():
    # Python's hash() is salted per process; the demo models must not depend on it.
    code = (
        "from arena.models.demo_models import DEMO_MODELS, make_conversation;"
        "print(repr(DEMO_MODELS['demo-terse'](make_conversation([('user', 'Why is the sea salty?')]))))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {repr(DEMO_MODELS["demo-terse"](make_conversation([("user", "Why is the sea salty?")]))) + "\n"}


def test_unknown_model_is_a_404_in_openais_error_shape(http):
    response = http.post("/chat/completions", json={"model": "gpt-99", "messages": PROMPT})
    assert response.status_code == 404
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"}
    assert error["code"] == "model_not_found" and "gpt-99" in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "demo-terse", "messages": []}, "messages"),
        ({"model": "demo-terse"}, "messages"),
        ({"messages": PROMPT}, "model"),
        ({"model": "demo-terse", "messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
        ({"model": "demo-terse", "messages": PROMPT, "max_tokens": 0}, "max_tokens"),
    ],
)
def test_bad_requests_are_400_in_openais_error_shape(http, body, param):
    response = http.post("/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["message"]


def test_a_body_that_is_not_json_is_a_400(http):
    response = http.post("/chat/completions", content=b"{oops", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]["message"]


def test_content_parts_are_read_as_text(http):
    parts = [{"role": "user", "content": [{"type": "text", "text": PROMPT[0]["content"]}]}]
    assert answer(http, "demo-echo", parts) == answer(http, "demo-echo", PROMPT)


def test_api_key_is_required_when_configured():
    with DemoServer(token_delay=0.0, api_key="sk-demo-required") as server, httpx.Client(base_url=server.url) as http:
        refused = http.post("/chat/completions", json={"model": "demo-terse", "messages": PROMPT})
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
        assert http.get("/models").status_code == 401
        accepted = http.post(
            "/chat/completions",
            json={"model": "demo-terse", "messages": PROMPT},
            headers={"Authorization": "Bearer sk-demo-required"},
        )
        assert accepted.status_code == 200
        assert server.request_log.last_authorization == "Bearer sk-demo-required"


def test_port_zero_picks_a_free_port_and_stop_releases_it():
    server = DemoServer(token_delay=0.0).start()
    port = server.port
    assert port > 0 and server.url == f"http://127.0.0.1:{port}/v1"
    assert httpx.get(f"{server.url}/models").status_code == 200
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/models")


def test_specs_point_at_the_server(demo_server):
    specs = demo_model_specs(demo_server.url)
    assert [spec.name for spec in specs] == demo_server.model_names
    assert {spec.base_url for spec in specs} == {demo_server.url}
    assert all(spec.provider == "openai" and spec.api_key_env is None for spec in specs)


def test_runs_alone_from_the_command_line():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "arena.models.demo_server", "--port", str(port), "--token-delay", "0"],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )

    def models_listed() -> httpx.Response:
        assert process.poll() is None, process.stderr.read()
        return httpx.get(f"http://127.0.0.1:{port}/v1/models")

    try:
        response = wait_until(models_listed, ignoring=(httpx.ConnectError,), interval=0.1,
                              what=f"the demo server to listen on port {port}")
        assert [model["id"] for model in response.json()["data"]] == list(DEMO_MODELS)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize(
    "text", ["", "one", "  leading space", "two words\n\nand a paragraph  ", "## Header\n- item\n- **bold**"]
)
def test_tokens_join_back_to_the_text(text):
    assert "".join(split_tokens(text)) == text


def test_topic_words_skip_stopwords_and_repeats():
    assert topic_words("What is the best way to learn the Violin, the violin?") == ("learn", "violin")


def answer_at(http: httpx.Client, model: str, messages: list[dict], **sampling) -> str:
    response = http.post("/chat/completions", json={"model": model, "messages": messages, **sampling})
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


def test_a_repeated_conversation_at_a_temperature_gets_another_closing_in_the_same_style(http, demo_server):
    from arena.battles.style import style_features

    prompt = [{"role": "user", "content": "How do glaciers carve valleys?"}]
    for model in demo_server.model_names:
        canonical = answer(http, model, prompt)  # no temperature: the same answer every time
        assert answer(http, model, prompt) == canonical
        asked = [answer_at(http, model, prompt, temperature=0.7) for _ in range(3)]
        assert asked[0] == canonical, "the first ask of a conversation is its canonical answer"
        assert len(set(asked)) == 3, f"{model}: a regeneration looks like the answer before it"
        for varied in asked[1:]:
            assert varied.startswith(canonical)  # only a closing sentence more: the style is the model's
            features, base = style_features([varied]), style_features([canonical])
            assert (features.headers, features.list_items, features.bold) == (base.headers, base.list_items, base.bold)
        assert answer_at(http, model, prompt, temperature=0) == canonical  # greedy: no variation
