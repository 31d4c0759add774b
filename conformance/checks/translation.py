"""Translation checks: did the proxy send upstream what the client asked?

Each compares the Responses request the harness sent with the Chat Completions request the fake
upstream received (the last one, if the proxy retried). A cassette turn can switch rules off
(``expect.translation.skip``), exempt upstream fields (``ignore``) and opt into rules that only
some upstreams need (``require: ["reasoning_content"]``). Where the Responses API leaves the
translation open, every reasonable choice passes: text parts may be joined with nothing, a
space, a newline or a blank line; a mid-conversation developer message may join the system
message or become a user message; unsupported built-in tools may be dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

from conformance.checks._registry import Context, Issue, Skip, check
from conformance.expected import expect, json_equal

_TEXT_PARTS = {"input_text": "text", "output_text": "text", "text": "text", "refusal": "refusal"}
_MEDIA = ("input_image", "input_file")
_CHAT_MEDIA = ("image_url", "file", "input_audio")
# Responses-only request fields that mean nothing to (or are rejected by) a chat upstream.
# `store`, `metadata`, `prompt_cache_key` and `prompt_cache_retention` are Chat Completions
# parameters too (openai-python's chat completion_create_params), so forwarding them is allowed.
RESPONSES_ONLY = (
    "input",
    "instructions",
    "include",
    "previous_response_id",
    "text",
    "max_output_tokens",
    "truncation",
    "background",
    "conversation",
    "max_tool_calls",
    "client_metadata",
    "context_management",
)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    """The value if it is a string (safe to look up in a set or dict), else None."""
    return value if isinstance(value, str) else None


def _clip(value: Any, limit: int = 200) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"… [{len(value)} chars]"
    return value


def _gate(ctx: Context, check_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Responses request, chat request), or Skip with the reason the rule cannot be judged."""
    turn = ctx.turn
    if turn is None:
        raise Skip("no cassette turn to compare with")
    if not turn.upstream:
        raise Skip("this turn has no upstream answer: a correct proxy refuses the request itself")
    if check_id in turn.translation.get("skip", []):
        raise Skip("the cassette says this rule does not apply to this turn")
    chat = ctx.upstream_request
    if chat is None:
        raise Skip("the proxy sent no upstream request for this exchange (see upstream.matched)")
    request = ctx.exchange.request
    ignore = set(turn.translation.get("ignore", []))
    return request, {k: v for k, v in chat.items() if k not in ignore}


# -- reading both sides ------------------------------------------------------------------------------
def _pieces(content: Any, strict: bool = False) -> list[str]:
    """The text pieces of a Responses content (string or parts); unknown parts are left out."""
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    out = []
    for part in content if isinstance(content, list) else []:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, dict) and isinstance(part.get("type"), str) and part["type"] in _TEXT_PARTS:
            value = part.get(_TEXT_PARTS[part["type"]])
            if isinstance(value, str):
                out.append(value)
    return out


def _media(content: Any) -> int:
    return sum(1 for p in content if isinstance(p, dict) and _str(p.get("type")) in _MEDIA) if isinstance(content, list) else 0


def _chat_text(content: Any) -> tuple[list[str], int]:
    """(text pieces, media parts) of a chat message's content."""
    if content is None:
        return [], 0
    if isinstance(content, str):
        return [content], 0
    pieces, media = [], 0
    for part in content if isinstance(content, list) else []:
        if isinstance(part, str):
            pieces.append(part)
        elif isinstance(part, dict):
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                pieces.append(part["text"])
            elif _str(part.get("type")) in _CHAT_MEDIA:
                media += 1
    return pieces, media


def same_text(want: list[str], got: list[str]) -> bool:
    """Text pieces carried over, joined in any of the usual ways (or kept as separate parts)."""
    want = [w for w in want if w]
    got = [g for g in got if g]
    if want == got:
        return True
    joined = "".join(got)
    return any(joined == sep.join(want) for sep in ("", "\n", "\n\n", " "))


def _contains_in_order(haystack: str, needles: list[str]) -> str | None:
    """The first needle not found (in order) in haystack, or None."""
    pos = 0
    for needle in needles:
        if not needle:
            continue
        found = haystack.find(needle, pos)
        if found < 0:
            return needle
        pos = found + len(needle)
    return None


def _items(request: dict[str, Any]) -> list[dict[str, Any]]:
    inp = request.get("input")
    if isinstance(inp, str):
        return [{"type": "message", "role": "user", "content": inp}]
    return [i for i in inp if isinstance(i, dict)] if isinstance(inp, list) else []


def _kind(item: dict[str, Any]) -> str:
    return str(item.get("type") or ("message" if "role" in item else ""))


def _messages(chat: dict[str, Any]) -> list[dict[str, Any]]:
    msgs = chat.get("messages")
    return [m for m in msgs if isinstance(m, dict)] if isinstance(msgs, list) else []


@dataclass
class _Entry:
    role: str
    pieces: list[str]
    media: int
    where: str

    @property
    def pointer(self) -> str:
        """``messages[3]`` -> ``/messages/3``."""
        return "/" + self.where.replace("[", "/").rstrip("]")

    def show(self) -> dict[str, Any]:
        return {"role": self.role, "text": _clip("\n".join(self.pieces), 120), **({"media": self.media} if self.media else {})}


def _system_split(items: list[dict[str, Any]]) -> tuple[list[list[str]], list[tuple[int, list[str]]]]:
    """(leading system/developer texts, mid-conversation ones with their input index)."""
    leading: list[list[str]] = []
    mid: list[tuple[int, list[str]]] = []
    started = False
    for i, item in enumerate(items):
        is_sys = _kind(item) == "message" and item.get("role") in ("system", "developer")
        if is_sys and not started:
            leading.append(_pieces(item.get("content")))
        elif is_sys:
            mid.append((i, _pieces(item.get("content"))))
        elif _kind(item) not in ("reasoning",):
            started = True
    return leading, mid


# -- checks ----------------------------------------------------------------------------------------
@check("translation.system_message", classes=("Q1",), needs_stream=False, needs_upstream=True)
def system_message(ctx: Context) -> Iterator[Issue]:
    """``instructions`` and the leading ``developer``/``system`` items become ONE leading system message, in order; no ``developer`` role goes upstream.

    Chat templates and upstreams reject what a sloppy merge produces: Qwen's template raises
    ``Unexpected message role`` on ``developer`` (a 500 for every Codex request), DeepSeek rejects
    ``developer``, others say ``System message must be at the beginning``; dropping
    ``instructions`` silently loses the system prompt. A mid-conversation developer message may
    join the system message or go as a user message, never as a second system message.
    """
    request, chat = _gate(ctx, "translation.system_message")
    msgs = _messages(chat)
    for i, m in enumerate(msgs):
        if m.get("role") == "developer":
            yield Issue(f"messages[{i}] has role `developer`, which chat upstreams reject or mis-template", pointer=f"/messages/{i}/role", expected="system", actual="developer")
    systems = [i for i, m in enumerate(msgs) if m.get("role") == "system"]
    for i in systems[1:]:
        yield Issue(f"a second system message at messages[{i}] (the first is messages[{systems[0]}])", pointer=f"/messages/{i}/role", actual="system")
    if systems and systems[0] != 0:
        yield Issue(f"the system message is messages[{systems[0]}], not the first", pointer=f"/messages/{systems[0]}")
    items = _items(request)
    leading, mid = _system_split(items)
    instructions = request.get("instructions")
    want = ([[instructions]] if isinstance(instructions, str) and instructions else []) + leading
    sys_text = "\n".join("\n".join(_chat_text(msgs[i].get("content"))[0]) for i in systems)
    sys_text += "\n" + "\n".join("\n".join(_chat_text(m.get("content"))[0]) for m in msgs if m.get("role") == "developer")
    flat = [p for group in want for p in group]
    if flat:
        if not systems and not any(m.get("role") == "developer" for m in msgs):
            yield Issue("the request has instructions or leading system/developer messages; the upstream request has no system message", pointer="/messages/0", expected=_clip("\n".join(flat)), actual=msgs[0].get("role") if msgs else None)
        else:
            missing = _contains_in_order(sys_text, flat)
            if missing is not None:
                yield Issue("the system message lacks (or reorders) a piece of the instructions / leading system and developer messages", pointer="/messages/0/content", expected=_clip(missing), actual=_clip(sys_text.strip()))
    user_texts = ["\n".join(_chat_text(m.get("content"))[0]) for m in msgs if m.get("role") == "user"]
    for index, pieces in mid:
        text = "\n".join(p for p in pieces if p)
        if not text:
            continue
        if _contains_in_order(sys_text, [p for p in pieces if p]) is None:
            continue
        if any(same_text(pieces, [u]) for u in user_texts):
            continue
        yield Issue(f"the mid-conversation {items[index].get('role')} message input[{index}] is neither in the system message nor sent as a user message", pointer=f"/input/{index}", expected=_clip(text))


def _conversation(items: list[dict[str, Any]]) -> list[_Entry]:
    out = []
    for i, item in enumerate(items):
        if _kind(item) != "message":
            continue
        role = item.get("role")
        if role == "user":
            out.append(_Entry("user", _pieces(item.get("content")), _media(item.get("content")), f"input[{i}]"))
        elif role == "assistant":
            pieces = _pieces(item.get("content"))
            if any(pieces):
                out.append(_Entry("assistant", pieces, 0, f"input[{i}]"))
    return out


def _chat_conversation(msgs: list[dict[str, Any]], mid: list[list[str]]) -> list[_Entry]:
    out = []
    for i, m in enumerate(msgs):
        role = m.get("role")
        pieces, media = _chat_text(m.get("content"))
        if role == "user":
            if mid and any(same_text(p, pieces) for p in mid) and not media:
                continue  # a mid-conversation developer message sent as a user message
            out.append(_Entry("user", pieces, media, f"messages[{i}]"))
        elif role == "assistant" and any(pieces):
            out.append(_Entry("assistant", pieces, 0, f"messages[{i}]"))
    return out


@check("translation.messages", classes=("Q2", "Q3"), needs_stream=False, needs_upstream=True)
def messages(ctx: Context) -> Iterator[Issue]:
    """The user and assistant messages go upstream in the input's order with their text (and images and files) intact.

    ``input`` as a string, items with or without ``type``, content as a string or parts,
    ``input_text``/``output_text``/``refusal`` parts in replayed assistant turns: all are the same
    conversation. A proxy that keeps only the last user message (ccproxy: an infinite tool loop),
    reorders, or drops an image answers a different conversation.
    """
    request, chat = _gate(ctx, "translation.messages")
    items = _items(request)
    _, mid = _system_split(items)
    want = _conversation(items)
    got = _chat_conversation(_messages(chat), [p for _, p in mid])
    for w, g in zip_longest(want, got):
        if w is None:
            yield Issue(f"an extra {g.role} message upstream at {g.where} that the input does not have", pointer=g.pointer, actual=g.show())
            return
        if g is None:
            yield Issue(f"{w.where} ({w.role}) is missing upstream", pointer=w.pointer, expected=w.show())
            return
        if w.role != g.role or not same_text(w.pieces, g.pieces) or w.media != g.media:
            what = "role" if w.role != g.role else ("text" if not same_text(w.pieces, g.pieces) else "images/files")
            yield Issue(f"{w.where} went upstream as {g.where} with a different {what}", pointer=g.pointer, expected=w.show(), actual=g.show())
            return


def _call_groups(items: list[dict[str, Any]]) -> list[list[tuple[int, dict[str, Any]]]]:
    """Runs of consecutive function_call items (reasoning items may sit between them)."""
    groups: list[list[tuple[int, dict[str, Any]]]] = []
    current: list[tuple[int, dict[str, Any]]] = []
    for i, item in enumerate(items):
        kind = _kind(item)
        if kind == "function_call":
            current.append((i, item))
        elif kind != "reasoning" and current:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


@check("translation.tool_history", classes=("Q2",), needs_stream=False, needs_upstream=True)
def tool_history(ctx: Context) -> Iterator[Issue]:
    """``function_call`` items become ONE assistant message with all their ``tool_calls`` (ids = ``call_id``), each output a ``tool`` message right after it.

    Chat upstreams validate the pairing: DeepSeek ``An assistant message with 'tool_calls' must be
    followed by tool messages responding to each 'tool_call_id'``, Gemini ``Missing
    corresponding tool call for tool response message``, NIM ``missing field `tool_call_id```,
    templates ``no previous assistant message with a tool call``. Outputs returned out of order
    are fine as long as all of them follow their assistant message.
    """
    request, chat = _gate(ctx, "translation.tool_history")
    items = _items(request)
    msgs = _messages(chat)
    for i, m in enumerate(msgs):
        if m.get("role") == "tool" and not (isinstance(m.get("tool_call_id"), str) and m["tool_call_id"]):
            yield Issue(f"messages[{i}] is a tool message without tool_call_id", pointer=f"/messages/{i}/tool_call_id")
    holder: dict[str, int] = {}
    for i, m in enumerate(msgs):
        for tc in _list(m.get("tool_calls")) if m.get("role") == "assistant" else []:
            if isinstance(tc, dict) and isinstance(tc.get("id"), str):
                holder.setdefault(tc["id"], i)
    for group in _call_groups(items):
        ids = [str(item.get("call_id")) for _, item in group]
        places = {holder.get(cid) for cid in ids}
        if None in places:
            missing = [cid for cid in ids if cid not in holder]
            yield Issue(f"function_call input[{group[0][0]}] ({missing[0]}) has no assistant tool_call upstream", pointer=f"/input/{group[0][0]}", expected=ids, actual=sorted(holder))
            continue
        if len(places) > 1:
            yield Issue(
                f"the {len(ids)} consecutive function calls from input[{group[0][0]}] went upstream as {len(places)} assistant messages; they belong in one",
                pointer=f"/messages/{min(p for p in places if p is not None)}",
                expected=f"one assistant message with tool_calls {ids}",
                actual=sorted(p for p in places if p is not None),
            )
            continue
        at = places.pop()
        assert at is not None
        calls = {tc["id"]: tc for tc in _list(msgs[at].get("tool_calls")) if isinstance(tc, dict) and isinstance(tc.get("id"), str)}
        for index, item in group:
            tc = calls[str(item.get("call_id"))]
            found = tc.get("function")
            fn: dict[str, Any] = found if isinstance(found, dict) else {}
            if fn.get("name") != item.get("name"):
                yield Issue(f"tool call {item.get('call_id')}: name differs from input[{index}]", pointer=f"/messages/{at}/tool_calls", expected=item.get("name"), actual=fn.get("name"))
            args = item.get("arguments") if isinstance(item.get("arguments"), str) else "{}"
            if not isinstance(fn.get("arguments"), str) or not json_equal(fn["arguments"], args or "{}"):
                yield Issue(f"tool call {item.get('call_id')}: arguments differ from input[{index}]", pointer=f"/messages/{at}/tool_calls", expected=_clip(args), actual=_clip(fn.get("arguments")))
        # the outputs of this group's calls: one tool message each, in the block right after it
        block_end = at + 1
        while block_end < len(msgs) and msgs[block_end].get("role") == "tool":
            block_end += 1
        block = {str(msgs[k].get("tool_call_id")): k for k in range(at + 1, block_end)}
        for index, item in enumerate(items):
            if _kind(item) != "function_call_output" or item.get("call_id") not in ids:
                continue
            cid = str(item.get("call_id"))
            where = [k for k, m in enumerate(msgs) if m.get("role") == "tool" and m.get("tool_call_id") == cid]
            if not where:
                yield Issue(f"function_call_output input[{index}] ({cid}) has no tool message upstream", pointer=f"/input/{index}")
            elif cid not in block:
                yield Issue(f"the tool message for {cid} (messages[{where[0]}]) does not directly follow its assistant message (messages[{at}])", pointer=f"/messages/{where[0]}", expected=f"messages[{at + 1}..]", actual=f"messages[{where[0]}]")
            else:
                text, _ = _chat_text(msgs[block[cid]].get("content"))
                if not same_text(_pieces(item.get("output")), text):
                    yield Issue(f"the tool message for {cid} does not carry input[{index}]'s output", pointer=f"/messages/{block[cid]}/content", expected=_clip("\n".join(_pieces(item.get("output")))), actual=_clip("\n".join(text)))


def _nested_names(tools: list[Any]) -> set[str]:
    names = set()
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        if isinstance(tool.get("name"), str):
            names.add(tool["name"])
        for inner in _list(tool.get("tools")):
            if isinstance(inner, dict) and isinstance(inner.get("name"), str):
                names.add(inner["name"])
    return names


@check("translation.tools", classes=("T5", "Q4"), needs_stream=False, needs_upstream=True)
def tools(ctx: Context) -> Iterator[Issue]:
    """Every function tool goes upstream as a chat tool with the same name, description, parameters and strictness; nothing else goes as-is.

    ``custom`` (Codex's ``apply_patch``), ``web_search``, ``tool_search`` and ``namespace`` tools
    have no chat form: a proxy may drop them (or flatten a namespace's functions), but must not
    forward them, since chat upstreams reject them (LM Studio: ``Invalid discriminator value.
    Expected 'function' | 'mcp'``); a dropped or mangled function tool cannot be called.
    """
    request, chat = _gate(ctx, "translation.tools")
    req_tools = _list(request.get("tools"))
    chat_tools = _list(chat.get("tools"))
    by_name: dict[str, dict[str, Any]] = {}
    known = _nested_names(req_tools)
    for i, ct in enumerate(chat_tools):
        fn = ct.get("function") if isinstance(ct, dict) else None
        if not isinstance(ct, dict) or ct.get("type") != "function" or not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            shown = ct.get("type") if isinstance(ct, dict) else ct
            yield Issue(f"tools[{i}] is not a chat function tool ({{type: function, function: {{name, …}}}}): type {shown!r}", pointer=f"/tools/{i}", actual=_clip(json.dumps(ct)[:300]))
            continue
        by_name[fn["name"]] = fn
        if fn["name"] not in known and not any(fn["name"].endswith(n) for n in known):
            yield Issue(f"tools[{i}] {fn['name']!r} is not a tool of the request", pointer=f"/tools/{i}/function/name", actual=fn["name"])
    if request.get("tool_choice") == "none" and not chat_tools:
        return  # tools that may not be called can be left out altogether
    for tool in req_tools:
        if not isinstance(tool, dict) or tool.get("type") != "function":
            continue
        name = tool.get("name")
        fn = by_name.get(str(name))
        if fn is None:
            yield Issue(f"the function tool {name!r} did not go upstream", pointer="/tools", expected=name, actual=sorted(by_name))
            continue
        for key in ("description", "parameters"):
            if tool.get(key) is not None and fn.get(key) != tool[key]:
                yield Issue(f"tool {name!r}: {key} differs from the request's", pointer=f"/tools/{name}/function/{key}", expected=_clip(json.dumps(tool[key])), actual=_clip(json.dumps(fn.get(key))))
        if tool.get("strict") is True and fn.get("strict") is not True:
            yield Issue(f"tool {name!r}: strict: true was not passed on", pointer=f"/tools/{name}/function/strict", expected=True, actual=fn.get("strict"))
        if tool.get("strict") is False and fn.get("strict") not in (False, None):
            yield Issue(f"tool {name!r}: strict: false became {fn.get('strict')!r}", pointer=f"/tools/{name}/function/strict", expected=False, actual=fn.get("strict"))


@check("translation.tool_choice", classes=("Q4",), needs_stream=False, needs_upstream=True)
def tool_choice(ctx: Context) -> Iterator[Issue]:
    """``tool_choice`` (auto, none, required, a named function) and ``parallel_tool_calls`` go upstream in chat form; neither without tools.

    A named choice becomes ``{"type": "function", "function": {"name": …}}``; dropping
    ``required`` or a name lets the model answer in text where the client forced a tool, and
    dropping ``parallel_tool_calls: false`` gives a client that runs one tool at a time several.
    OpenAI rejects ``tool_choice`` and ``parallel_tool_calls`` without ``tools``.
    """
    request, chat = _gate(ctx, "translation.tool_choice")
    has_tools = bool(chat.get("tools"))
    if not has_tools:
        for key in ("tool_choice", "parallel_tool_calls"):
            if chat.get(key) is not None:
                yield Issue(f"`{key}` goes upstream without `tools` (OpenAI: only allowed when tools are specified)", pointer=f"/{key}", actual=chat.get(key))
        return
    want = request.get("tool_choice")
    got = chat.get("tool_choice")
    expected: Any
    if want in (None, "auto"):
        ok, expected = got in (None, "auto"), "auto (or absent)"
    elif want in ("none", "required"):
        ok, expected = got == want, want
    elif isinstance(want, dict) and want.get("type") == "function" and isinstance(want.get("name"), str):
        expected = {"type": "function", "function": {"name": want["name"]}}
        ok = got == expected
    else:
        ok, expected = True, None
    if not ok:
        yield Issue(f"tool_choice {want!r} went upstream as {got!r}", pointer="/tool_choice", expected=expected, actual=got)
    ptc = request.get("parallel_tool_calls")
    if ptc is False and chat.get("parallel_tool_calls") is not False:
        yield Issue("parallel_tool_calls: false was not passed on", pointer="/parallel_tool_calls", expected=False, actual=chat.get("parallel_tool_calls"))
    if ptc is True and chat.get("parallel_tool_calls") not in (True, None):
        yield Issue("parallel_tool_calls: true became false", pointer="/parallel_tool_calls", expected=True, actual=chat.get("parallel_tool_calls"))


@check("translation.sampling", classes=("Q4",), needs_stream=False, needs_upstream=True)
def sampling(ctx: Context) -> Iterator[Issue]:
    """``max_output_tokens`` becomes ``max_tokens`` (or ``max_completion_tokens``); ``temperature`` and ``top_p`` go as given.

    A dropped token limit lets a runaway answer bill without bound; a dropped temperature
    changes every answer of a client that pinned it.
    """
    request, chat = _gate(ctx, "translation.sampling")
    limit = request.get("max_output_tokens")
    if limit is not None and limit not in (chat.get("max_tokens"), chat.get("max_completion_tokens")):
        yield Issue("max_output_tokens did not become max_tokens or max_completion_tokens", pointer="/max_tokens", expected=limit, actual={k: chat.get(k) for k in ("max_tokens", "max_completion_tokens")})
    for key in ("temperature", "top_p"):
        if request.get(key) is not None and chat.get(key) != request[key]:
            yield Issue(f"{key} {request[key]!r} went upstream as {chat.get(key)!r}", pointer=f"/{key}", expected=request[key], actual=chat.get(key))


@check("translation.response_format", classes=("Q5",), needs_stream=False, needs_upstream=True)
def response_format(ctx: Context) -> Iterator[Issue]:
    """``text.format`` becomes chat ``response_format``: json_schema with its name, schema and strictness; json_object as is; text as nothing.

    Dropped, structured output is silently unenforced: ``responses.parse(text_format=…)`` and the
    Agents SDK's ``output_type`` get prose back and fail to parse it.
    """
    request, chat = _gate(ctx, "translation.response_format")
    text = request.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    got = chat.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind in (None, "text"):
        if got is not None and not (isinstance(got, dict) and got.get("type") == "text"):
            yield Issue("response_format goes upstream although text.format is plain text", pointer="/response_format", expected=None, actual=got)
        return
    assert isinstance(fmt, dict)
    if kind == "json_object":
        if not (isinstance(got, dict) and got.get("type") == "json_object"):
            yield Issue("text.format json_object did not become response_format json_object", pointer="/response_format", expected={"type": "json_object"}, actual=got)
        return
    if kind != "json_schema":
        return
    js = got.get("json_schema") if isinstance(got, dict) and got.get("type") == "json_schema" else None
    if not isinstance(js, dict):
        yield Issue("text.format json_schema did not become response_format json_schema", pointer="/response_format", expected={"type": "json_schema", "json_schema": {"name": fmt.get("name"), "schema": "…"}}, actual=got)
        return
    for key in ("name", "schema"):
        if js.get(key) != fmt.get(key):
            yield Issue(f"response_format.json_schema.{key} differs from text.format.{key}", pointer=f"/response_format/json_schema/{key}", expected=_clip(json.dumps(fmt.get(key))), actual=_clip(json.dumps(js.get(key))))
    if fmt.get("strict") is not None and js.get("strict") != fmt["strict"]:
        yield Issue("response_format.json_schema.strict differs from text.format.strict", pointer="/response_format/json_schema/strict", expected=fmt["strict"], actual=js.get("strict"))


@check("translation.stream_usage", classes=("U1",), needs_stream=False, needs_upstream=True)
def stream_usage(ctx: Context) -> Iterator[Issue]:
    """A streaming chat request asks for usage: ``stream_options: {"include_usage": true}``.

    Without it OpenAI-compatible upstreams send no usage chunk at all, and the response's usage
    is zero or missing: no context counter, no cost (9router, cc-switch).
    """
    _, chat = _gate(ctx, "translation.stream_usage")
    if chat.get("stream") is not True:
        return
    opts = chat.get("stream_options")
    if not (isinstance(opts, dict) and opts.get("include_usage") is True):
        yield Issue("a streaming chat request without stream_options.include_usage", pointer="/stream_options", expected={"include_usage": True}, actual=opts)


@check("translation.no_responses_fields", classes=("Q4",), needs_stream=False, needs_upstream=True)
def no_responses_fields(ctx: Context) -> Iterator[Issue]:
    """Responses-only fields (``input``, ``instructions``, ``store``, ``include``, ``previous_response_id``, ``prompt_cache_key``, ``text``, ``max_output_tokens``, …) do not leak upstream.

    Strict upstreams (vLLM, llama.cpp, several gateways) reject unknown fields with a 400 the
    client cannot fix; others ignore them silently, so a leaked ``max_output_tokens`` is a limit
    that is not applied.
    """
    _, chat = _gate(ctx, "translation.no_responses_fields")
    for key in RESPONSES_ONLY:
        if key in chat:
            yield Issue(f"the Responses-only field `{key}` went upstream", pointer=f"/{key}", actual=_clip(json.dumps(chat[key])))


@check("translation.reasoning_history", classes=("RS2",), needs_stream=False, needs_upstream=True)
def reasoning_history(ctx: Context) -> Iterator[Issue]:
    """Replayed reasoning goes back upstream as the next assistant message's ``reasoning_content`` (where the cassette requires it).

    Thinking-mode upstreams reject a tool-call turn without it: DeepSeek ``The reasoning_content
    in the thinking mode must be passed back to the API``; Kimi ``reasoning_content is missing in
    assistant tool call message``. Applies to turns whose cassette lists ``reasoning_content`` in
    ``expect.translation.require``.
    """
    request, chat = _gate(ctx, "translation.reasoning_history")
    turn = ctx.turn
    assert turn is not None
    if "reasoning_content" not in turn.translation.get("require", []):
        return
    items = _items(request)
    msgs = _messages(chat)
    for i, item in enumerate(items):
        if _kind(item) != "reasoning":
            continue
        pieces = _reasoning_pieces(item)
        if not any(pieces):
            continue
        target = next((items[j] for j in range(i + 1, len(items)) if _kind(items[j]) in ("function_call", "message")), None)
        if target is None:
            continue
        if _kind(target) == "function_call":
            at = next((k for k, m in enumerate(msgs) if any(isinstance(tc, dict) and tc.get("id") == target.get("call_id") for tc in _list(m.get("tool_calls")))), None)
        else:
            want = _pieces(target.get("content"))
            at = next((k for k, m in enumerate(msgs) if m.get("role") == "assistant" and same_text(want, _chat_text(m.get("content"))[0])), None)
        if at is None:
            continue  # its assistant message is missing: translation.tool_history / messages report it
        got = msgs[at].get("reasoning_content")
        if not isinstance(got, str) or not same_text(pieces, [got]):
            yield Issue(f"the reasoning of input[{i}] is not the reasoning_content of the assistant message it precedes (messages[{at}])", pointer=f"/messages/{at}/reasoning_content", expected=_clip("\n\n".join(pieces)), actual=_clip(got))


def _reasoning_pieces(item: dict[str, Any]) -> list[str]:
    """A replayed reasoning item's readable text: its content (a string or parts), else its summary."""
    content = item.get("content")
    if isinstance(content, str):
        return [content]
    for key in ("content", "summary"):
        parts = item.get(key)
        texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str) and p["text"]] if isinstance(parts, list) else []
        if texts:
            return texts
    return []


def _param_of(body: bytes) -> Any:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    err = data.get("error") if isinstance(data, dict) else None
    return err.get("param") if isinstance(err, dict) else None


@check("translation.previous_response_id", classes=("Q7",), needs_stream=False, needs_upstream=True)
def previous_response_id(ctx: Context) -> Iterator[Issue]:
    """``previous_response_id`` is honoured (the earlier turn goes upstream) or refused with a 4xx naming it, never silently ignored.

    A stateless proxy cannot continue a stored response; it must say so (400, ``param:
    "previous_response_id"``) so the client resends the full history. A proxy that answers 200
    without the earlier turn has the model answer without its context (Locus, metapi, LlamaEdge).
    """
    ex = ctx.exchange
    request = ex.request
    if not request.get("previous_response_id"):
        return
    if ctx.turn is None:
        raise Skip("no cassette turn to compare with")
    if ex.status is not None and 400 <= ex.status < 500:
        param = _param_of(ex.body)
        if param != "previous_response_id":
            yield Issue(f"HTTP {ex.status} refusing previous_response_id, but error.param is {param!r}", pointer="/error/param", expected="previous_response_id", actual=param)
        return
    if ex.status is None or not 200 <= ex.status < 300:
        return
    _, chat = _gate(ctx, "translation.previous_response_id")
    cassette, turn = ctx.cassette, ctx.turn
    if cassette is None or turn.index == 0:
        return
    before = cassette.turns[turn.index - 1]
    answered = before.upstream[0] if before.upstream else None
    if ctx.previous and ctx.previous[-1].upstream_requests and before.upstream:
        index = ctx.previous[-1].upstream_requests[-1].get("interaction")
        if isinstance(index, int) and 0 <= index < len(before.upstream):
            answered = before.upstream[index]  # what the earlier turn was really answered with
    msgs = _messages(chat)
    texts = ["\n".join(_chat_text(m.get("content"))[0]).strip() for m in msgs]
    missing = []
    if before.match_key and before.match_key not in texts:
        missing.append(f"the earlier turn's last message {_clip(before.match_key, 80)!r}")
    if answered is not None:
        ids = {tc["id"] for m in msgs for tc in _list(m.get("tool_calls")) if isinstance(tc, dict) and isinstance(tc.get("id"), str)}
        for call in expect(answered).tool_calls:
            if call.id and call.id not in ids:
                missing.append(f"its tool call {call.id}")
    if missing:
        yield Issue(
            "previous_response_id was accepted (HTTP 200) but the upstream request lacks " + ", ".join(missing) + ": the earlier turn was not (fully) restored",
            pointer="/messages",
            expected="the earlier turn's input and output",
            actual=[{"role": m.get("role"), "text": _clip(t, 60)} for m, t in zip(msgs, texts, strict=False)],
        )
