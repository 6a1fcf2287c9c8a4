"""A loopback HTTP server that speaks the Anthropic Messages and OpenAI Chat Completions wire
formats, so tests drive the real `anthropic` and `openai` SDKs through their `base_url`.

`server.responder(role_api, request) -> dict | str` gives the structured answer: a dict is
returned as the forced tool's input (Anthropic) or as JSON message content / tool call
arguments (OpenAI); a str is returned as plain text. `role_api.role` is the tool or schema
name the client asked for, `role_api.api` is "anthropic" or "openai". Usage figures are
computed from the bytes (about four per token), and a reply longer than the request's
`max_tokens` is cut there, as a real model's would be. `fail_next(429 | 500 | "timeout", n)`
makes the next n requests fail; `server.requests` holds every request body received.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple


class RoleApi(NamedTuple):
    role: str
    api: str  # anthropic | openai


Responder = Callable[[RoleApi, dict[str, Any]], "dict[str, Any] | str"]

_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_OPENAI_ERRORS = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
}


def tokens(value: Any) -> int:
    """The server's token count of some content: about four bytes a token, at least one."""
    text = value if isinstance(value, str) else json.dumps(value)
    return max(1, math.ceil(len(text.encode("utf-8")) / 4))


class LLMServer:
    """Context manager: a threaded HTTP server on 127.0.0.1 and a free port."""

    def __init__(self, responder: Responder | None = None) -> None:
        self.responder = responder
        self.requests: list[dict[str, Any]] = []  # every request body, in arrival order
        self.headers: list[dict[str, str]] = []  # their headers, same order
        self.paths: list[str] = []
        self.reject_json_schema = False  # 400 on response_format json_schema, like some servers
        self.reject_params: set[str] = set()  # body keys answered with a 400 naming them
        self.retry_after_ms: int | None = 10  # sent with 429/5xx so SDK retries stay quick
        self.stall_seconds = 5.0  # how long a "timeout" failure holds the request unanswered
        self.report_usage = True  # False: replies carry no usage, as some local servers do
        self._failures: list[int | str] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._ids = itertools.count(1)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> LLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def anthropic_base_url(self) -> str:
        return self.url  # the SDK appends /v1/messages

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"  # the SDK appends /chat/completions

    # -- test controls ------------------------------------------------------------------

    def fail_next(self, status: int | str, n: int = 1) -> None:
        """The next `n` requests get this HTTP status, hang past the timeout ("timeout"), or get
        an HTML page with status 200 ("garbage")."""
        with self._lock:
            self._failures.extend([status] * n)

    def roles(self) -> list[str]:
        """The role (tool or schema name) of every request received."""
        return [_role(path, body) for path, body in zip(self.paths, self.requests, strict=True)]

    def texts(self) -> list[str]:
        """Everything each request said to the model (system, messages, schema), as one string."""
        return [json.dumps(body) for body in self.requests]

    # -- serving ------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                with server._lock:
                    server.requests.append(body)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    server.paths.append(self.path)
                    failure = server._failures.pop(0) if server._failures else None
                server._serve(self, self.path, body, failure)

        return Handler

    def _serve(
        self, handler: BaseHTTPRequestHandler, path: str, body: dict[str, Any], failure: Any
    ) -> None:
        api = "anthropic" if path.rstrip("/").endswith("/v1/messages") else "openai"
        if not path.rstrip("/").endswith(("/v1/messages", "/v1/chat/completions")):
            return _send(handler, 404, _error(api, 404, f"no route {path}"))
        if failure == "garbage":  # a proxy's error page instead of the API's JSON
            data = b"<html><body>502 Bad Gateway</body></html>"
            handler.send_response(200)
            handler.send_header("content-type", "text/html")
            handler.send_header("content-length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
            return None
        if failure == "timeout":
            self._release.wait(self.stall_seconds)
            handler.close_connection = True
            return None
        if isinstance(failure, int):
            headers = {}
            if self.retry_after_ms is not None and (failure == 429 or failure >= 500):
                headers["retry-after-ms"] = str(self.retry_after_ms)
            return _send(handler, failure, _error(api, failure, "injected failure"), headers)
        rejected = sorted(k for k in self.reject_params if k in body)
        if rejected:
            return _send(handler, 400, _error(api, 400, f"Unsupported parameter: '{rejected[0]}'"))
        response_format = body.get("response_format") or {}
        if self.reject_json_schema and response_format.get("type") == "json_schema":
            message = "response_format type json_schema is not supported by this server"
            return _send(handler, 400, _error(api, 400, message))
        if self.responder is None:
            return _send(handler, 500, _error(api, 500, "the test server has no responder"))
        answer = self.responder(RoleApi(_role(path, body), api), body)
        reply = self._anthropic(body, answer) if api == "anthropic" else self._openai(body, answer)
        if not self.report_usage:
            reply["usage"] = None
        return _send(handler, 200, reply)

    def _anthropic(self, request: dict[str, Any], answer: dict[str, Any] | str) -> dict[str, Any]:
        max_tokens = int(request.get("max_tokens") or 0)
        input_tokens = tokens(
            [request.get("system"), request.get("messages"), request.get("tools")]
        )
        out = tokens(answer)
        if out > max_tokens:  # a real model stops mid-answer; its tool input would not parse
            text = (answer if isinstance(answer, str) else json.dumps(answer))[: max_tokens * 4]
            content, stop, out = [{"type": "text", "text": text}], "max_tokens", max_tokens
        elif isinstance(answer, str):
            content, stop = [{"type": "text", "text": answer}], "end_turn"
        else:
            name = (request.get("tool_choice") or {}).get("name") or "answer"
            tool_id = f"toolu_{next(self._ids):024d}"
            content = [{"type": "tool_use", "id": tool_id, "name": name, "input": answer}]
            stop = "tool_use"
        return {
            "id": f"msg_{next(self._ids):024d}",
            "type": "message",
            "role": "assistant",
            "model": request.get("model", ""),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": out},
        }

    def _openai(self, request: dict[str, Any], answer: dict[str, Any] | str) -> dict[str, Any]:
        max_tokens = int(request.get("max_completion_tokens") or request.get("max_tokens") or 0)
        prompt_tokens = tokens([request.get("messages"), request.get("response_format")])
        text = answer if isinstance(answer, str) else json.dumps(answer)
        out = tokens(answer)
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        finish = "stop"
        if max_tokens and out > max_tokens:
            message["content"], finish, out = text[: max_tokens * 4], "length", max_tokens
        elif request.get("tools") and not isinstance(answer, str):
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": f"call_{next(self._ids):024d}",
                    "type": "function",
                    "function": {
                        "name": request["tools"][0]["function"]["name"],
                        "arguments": text,
                    },
                }
            ]
            finish = "tool_calls"
        return {
            "id": f"chatcmpl-{next(self._ids):024d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", ""),
            "choices": [
                {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": out,
                "total_tokens": prompt_tokens + out,
            },
        }


def _role(path: str, body: dict[str, Any]) -> str:
    """The tool or schema name a request asks the answer to fit, else a name in its text."""
    if (body.get("tool_choice") or {}).get("name"):
        return body["tool_choice"]["name"]
    schema = (body.get("response_format") or {}).get("json_schema") or {}
    if schema.get("name"):
        return schema["name"]
    found = re.search(r"the `([A-Za-z0-9_-]+)` output", json.dumps(body.get("messages", "")))
    return found.group(1) if found else "unknown"


def _error(api: str, status: int, message: str) -> dict[str, Any]:
    if api == "anthropic":
        kind = _ANTHROPIC_ERRORS.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    kind = _OPENAI_ERRORS.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _send(
    handler: BaseHTTPRequestHandler,
    status: int,
    payload: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> None:
    data = json.dumps(payload).encode("utf-8")
    try:
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        handler.send_header("request-id", f"req_{status}_{len(data)}")
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (its timeout); nothing to answer
