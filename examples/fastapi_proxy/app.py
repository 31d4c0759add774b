"""A toy Responses API proxy in FastAPI: ``POST /v1/responses`` (streamed, text only) over a Chat
Completions upstream. It is the "proxy under test" of ``test_proxy.py``, which shows how a
proxy's own test suite uses the ``conformance_upstream`` and ``conformance_check`` fixtures.

``create_app(upstream_url, bug=...)``: ``bug`` names a deliberate defect, so the example can show
a finding too ("no-terminal": the stream ends without ``response.completed``).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse


def _chat_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Responses ``instructions`` + ``input`` as chat messages (text content only)."""
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    for item in items or []:
        content = item.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        role = "system" if item.get("role") == "developer" else item.get("role", "user")
        messages.append({"role": role, "content": content})
    return messages


def _response(body: dict[str, Any], rid: str, created: int, status: str, output: list[Any], usage: Any) -> dict[str, Any]:
    return {
        "id": rid, "object": "response", "created_at": created, "status": status, "background": False,
        "error": None, "incomplete_details": None, "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"), "model": body.get("model"), "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True), "previous_response_id": None,
        "reasoning": body.get("reasoning"), "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0), "text": {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0), "truncation": "disabled", "usage": usage,
        "user": body.get("user"), "metadata": body.get("metadata") or {},
    }


def _chat_deltas(upstream: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The upstream's streamed chat chunks, parsed."""
    chat = {"model": body.get("model"), "messages": _chat_messages(body), "stream": True,
            "stream_options": {"include_usage": True}}
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    url = upstream.rstrip("/") + "/chat/completions"
    with httpx.Client(timeout=30.0, trust_env=False) as client, client.stream("POST", url, json=chat) as resp:
        for line in resp.iter_lines():
            if line.startswith("data:"):
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                yield json.loads(data)


def _events(upstream: str, body: dict[str, Any], bug: str | None) -> Iterator[bytes]:
    rid, mid, created = f"resp_{uuid.uuid4().hex}", f"msg_{uuid.uuid4().hex}", int(time.time())
    seq = 0

    def event(kind: str, **fields: Any) -> bytes:
        nonlocal seq
        payload = {"type": kind, "sequence_number": seq, **fields}
        seq += 1
        return f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode()

    yield event("response.created", response=_response(body, rid, created, "in_progress", [], None))
    yield event("response.in_progress", response=_response(body, rid, created, "in_progress", [], None))
    text, usage, finish = "", None, None
    opened = False
    for chunk in _chat_deltas(upstream, body):
        if chunk.get("usage"):
            u = chunk["usage"]
            usage = {
                "input_tokens": u.get("prompt_tokens", 0),
                "input_tokens_details": {
                    "cached_tokens": (u.get("prompt_tokens_details") or {}).get("cached_tokens", 0),
                    "cache_write_tokens": 0,
                },
                "output_tokens": u.get("completion_tokens", 0),
                "output_tokens_details": {"reasoning_tokens": (u.get("completion_tokens_details") or {}).get("reasoning_tokens", 0)},
                "total_tokens": u.get("total_tokens", 0),
            }
        for choice in chunk.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content")
            if piece and not opened:
                opened = True
                item = {"id": mid, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
                yield event("response.output_item.added", output_index=0, item=item)
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                yield event("response.content_part.added", item_id=mid, output_index=0, content_index=0, part=part)
            if piece:
                text += piece
                yield event("response.output_text.delta", item_id=mid, output_index=0, content_index=0,
                            delta=piece, logprobs=[])
            finish = choice.get("finish_reason") or finish
    status = "incomplete" if finish == "length" else "completed"
    output: list[Any] = []
    if opened:
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        yield event("response.output_text.done", item_id=mid, output_index=0, content_index=0, text=text, logprobs=[])
        yield event("response.content_part.done", item_id=mid, output_index=0, content_index=0, part=part)
        item = {"id": mid, "type": "message", "role": "assistant", "status": status, "content": [part]}
        yield event("response.output_item.done", output_index=0, item=item)
        output.append(item)
    if bug == "no-terminal":
        return
    final = _response(body, rid, created, status, output, usage)
    if status == "incomplete":
        final["incomplete_details"] = {"reason": "max_output_tokens"}
    yield event(f"response.{status}", response=final)


def create_app(upstream_url: str | None = None, *, bug: str | None = None) -> FastAPI:
    """The proxy; ``upstream_url`` is the Chat Completions base URL (default: $OPENAI_BASE_URL)."""
    upstream = upstream_url or os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
    app = FastAPI(title="toy Responses proxy")

    @app.post("/v1/responses")
    async def responses(request: Request) -> Any:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": {"message": "the body is not JSON", "type": "invalid_request_error",
                                           "param": None, "code": None}}, status_code=400)
        return StreamingResponse(_events(upstream, body, bug), media_type="text/event-stream")

    return app
