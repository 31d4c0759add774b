"""Responses request -> Chat Completions request.

Policy choices (each one is a bug class in ``catalog/bug-classes.md`` when done wrong):

* Q1: ``instructions`` and every ``system``/``developer`` message are merged, in order, into ONE
  leading ``system`` message (a mid-conversation developer message joins it too, because many chat
  templates reject a second or late system message); ``developer`` is never sent upstream.
* Q2: consecutive ``function_call`` items become ONE assistant message with ``tool_calls``, each
  ``function_call_output`` becomes a ``tool`` message.
* Q3: ``input`` may be a string, items may lack ``"type": "message"``, content may be a string
  or parts; several text parts are joined with a newline.
* Q7: the bridge is stateless, so a ``previous_response_id`` is refused with a 400 naming the
  parameter rather than silently answered without history.
* S7: anything we cannot translate is a 400 with an OpenAI error envelope, never a 500.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RequestError", "to_chat"]

_TEXT_PARTS = {"input_text": "text", "output_text": "text", "text": "text", "refusal": "refusal"}


class RequestError(Exception):
    """A client request we refuse; rendered as a 400 ``invalid_request_error``."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def _text_of(content: Any, param: str) -> str:
    """Join the text of a string-or-parts content; images are handled by the caller."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise RequestError("content must be a string or an array of parts", param)
    texts: list[str] = []
    for i, part in enumerate(content):
        if isinstance(part, str):
            texts.append(part)
            continue
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in _TEXT_PARTS:
            value = part.get(_TEXT_PARTS[kind])
            if isinstance(value, str):
                texts.append(value)
        elif kind not in ("input_image", "input_file"):
            raise RequestError(f"unsupported content part type {kind!r}", f"{param}[{i}].type")
    return "\n".join(texts)


def _user_content(content: Any, param: str) -> str | list[dict[str, Any]]:
    """User content: a plain string, or chat multimodal parts when an image is present."""
    if not isinstance(content, list) or not any(
        isinstance(p, dict) and p.get("type") == "input_image" for p in content
    ):
        return _text_of(content, param)
    parts: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        if isinstance(part, dict) and part.get("type") == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str):
                raise RequestError("input_image needs an image_url", f"{param}[{i}].image_url")
            image: dict[str, Any] = {"url": url}
            if isinstance(part.get("detail"), str):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            parts.append({"type": "text", "text": _text_of([part], f"{param}[{i}]")})
    return parts


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("input")
    items: list[Any]
    if isinstance(raw, str):
        items = [{"role": "user", "content": raw}]
    elif isinstance(raw, list):
        items = raw
    else:
        raise RequestError("input must be a string or an array of items", "input", "invalid_type")
    instructions = body.get("instructions")
    system: list[str] = [instructions] if isinstance(instructions, str) and instructions else []
    out: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []

    def flush_calls() -> None:
        if calls:
            out.append({"role": "assistant", "content": None, "tool_calls": list(calls)})
            calls.clear()

    for i, item in enumerate(items):
        param = f"input[{i}]"
        if not isinstance(item, dict):
            raise RequestError("each input item must be an object", param, "invalid_type")
        kind = item.get("type", "message")
        if kind not in ("function_call", "reasoning"):
            flush_calls()
        if kind == "message":
            role = item.get("role")
            content = item.get("content")
            if role in ("system", "developer"):
                text = _text_of(content, f"{param}.content")
                if text:
                    system.append(text)
            elif role == "user":
                out.append({"role": "user", "content": _user_content(content, f"{param}.content")})
            elif role == "assistant":
                out.append({"role": "assistant", "content": _text_of(content, f"{param}.content")})
            else:
                raise RequestError(f"unsupported message role {role!r}", f"{param}.role")
        elif kind == "function_call":
            name, call_id = item.get("name"), item.get("call_id")
            if not isinstance(name, str) or not isinstance(call_id, str) or not call_id:
                raise RequestError("function_call needs a name and a call_id", param)
            arguments = item.get("arguments")
            calls.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": arguments if isinstance(arguments, str) else "{}",
                    },
                }
            )
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            if not isinstance(call_id, str) or not call_id:
                raise RequestError("function_call_output needs a call_id", f"{param}.call_id")
            output = _text_of(item.get("output"), f"{param}.output")
            out.append({"role": "tool", "tool_call_id": call_id, "content": output})
        elif kind == "reasoning":
            continue
        else:
            raise RequestError(f"unsupported input item type {kind!r}", f"{param}.type")
    flush_calls()
    if system:
        out.insert(0, {"role": "system", "content": "\n\n".join(system)})
    return out


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise RequestError("tools must be an array", "tools", "invalid_type")
    out: list[dict[str, Any]] = []
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type") != "function":
            continue  # T5: built-in and custom tools have no chat equivalent; skip, don't fail
        fn: dict[str, Any] = {"name": tool.get("name")}
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                fn[key] = tool[key]
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and choice.get("name"):
        return {"type": "function", "function": {"name": choice["name"]}}
    return None


def _response_format(text: Any) -> dict[str, Any] | None:
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if fmt["type"] == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise RequestError(f"unsupported text.format type {fmt['type']!r}", "text.format.type")


def to_chat(body: Any) -> dict[str, Any]:
    """Translate a parsed Responses request body into a streaming chat request."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object", None, "invalid_type")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("model is required", "model", "missing_required_parameter")
    if body.get("previous_response_id"):
        raise RequestError(
            "previous_response_id is not supported: this bridge stores nothing; send the full "
            "history in input",
            "previous_response_id",
            "unsupported_parameter",
        )
    chat: dict[str, Any] = {"model": model, "messages": _messages(body)}
    tools = _tools(body)
    if tools:
        chat["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"))
        if choice is not None:
            chat["tool_choice"] = choice
        if isinstance(body.get("parallel_tool_calls"), bool):
            chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            chat[key] = body[key]
    fmt = _response_format(body.get("text"))
    if fmt is not None:
        chat["response_format"] = fmt
    chat["stream"] = True
    chat["stream_options"] = {"include_usage": True}
    return chat
