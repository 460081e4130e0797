"""A STUB of an OpenAI-compatible chat-completions server on 127.0.0.1, for tests and benchmarks.

It is a stub, not a model: it understands nothing and answers whatever the test told it to
answer, in the shape the OpenAI API uses, so the openai + instructor backend can be driven
through every outcome (valid answers, invalid output, refusals, 429 with Retry-After, 5xx,
slow answers, bodies that are not JSON, 200 replies that are not chat completions) without a
key, a network or a real provider.

    from tests.llm_stub import OpenAIStub

    with OpenAIStub() as stub:
        stub.base_url                    # "http://127.0.0.1:PORT/v1"
        stub.answer({"relevant": True, ...})   # the default reply: one tool call with these arguments
        stub.answer_for("Classification18", {...})  # the default reply when that is the tool
        stub.script([{"status": 429, "headers": {"Retry-After": "1"}}, {"status": 500}])
        stub.latency = 0.2               # every response waits this long first
        stub.requests                    # [{"body", "headers", "at", "end"}, ...] (a snapshot)
        stub.max_in_flight               # the most requests handled at once
        stub.open_connections            # client connections open now
        stub.in_flight_at(t)             # requests being handled at monotonic time t
        stub.reset()

Endpoints: ``POST /v1/chat/completions`` and ``GET /v1/models``; anything else is a 404.

Default reply: a ``chat.completion`` whose ``choices[0].message.tool_calls[0]`` calls the
function named by the request's ``tools[0].function.name`` with the answer's arguments
(``json.dumps`` of a dict, or a str verbatim so tests can send malformed JSON), with
``finish_reason: "tool_calls"``. A request without tools (instructor's JSON modes) gets the
arguments as the message content instead. Usage: ``prompt_tokens`` is the number of
characters of all message contents // 4, ``completion_tokens`` is len(arguments) // 4,
``prompt_tokens_details.cached_tokens`` is 0.

Scripted one-shot behaviours, consumed one per chat request before falling back to the
default answer:

    {"status": 429, "headers": {"Retry-After": "1"}, "body": {...}}   # any status; body optional
    {"sleep": 2.0}                         # wait, then answer normally (client timeouts); a
                                           # client that hangs up meanwhile is noticed (the
                                           # request's record gets "hung_up": True) and the
                                           # answer is not sent, as a server stops generating
    {"malformed": True}                    # 200 application/json whose body is not JSON
    {"arguments": {...} | "string"}        # one specific tool-call answer
    {"headers": {"x-ratelimit-remaining-requests": "0"}}  # the default answer, with these headers
    {"refusal": "I can't help with that."} # a refusal, no tool call, finish_reason "stop"

Replies with status 200 that are not a chat completion (what proxies, captive portals and broken
servers send), also one per chat request:

    {"reply": "text", "content_type": "text/plain"}  # this body verbatim (str or bytes); the text
                                           # "{authorization}" in it becomes the request's
                                           # Authorization header and "{api_key}" the key in it,
                                           # as an echoing server does
    {"reply": "...", "size": 20_000_000}   # the body repeated to exactly this many bytes, sent
                                           # in chunks (the stub never holds it whole)
    {"reply": b"...", "headers": {"Content-Encoding": "gzip"}}  # extra response headers
    {"reply": "...", "length": False}      # no Content-Length: the body ends when the connection does
    {"truncate": 0.5}                      # the default answer's JSON cut to this fraction of its
                                           # length (Content-Length matches what is sent)
    {"truncate": 0.5, "drop": True}        # the full Content-Length announced, the cut body sent,
                                           # then the connection closed

Quiet (nothing on stderr) and indifferent to clients that hang up. Standard library only.
"""

from __future__ import annotations

import http
import http.server
import json
import select
import socket
import threading
import time
from collections import deque
from typing import Any

from .localserver import LocalServer

JSON = "application/json"


def prompt_tokens(messages: Any) -> int:
    """The stub's prompt tokens: characters of every message's content (strings, or the text of
    content parts; an assistant message with only tool calls counts 0) // 4."""
    total = 0
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(part.get("text") or "") for part in content if isinstance(part, dict))
    return total // 4


def _error_body(status: int) -> dict[str, Any]:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    kind = {429: "rate_limit_exceeded", 401: "invalid_api_key"}.get(status, "server_error")
    return {"error": {"message": f"stub: {status} {phrase}", "type": kind, "param": None, "code": kind}}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "OpenAIStub/1.0"
    timeout = 15  # idle keep-alive connections give up after this
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet

    def do_GET(self) -> None:
        self._guarded(self._get)

    def do_POST(self) -> None:
        self._guarded(self._post)

    def _guarded(self, serve: Any) -> None:
        try:
            serve()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True  # the client went away

    def _get(self) -> None:
        if self.path.split("?")[0].rstrip("/") == "/v1/models":
            models = {"object": "list", "data": [{"id": self.server.stub.model, "object": "model",
                                                  "created": 0, "owned_by": "stub"}]}  # fmt: skip
            self._send(200, models)
        else:
            self._send(404, {"error": {"message": "stub: no such route", "type": "not_found"}})

    def _post(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.split("?")[0].rstrip("/") != "/v1/chat/completions":
            self._send(404, {"error": {"message": "stub: no such route", "type": "not_found"}})
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send(400, {"error": {"message": "stub: request body is not JSON", "type": "bad_request"}})
            return
        stub = self.server.stub
        record, step, latency = stub._begin(body, self.headers)
        try:
            if not self._wait(latency + float(step.get("sleep", 0.0))):
                record["hung_up"] = True
                self.close_connection = True
                return
            if "status" in step and step["status"] != 200:
                status = int(step["status"])
                self._send(status, step.get("body") or _error_body(status), step.get("headers") or {})
            elif "reply" in step:
                self._reply(step)
            elif "truncate" in step:
                whole = json.dumps(stub._completion(body, arguments=self._arguments(body, step))).encode()
                cut = whole[: int(len(whole) * float(step["truncate"]))]
                if step.get("drop"):
                    self._send(200, cut, raw_body=True, length=len(whole))
                    self.close_connection = True
                else:
                    self._send(200, cut, raw_body=True)
            elif step.get("malformed"):
                self._send(200, b'{"id": "chatcmpl-stub", "choices": [ this is not JSON', raw_body=True)
            elif "refusal" in step:
                self._send(200, stub._completion(body, refusal=str(step["refusal"])))
            else:
                answer = stub._completion(body, arguments=self._arguments(body, step))
                self._send(200, answer, step.get("headers") or {})
        finally:
            stub._end(record)

    def _wait(self, seconds: float) -> bool:
        """Wait ``seconds`` (less if the stub stops); False as soon as the client hangs up."""
        deadline = time.monotonic() + seconds
        stopping = self.server.stub._stopping
        while (left := deadline - time.monotonic()) > 0 and not stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
            if readable:  # nothing more is sent while a request is answered: this is the end
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return False
                except OSError:
                    return False
        return True

    def _arguments(self, body: dict[str, Any], step: dict[str, Any]) -> Any:
        stub = self.server.stub
        tools = body.get("tools") or []
        name = (tools[0].get("function") or {}).get("name") if tools else None
        return step.get("arguments", stub._defaults.get(name, stub._default))

    def _reply(self, step: dict[str, Any]) -> None:
        """A 200 whose body is the step's, verbatim or repeated to ``size`` bytes."""
        reply = step["reply"]
        data = reply.encode("utf-8") if isinstance(reply, str) else bytes(reply)
        authorization = self.headers.get("Authorization") or ""
        data = data.replace(b"{authorization}", authorization.encode("utf-8"))
        data = data.replace(b"{api_key}", authorization.removeprefix("Bearer ").encode("utf-8"))
        size = int(step.get("size") or len(data))
        self.send_response(200)
        if step.get("content_type") is not None:
            self.send_header("Content-Type", step["content_type"])
        for name, value in (step.get("headers") or {}).items():
            self.send_header(name, str(value))
        if step.get("length", True):
            self.send_header("Content-Length", str(size))
        else:  # the body ends when the connection does
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if not data:
            return
        chunk = data * max(1, 65536 // len(data))
        sent = 0
        while sent < size:
            part = chunk[: size - sent]
            self.wfile.write(part)
            sent += len(part)
        self.wfile.flush()

    def _send(
        self,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        raw_body: bool = False,
        length: int | None = None,
    ) -> None:
        data = body if raw_body else json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", JSON)
        self.send_header("Content-Length", str(len(data) if length is None else length))
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


class _Server(LocalServer):
    def __init__(self, address: tuple[str, int], stub: OpenAIStub) -> None:
        self.stub = stub
        super().__init__(address, _Handler)


class OpenAIStub:
    """A stub OpenAI-compatible endpoint on 127.0.0.1 (free port). Use as a context manager."""

    def __init__(self, *, model: str = "stub-model", latency: float = 0.0) -> None:
        self.model = model
        self.latency = latency
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._script: deque[dict[str, Any]] = deque()
        self._default: dict[str, Any] | str = {}
        self._defaults: dict[str | None, dict[str, Any] | str] = {}
        self._in_flight = 0
        self._max_in_flight = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._base_url: str | None = None
        self._counter = 0

    # -- life cycle -----------------------------------------------------------------------------------
    def start(self) -> OpenAIStub:
        if self._server is not None:
            return self
        self._stopping = threading.Event()
        server = _Server(("127.0.0.1", 0), self)
        self._base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="openai-stub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes sleeping answers
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- public API -------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the stub has not been started")
        return self._base_url

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every chat request in arrival order: body (parsed JSON), headers (lower-case), at, end."""
        with self._lock:
            return [dict(r, headers=dict(r["headers"])) for r in self._requests]

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    @property
    def open_connections(self) -> int:
        """Client connections open now (keep-alive ones included)."""
        server = self._server
        if server is None:
            return 0
        with server._connections_lock:
            return len(server._connections)

    def in_flight_at(self, at: float) -> int:
        """How many requests were being handled at monotonic time ``at``."""
        with self._lock:
            return sum(1 for r in self._requests if r["at"] <= at and (r["end"] is None or r["end"] > at))

    def answer(self, arguments: dict[str, Any] | str) -> None:
        """The default reply's tool-call arguments (a str is sent verbatim, e.g. malformed JSON)."""
        with self._lock:
            self._default = arguments

    def answer_for(self, tool: str, arguments: dict[str, Any] | str) -> None:
        """The default reply to requests whose tool is ``tool`` (e.g. one schema per commitment)."""
        with self._lock:
            self._defaults[tool] = arguments

    def script(self, steps: list[dict[str, Any]]) -> None:
        """Queue one-shot behaviours, consumed one per chat request (see the module docstring)."""
        with self._lock:
            self._script.extend(dict(s) for s in steps)

    def reset(self) -> None:
        """Forget requests, the script and the in-flight high-water mark (not the default answer)."""
        with self._lock:
            self._requests.clear()
            self._script.clear()
            self._max_in_flight = self._in_flight

    # -- internals ----------------------------------------------------------------------------------------
    def _begin(self, body: Any, headers: Any) -> tuple[dict[str, Any], dict[str, Any], float]:
        record = {
            "body": body,
            "headers": {k.lower(): v for k, v in headers.items()},
            "at": time.monotonic(),
            "end": None,
        }
        with self._lock:
            self._requests.append(record)
            step = self._script.popleft() if self._script else {}
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            return record, step, self.latency

    def _end(self, record: dict[str, Any]) -> None:
        with self._lock:
            record["end"] = time.monotonic()
            self._in_flight -= 1

    def _completion(
        self, body: dict[str, Any], *, arguments: Any = None, refusal: str | None = None
    ) -> dict[str, Any]:
        with self._lock:
            self._counter += 1
            number = self._counter
        tools = body.get("tools") or []
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        text = ""
        if refusal is not None:
            message["refusal"] = refusal
            finish = "stop"
        else:
            text = arguments if isinstance(arguments, str) else json.dumps(arguments)
            name = (tools[0].get("function") or {}).get("name") if tools else None
            if name:
                message["tool_calls"] = [
                    {
                        "id": f"call_stub_{number}",
                        "type": "function",
                        "function": {"name": name, "arguments": text},
                    }
                ]
                finish = "tool_calls"
            else:
                message["content"] = text
                finish = "stop"
        tokens_in = prompt_tokens(body.get("messages"))
        tokens_out = len(text) // 4
        return {
            "id": f"chatcmpl-stub-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.model,
            "system_fingerprint": "stub",
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
                "prompt_tokens_details": {"cached_tokens": 0},
            },
        }
