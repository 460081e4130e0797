"""A STUB of the OpenAI files and batches endpoints on 127.0.0.1, for the Batch API tests.

It is a stub, not a provider and not a model: it keeps uploaded files and batches in memory,
answers polls with the statuses the test asks for, and when a batch ends writes its output and
error files the way the OpenAI Batch API documents them, each chat request answered as
:class:`tests.llm_stub.OpenAIStub` answers a live one (the default answer, or the answer set
for the request's tool). It also serves ``/v1/chat/completions`` and ``/v1/models`` (the live
stub's), so one stub answers a live run and a batch run alike.

    with BatchStub() as stub:
        stub.answer_for("Classification19", {...})   # the answer to every request of that tool
        stub.polls = 2                 # polls answered in_progress before the batch ends (None: never)
        stub.end = "completed"         # or "expired", "failed", "cancelled"
        stub.lines([{}, {"arguments": "not JSON"}, {"status": 500}, {"expired": True},
                    {"missing": True}, {"refusal": "no"}, {"finish_reason": "length"}])
        stub.calls                     # [(method, path), ...] of every files/batches request
        stub.forget()                  # polls for the batches so far answer 404
        stub.uploads                   # the bytes of every uploaded file, in order

Endpoints: ``POST /v1/files`` (multipart, purpose ``batch``), ``GET /v1/files/{id}/content``,
``POST /v1/batches``, ``GET /v1/batches/{id}``, ``GET /v1/batches``. Line steps (``lines``) are
consumed one per request line, in the file's order, when a batch ends; a line without a step
gets the default answer.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
from collections import deque
from typing import Any

from .llm_stub import OpenAIStub, _Handler, _Server


class _BatchHandler(_Handler):
    server: _BatchServer

    def _get(self) -> None:
        stub = self.server.stub
        path = self.path.split("?")[0].rstrip("/")
        if not path.startswith(("/v1/files", "/v1/batches")):
            super()._get()
            return
        stub._called("GET", path)
        parts = path.split("/")[2:]  # files/ID/content, batches/ID, batches
        if parts[0] == "files" and len(parts) == 3 and parts[2] == "content" and parts[1] in stub._files:
            data = stub._files[parts[1]]["data"]
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif parts[0] == "batches" and len(parts) == 2 and parts[1] in stub._batches:
            self._send(200, stub._poll(parts[1]))
        elif parts == ["batches"]:
            with stub._lock:
                data = [dict(b) for b in reversed(stub._batches.values())]
            self._send(200, {"object": "list", "data": data, "has_more": False})
        else:
            self._send(404, {"error": {"message": "stub: no such file or batch", "type": "not_found"}})

    def _post(self) -> None:
        stub = self.server.stub
        path = self.path.split("?")[0].rstrip("/")
        if path not in ("/v1/files", "/v1/batches"):
            super()._post()
            return
        stub._called("POST", path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if path == "/v1/files":
            head = f"Content-Type: {self.headers.get('Content-Type')}\r\n\r\n".encode()
            message = email.parser.BytesParser(policy=email.policy.default).parsebytes(head + raw)
            fields: dict[str, Any] = {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                fields[str(name)] = part.get_payload(decode=True)
            if fields.get("purpose") != b"batch" or "file" not in fields:
                self._send(
                    400, {"error": {"message": "stub: want purpose=batch and a file", "type": "bad_request"}}
                )
                return
            self._send(200, stub._store_file(fields["file"], "batch"))
            return
        body = json.loads(raw or b"{}")
        if body.get("input_file_id") not in stub._files or body.get("endpoint") != "/v1/chat/completions":
            self._send(
                400, {"error": {"message": "stub: unknown input file or endpoint", "type": "bad_request"}}
            )
            return
        self._send(200, stub._create_batch(body))


class _BatchServer(_Server):
    stub: BatchStub  # type: ignore[assignment]

    def __init__(self, address: tuple[str, int], stub: BatchStub) -> None:
        self.stub = stub
        super(_Server, self).__init__(address, _BatchHandler)


class BatchStub(OpenAIStub):
    """The live stub plus files and batches (see the module docstring). A context manager."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.polls: int | None = 1
        self.end = "completed"
        self.calls: list[tuple[str, str]] = []
        self.uploads: list[bytes] = []
        self._files: dict[str, dict[str, Any]] = {}
        self._batches: dict[str, dict[str, Any]] = {}
        self._polled: dict[str, int] = {}
        self._lines: deque[dict[str, Any]] = deque()
        self._ids = 0

    def start(self) -> BatchStub:
        if self._server is not None:
            return self
        self._stopping = threading.Event()
        server = _BatchServer(("127.0.0.1", 0), self)
        self._base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="batch-stub", daemon=True
        )
        self._thread.start()
        return self

    def lines(self, steps: list[dict[str, Any]]) -> None:
        """Queue per-line behaviours for the next batch to end (see the module docstring)."""
        with self._lock:
            self._lines.extend(dict(s) for s in steps)

    def forget(self) -> None:
        """Forget every batch: polls for them answer 404."""
        with self._lock:
            self._batches.clear()

    def batches_created(self) -> int:
        return sum(1 for call in self.calls if call == ("POST", "/v1/batches"))

    def polled(self) -> int:
        return sum(1 for m, p in self.calls if m == "GET" and p.startswith("/v1/batches/"))

    # -- internals ----------------------------------------------------------------------------------------
    def _called(self, method: str, path: str) -> None:
        with self._lock:
            self.calls.append((method, path))

    def _new_id(self, prefix: str) -> str:
        with self._lock:
            self._ids += 1
            return f"{prefix}-stub-{self._ids}"

    def _store_file(self, data: bytes, purpose: str) -> dict[str, Any]:
        file_id = self._new_id("file")
        with self._lock:
            self._files[file_id] = {"data": data, "purpose": purpose}
            if purpose == "batch":
                self.uploads.append(data)
        return {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                "filename": f"{file_id}.jsonl", "purpose": purpose, "status": "processed"}  # fmt: skip

    def _create_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        batch_id = self._new_id("batch")
        lines = self._files[body["input_file_id"]]["data"].decode("utf-8").splitlines()
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "errors": None,
            "input_file_id": body["input_file_id"],
            "completion_window": body.get("completion_window"),
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": int(time.time()),
            "metadata": body.get("metadata"),
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
        }
        with self._lock:
            self._batches[batch_id] = batch
            self._polled[batch_id] = 0
        return dict(batch)

    def _poll(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            batch = self._batches[batch_id]
            if batch["status"] in ("completed", "failed", "expired", "cancelled"):
                return dict(batch)
            self._polled[batch_id] += 1
            if self.polls is None or self._polled[batch_id] <= self.polls:
                batch["status"] = "in_progress"
                return dict(batch)
        self._finish(batch_id)
        with self._lock:
            return dict(self._batches[batch_id])

    def _finish(self, batch_id: str) -> None:
        batch = self._batches[batch_id]
        end = self.end
        if end == "failed":
            with self._lock:
                batch["status"] = "failed"
                batch["errors"] = {"object": "list", "data": [
                    {"code": "invalid_request", "message": "stub: this batch was refused", "param": None, "line": 1}
                ]}  # fmt: skip
            return
        requests = [json.loads(t) for t in self._files[batch["input_file_id"]]["data"].decode().splitlines()]
        out, errors = [], []
        for n, request in enumerate(requests):
            with self._lock:
                step = self._lines.popleft() if self._lines else {}
            line = self._line(n, request, step)
            if line is None:
                continue
            (errors if line["error"] or line["response"]["status_code"] != 200 else out).append(line)
        with self._lock:
            batch["status"] = end
            batch["request_counts"] = {"total": len(requests), "completed": len(out), "failed": len(errors)}
        if out:
            batch["output_file_id"] = self._store_file(_jsonl(out), "batch_output")["id"]
        if errors:
            batch["error_file_id"] = self._store_file(_jsonl(errors), "batch_output")["id"]

    def _line(self, n: int, request: dict[str, Any], step: dict[str, Any]) -> dict[str, Any] | None:
        line: dict[str, Any] = {"id": f"batch_req_stub_{n}", "custom_id": request["custom_id"], "response": None,
                                "error": None}  # fmt: skip
        body = request["body"]
        if step.get("missing"):
            return None
        if step.get("expired"):
            code = "batch_expired" if self.end != "cancelled" else "batch_cancelled"
            line["error"] = {"code": code, "message": "stub: not executed before the batch ended"}
            return line
        if "status" in step:
            status = int(step["status"])
            line["response"] = {"status_code": status, "request_id": f"req_{n}",
                                "body": {"error": {"message": f"stub: {status}", "type": "server_error"}}}  # fmt: skip
            return line
        if "refusal" in step:
            completion = self._completion(body, refusal=str(step["refusal"]))
        else:
            tools = body.get("tools") or []
            name = (tools[0].get("function") or {}).get("name") if tools else None
            arguments = step.get("arguments", self._defaults.get(name, self._default))
            completion = self._completion(body, arguments=arguments)
            if "finish_reason" in step:
                completion["choices"][0]["finish_reason"] = step["finish_reason"]
        line["response"] = {"status_code": 200, "request_id": f"req_{n}", "body": completion}
        return line


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode("utf-8") + b"\n" for line in lines)
