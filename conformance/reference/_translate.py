"""Responses request -> Chat Completions request.

Policy choices (each one is a bug class in ``catalog/bug-classes.md`` when done wrong):

* Q1: ``instructions`` and every ``system``/``developer`` message are merged, in order, into ONE
  leading ``system`` message (a mid-conversation developer message joins it too, because many chat
  templates reject a second or late system message); ``developer`` is never sent upstream.
* Q2: consecutive ``function_call`` items become ONE assistant message with ``tool_calls``, each
  ``function_call_output`` becomes a ``tool`` message.
* Q3: ``input`` may be a string, items may lack ``"type": "message"``, content may be a string
  or parts; several text parts are joined with a newline; ``input_image`` and ``input_file``
  become chat image and file parts.
* Replayed history (what Codex and IDE clients resend every turn) is tolerated: items and content
  parts of a type the bridge does not know are dropped when they are history (before the last
  model-authored item) and refused with a 400 only in the newest turn; built-in tool calls and
  their outputs (web search, custom tools, ...) have no chat equivalent and are dropped.
* RS2: a replayed ``reasoning`` item (summary omitted, ``content`` null or a string,
  ``encrypted_content``) is accepted; its text goes upstream as the next assistant message's
  ``reasoning_content``, which thinking-mode upstreams (DeepSeek, Kimi) require.
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


_MEDIA_PARTS = ("input_image", "input_file")
# Output items of built-in and custom tools, and their client-side outputs: no chat equivalent.
_BUILTIN_ITEMS = frozenset(
    {
        "custom_tool_call",
        "custom_tool_call_output",
        "web_search_call",
        "file_search_call",
        "computer_call",
        "computer_call_output",
        "code_interpreter_call",
        "image_generation_call",
        "local_shell_call",
        "local_shell_call_output",
        "shell_call",
        "shell_call_output",
        "apply_patch_call",
        "apply_patch_call_output",
        "mcp_call",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "tool_search_call",
        "tool_search_output",
        "compaction",
    }
)


def _type(part: Any) -> str | None:
    """A part's or item's ``type`` when it is a string (anything else is no known type)."""
    kind = part.get("type") if isinstance(part, dict) else None
    return kind if isinstance(kind, str) else None


def _text_of(content: Any, param: str, strict: bool = True) -> str:
    """Join the text of a string-or-parts content; images and files are handled by the caller.

    An unknown part type is a 400 when ``strict`` (the newest turn) and dropped otherwise.
    """
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
        kind = _type(part)
        if kind in _TEXT_PARTS:
            value = part.get(_TEXT_PARTS[kind])
            if isinstance(value, str):
                texts.append(value)
        elif kind not in _MEDIA_PARTS and strict:
            raise RequestError(f"unsupported content part type {kind!r}", f"{param}[{i}].type")
    return "\n".join(texts)


def _media_part(part: dict[str, Any], param: str) -> dict[str, Any]:
    if part.get("type") == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise RequestError("input_image needs an image_url", f"{param}.image_url")
        image: dict[str, Any] = {"url": url}
        if isinstance(part.get("detail"), str):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    file: dict[str, Any] = {}
    for key in ("file_id", "file_data", "filename"):
        if isinstance(part.get(key), str):
            file[key] = part[key]
    if not ("file_id" in file or "file_data" in file):
        raise RequestError("input_file needs a file_id or file_data", param)
    return {"type": "file", "file": file}


def _user_content(content: Any, param: str, strict: bool = True) -> str | list[dict[str, Any]]:
    """User content: a plain string, or chat multimodal parts when an image or file is present."""
    if not isinstance(content, list) or not any(
        _type(p) in _MEDIA_PARTS for p in content
    ):
        return _text_of(content, param, strict)
    parts: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        if _type(part) in _MEDIA_PARTS:
            parts.append(_media_part(part, f"{param}[{i}]"))
        else:
            text = _text_of([part], f"{param}[{i}]", strict)
            if text or not strict:
                parts.append({"type": "text", "text": text})
    return [p for p in parts if p.get("type") != "text" or p["text"]]


def _reasoning_text(item: dict[str, Any]) -> str:
    """The readable text of a replayed reasoning item: its content, else its summary."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    texts = [p.get("text") for p in content if isinstance(p, dict)] if isinstance(content, list) else []
    if not any(isinstance(t, str) and t for t in texts):
        summary = item.get("summary")
        texts = [p.get("text") for p in summary if isinstance(p, dict)] if isinstance(summary, list) else []
    return "\n\n".join(t for t in texts if isinstance(t, str) and t)


def _is_model_item(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    kind = item.get("type", "message")
    if kind == "message":
        return bool(item.get("role") == "assistant")
    return kind == "reasoning" or (isinstance(kind, str) and kind.endswith("_call"))


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
    reasoning: list[str] = []
    newest = 1 + max((i for i, item in enumerate(items) if _is_model_item(item)), default=-1)

    def assistant(message: dict[str, Any]) -> dict[str, Any]:
        if reasoning:
            message["reasoning_content"] = "\n\n".join(reasoning)
            reasoning.clear()
        return message

    def flush_calls() -> None:
        if calls:
            out.append(assistant({"role": "assistant", "content": None, "tool_calls": list(calls)}))
            calls.clear()

    for i, item in enumerate(items):
        param = f"input[{i}]"
        if not isinstance(item, dict):
            raise RequestError("each input item must be an object", param, "invalid_type")
        strict = i >= newest
        kind = item.get("type", "message")
        if not isinstance(kind, str):
            raise RequestError("an input item's type must be a string", f"{param}.type", "invalid_type")
        if kind in _BUILTIN_ITEMS:
            continue
        if kind not in ("function_call", "reasoning"):
            flush_calls()
        if kind == "message":
            role = item.get("role")
            content = item.get("content")
            if role in ("system", "developer"):
                text = _text_of(content, f"{param}.content", strict)
                if text:
                    system.append(text)
            elif role == "user":
                out.append({"role": "user", "content": _user_content(content, f"{param}.content", strict)})
            elif role == "assistant":
                out.append(assistant({"role": "assistant", "content": _text_of(content, f"{param}.content", strict)}))
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
            output = _text_of(item.get("output"), f"{param}.output", strict)
            out.append({"role": "tool", "tool_call_id": call_id, "content": output})
        elif kind == "reasoning":
            text = _reasoning_text(item)
            if text:
                reasoning.append(text)
        elif strict:
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
