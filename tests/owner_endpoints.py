"""A model endpoint on 127.0.0.1 whose behaviour a test switches at will (for owners' tests).

It speaks just enough of the chat-completions streaming protocol (OpenAI's, which
huggingface_hub's client speaks too) for the real clients: one request per connection, then it
hangs up. ``mode`` is one of:

- ``healthy``: a short streamed answer;
- ``slow``: the same after ``delay`` seconds (a slow model: the delay is the behaviour under test);
- ``hang``: never answers, until the endpoint stops (for a client's timeout: no race with a delay);
- ``500``: an OpenAI-style error body with HTTP 500 (its message: ``error_message``);
- ``400``: HTTP 400 "maximum context length" (a failure the request caused);
- ``broken``: one chunk, then the connection drops mid-answer;
- ``401``: unless the request carries ``Authorization: Bearer <api_key>``;
- ``404``: model not found;
- ``garbage``: a stream that is not chat-completions JSON;
- ``redirect``: 307 to ``redirect_to``;
- ``flood``: ignores ``max_tokens`` and streams ``flood_bytes`` of text (100 MB by default) in
  ``flood_chunk_chars`` pieces, until the client hangs up (``flood_sent``: the bytes it wrote, per request);
- ``echo_key``: answers with the bearer key it was sent, split over several chunks: as is, in
  base64 (of ``Bearer <key>``) and reversed (``ECHO_TEMPLATE``).

In every mode a request without the right key gets 401 when ``api_key`` is set. ``requests``
counts requests, ``connections`` counts TCP connections (even ones that never send a request),
``authorizations`` keeps the Authorization headers seen, ``prompts`` the last user message of each request.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading

ANSWER = ["Hello", " from", " the", " owner's", " model."]
FLOOD_BYTES = 100 * 1024 * 1024


def echo_pieces(key: str) -> list[str]:
    """What ``echo_key`` streams for ``key``: each form of it split over chunks, mid-key."""
    encoded = base64.b64encode(f"Bearer {key}".encode()).decode()
    reversed_key = key[::-1]
    return ["Your key is ", key[:5], key[5:13], key[13:], ". Encoded: ", encoded[:7], encoded[7:20], encoded[20:],
            " and backwards: ", reversed_key[:3], reversed_key[3:], " -- end."]


def _chunk(content: str) -> bytes:
    event = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "m",
             "choices": [{"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": None}]}
    data = f"data: {json.dumps(event)}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(data), data)


def _json_reply(status: str, message: str, code: str) -> bytes:
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "code": code}}).encode()
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body


SSE_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n")


class OwnerEndpoint:
    def __init__(self, mode: str = "healthy", *, api_key: str | None = None, delay: float = 0.0,
                 redirect_to: str | None = None, error_message: str = "the model server crashed",
                 flood_bytes: int = FLOOD_BYTES, flood_chunk_chars: int = 4096):
        self.mode = mode
        self.flood_bytes = flood_bytes
        self.flood_chunk_chars = flood_chunk_chars
        self.flood_sent: list[int] = []
        self.prompts: list[str] = []
        self.error_message = error_message
        self.api_key = api_key
        self.delay = delay
        self.redirect_to = redirect_to
        self.requests = 0
        self.connections = 0
        self.authorizations: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="owner-endpoint")
        self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> OwnerEndpoint:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close():
            self._server.close()
            handlers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in handlers:  # a slow reply still sleeping, a hanging one still waiting
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> OwnerEndpoint:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            first = await reader.readexactly(1)
            if first == b"\x16":  # a TLS ClientHello: answer in plain HTTP, as a misconfigured server would
                writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
                writer.close()
                return
            head = first + await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        headers = {line.split(":", 1)[0].strip().lower(): line.split(":", 1)[1].strip()
                   for line in lines[1:] if ":" in line}
        body = await reader.readexactly(int(headers.get("content-length", 0)))
        try:
            self.prompts.append(json.loads(body)["messages"][-1]["content"])
        except (ValueError, KeyError, IndexError, TypeError):
            self.prompts.append("")
        self.requests += 1
        self.authorizations.append(headers.get("authorization", ""))
        try:
            await self._reply(writer, headers)
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _reply(self, writer: asyncio.StreamWriter, headers: dict) -> None:
        mode = self.mode
        if (self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}") or mode == "401":
            writer.write(_json_reply("401 Unauthorized", "Incorrect API key provided.", "invalid_api_key"))
            return
        if mode == "500":
            writer.write(_json_reply("500 Internal Server Error", self.error_message, "server_error"))
            return
        if mode == "400":
            writer.write(_json_reply("400 Bad Request", "This model's maximum context length is 4096 tokens",
                                     "context_length_exceeded"))
            return
        if mode == "404":
            writer.write(_json_reply("404 Not Found", "The model 'x' does not exist", "model_not_found"))
            return
        if mode == "redirect":
            writer.write(f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {self.redirect_to}\r\nContent-Length: 0\r\n"
                         f"Connection: close\r\n\r\n".encode())
            return
        if mode == "slow":
            await asyncio.sleep(self.delay)
        if mode == "hang":
            await asyncio.get_running_loop().create_future()  # cancelled by stop()
        writer.write(SSE_HEAD)
        if mode == "garbage":
            writer.write(b"%x\r\n%s\r\n" % (len(b"data: {not json\n\n"), b"data: {not json\n\n"))
            writer.write(b"0\r\n\r\n")
            return
        if mode == "flood":
            piece = _chunk("x" * (self.flood_chunk_chars - 1) + "\n")
            self.flood_sent.append(0)
            while self.flood_sent[-1] < self.flood_bytes:
                writer.write(piece)
                self.flood_sent[-1] += len(piece)
                await writer.drain()  # raises ConnectionError once the client hangs up
        if mode == "echo_key":
            key = headers.get("authorization", "").removeprefix("Bearer ")
            for piece in echo_pieces(key):
                writer.write(_chunk(piece))
                await writer.drain()
            done = b"data: [DONE]\n\n"
            writer.write(b"%x\r\n%s\r\n" % (len(done), done) + b"0\r\n\r\n")
            await writer.drain()
            return
        if mode == "broken":
            writer.write(_chunk(ANSWER[0]))
            await writer.drain()
            return  # hang up without the terminating chunk: the stream breaks mid-answer
        for piece in ANSWER:
            writer.write(_chunk(piece))
            await writer.drain()
        done = b"data: [DONE]\n\n"
        writer.write(b"%x\r\n%s\r\n" % (len(done), done) + b"0\r\n\r\n")
        await writer.drain()
