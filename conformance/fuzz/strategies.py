"""Hypothesis strategies for upstream Chat Completions streams, in the shapes real backends send.

Each generated stream imitates one backend of ``shared/upstream-shapes.md`` and stays valid for
it: the envelope fields, where the role, usage and finish reason go, how tool calls are
fragmented, which reasoning field is used, which ``[DONE]`` and comment lines appear, and how the
stream may fail. The semantic content (text, refusal, reasoning, tool calls, finish reason,
usage) is drawn first and then rendered by the backend, so shrinking removes content rather than
breaking shapes. A separate strategy cuts the bytes into network reads (one per event, 1-byte
reads, a cut inside every multi-byte character, random cut points).

:func:`cassettes` combines a stream with a matching Responses request (stream or not, tools,
``tool_choice``, ``reasoning``, ``text.format``, a tool-loop continuation) into a
:class:`~conformance.cassette.Cassette` built in memory.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from conformance.cassette import Cassette, Interaction, Turn, parse_cassette, request_match_key
from conformance.expected import expect_chunks

__all__ = [
    "BACKENDS",
    "GeneratedStream",
    "Scenario",
    "StreamContent",
    "ToolCall",
    "cassettes",
    "reads",
    "render",
    "scenarios",
    "streams",
]

Draw = Callable[[st.SearchStrategy[Any]], Any]

# -- characters --------------------------------------------------------------------------------
_CJK = "你好世界中文字符漢字日本語テキスト한국어"
_EMOJI = ["😀", "🎉", "👍🏽", "👨‍👩‍👧", "🇵🇹", "❤️", "🧪", "𝄞"]
_COMBINING = ["e\u0301", "a\u0308", "n\u0303", "\u0915\u094d\u0937", "o\u0328\u0301"]
_CHARS = st.one_of(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    st.sampled_from(list(_CJK)),
    st.sampled_from(_EMOJI),
    st.sampled_from(_COMBINING),
    st.sampled_from(["\n", "\t", " ", "\"", "\\", "\u2028", "\x00", "\r"]),
    st.characters(codec="utf-8"),
)
_TEXT = st.lists(_CHARS, max_size=10).map("".join)
_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
_NAME = st.builds(lambda a, b: f"{a}_{b}", _WORD, _WORD) | _WORD

# -- backends ----------------------------------------------------------------------------------
TOOL_STYLES = (
    "standard",  # id/name first with arguments "", then argument fragments (OpenAI)
    "whole",  # the whole call in one delta (Ollama, Mistral, Groq, Gemini)
    "first_has_args",  # the first delta already carries an argument fragment (llama.cpp)
    "no_args_key",  # no `arguments` key first, trailing arguments "" (vLLM, Foundry)
    "name_late",  # id first, the name in a later delta
    "name_split",  # the name split across deltas
    "args_before_name",  # argument fragments before the name
    "id_only",  # an id-only delta, then name, then arguments
)


@dataclass(frozen=True)
class Backend:
    """What one backend's streams look like (upstream-shapes.md section in ``based_on``)."""

    name: str
    based_on: str
    model: str
    reasoning: tuple[str, ...] = ()
    refusal: bool = False
    tool_styles: tuple[str, ...] = ("standard",)
    index_modes: tuple[str, ...] = ("index",)
    finishes: tuple[str | None, ...] = ("stop", "length", None)
    usage_modes: tuple[str, ...] = ("none", "separate")
    errors: tuple[str, ...] = ()
    done: tuple[str, ...] = ("data: [DONE]\n\n",)
    comments: tuple[str, ...] = ()
    role_every_delta: bool = False
    sort_keys: bool = False
    spaced_json: bool = False
    data_prefix: str = "data: "


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend(
            "openai", "§1 (gpt-4o, gpt-5)", "gpt-4o", refusal=True,
            finishes=("stop", "length", "content_filter", None),
            errors=("openai",),
        ),
        Backend(
            "azure", "§2 (v1 endpoint, async filter, Foundry)", "gpt-5-mini", refusal=True,
            tool_styles=("standard", "no_args_key"),
            finishes=("stop", "length", "content_filter", None),
            sort_keys=True,
        ),
        Backend(
            "deepseek", "§3 (deepseek-chat, deepseek-reasoner)", "deepseek-reasoner",
            reasoning=("reasoning_content",), usage_modes=("on_finish",),
            comments=(": keep-alive\n\n",),
        ),
        Backend(
            "vllm", "§4 (0.21, continuous usage, reasoning)", "Qwen/Qwen3-8B", reasoning=("reasoning",),
            tool_styles=("standard", "no_args_key"),
            usage_modes=("none", "separate", "every"), errors=("vllm",),
        ),
        Backend(
            "ollama", "§5 (legacy whole tool call, 2026 format)", "qwen3:8b", reasoning=("reasoning",),
            tool_styles=("whole",), usage_modes=("on_finish", "separate"), errors=("ollama",),
            role_every_delta=True,
        ),
        Backend(
            "llamacpp", "§6 (b7010, old error field)", "", reasoning=("reasoning_content",),
            tool_styles=("first_has_args", "standard"), errors=("llamacpp",),
            done=("data: [DONE]\n\n", "data: [DONE]\n", "data: [DONE]"),
        ),
        Backend(
            "mistral", "§7a (one chunk, no index)", "mistral-small-latest",
            tool_styles=("whole",), index_modes=("none",), usage_modes=("on_finish",),
        ),
        Backend(
            "gemini", "§7j (coarse chunks, no index, stop after tool calls)", "gemini-2.5-flash",
            tool_styles=("whole",), index_modes=("none",),
            finishes=("stop", "length", "content_filter", None),
        ),
        Backend(
            "groq", "§7b (x_groq, usage twice)", "llama-3.3-70b-versatile",
            tool_styles=("whole", "standard"), usage_modes=("twice", "on_finish"), errors=("openai",),
        ),
        Backend(
            "openrouter", "§7h (comments, duplicated finish, error chunk)", "anthropic/claude-4.5-haiku",
            reasoning=("reasoning",),
            tool_styles=("standard", "name_late", "name_split", "args_before_name", "id_only"),
            index_modes=("index", "interleaved"),
            finishes=("stop", "length", "error", None),
            usage_modes=("dup_finish",), errors=("openrouter",),
            comments=(": OPENROUTER PROCESSING\n\n", ":\n\n"), role_every_delta=True,
        ),
        Backend(
            "mlx", "catalog T2 (vmlx PR #244): id-only delta, the name split, vLLM-style envelope",
            "mlx-community/Qwen3-Coder-30B-A3B-4bit",
            tool_styles=("name_split", "id_only", "name_late", "standard"),
        ),
        Backend(
            "dashscope", "§7l (reasoning_content null, finish on content delta)", "qwen-plus",
            reasoning=("reasoning_content",), usage_modes=("separate",),
        ),
        Backend(
            "deepseek-r1-host", "§9 quirks 28, 39 (data: without a space, spaced JSON)", "deepseek-r1",
            reasoning=("reasoning_content",), usage_modes=("on_finish", "none"),
            data_prefix="data:", spaced_json=True, done=("data:[DONE]\n\n",),
        ),
        Backend(
            "gateway", "§7k (id \"\", no [DONE], trailing choice) and catalog T2/RS1 (fragmented headers, thinking, index reused)",
            "claude-opus-4", reasoning=("thinking",),
            tool_styles=("name_split", "standard", "whole", "name_late", "id_only", "args_before_name"),
            index_modes=("reused", "index", "interleaved"),
            usage_modes=("on_finish",), done=("",),
        ),
    )
}
_BACKEND_NAMES = tuple(BACKENDS)


# -- content -------------------------------------------------------------------------------------
@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str
    style: str
    arg_pieces: list[str]
    name_pieces: list[str]


@dataclass
class StreamContent:
    """The truth a stream carries, before a backend renders it."""

    reasoning: list[str] = field(default_factory=list)
    reasoning_field: str = "reasoning_content"
    text: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    index_mode: str = "index"
    finish: str | None = "stop"
    usage: dict[str, Any] | None = None
    usage_mode: str = "none"
    error: str | None = None  # error shape, cutting the stream after `error_at` deltas
    error_at: int = 0
    error_message: str = "upstream failed"
    cut_at: int | None = None  # frames kept before the connection drops
    done: str = "data: [DONE]\n\n"
    comments: list[tuple[int, str]] = field(default_factory=list)
    http_error: tuple[int, str] | None = None


@dataclass
class GeneratedStream:
    """One upstream answer: the backend it imitates, its SSE frames and the network reads."""

    backend: str
    content: StreamContent
    frames: list[str]
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "text/event-stream"})
    end: str = "clean"
    reads: list[bytes] = field(default_factory=list)
    read_mode: str = "events"

    @property
    def body(self) -> bytes:
        return "".join(self.frames).encode("utf-8")


def _split(draw: Draw, s: str, max_pieces: int = 5) -> list[str]:
    """``s`` cut at drawn character positions (no empty pieces unless ``s`` is empty)."""
    if len(s) < 2:
        return [s]
    cuts = draw(st.lists(st.integers(1, len(s) - 1), max_size=max_pieces - 1, unique=True))
    cuts = sorted(cuts)
    out, last = [], 0
    for c in [*cuts, len(s)]:
        out.append(s[last:c])
        last = c
    return out


def _name_pieces(draw: Draw, name: str) -> list[str]:
    """The name split so that no later piece equals what came before (the repeated-name rule)."""
    cut = draw(st.integers(1, len(name) - 1))
    pieces = [name[:cut], name[cut:]]
    so_far = ""
    for p in pieces:
        if so_far and p == so_far:
            return [name]
        so_far += p
    return pieces


def _one_in(n: int) -> st.SearchStrategy[bool]:
    """True about once in ``n`` draws: ``integers(0, n - 1) == 0`` is far likelier under
    hypothesis, which favours the bounds (a cut in a fifth of all streams hid the rest)."""
    return st.sampled_from([False] * (n - 1) + [True])


_ID_FORMATS: list[Callable[[int, str], str]] = [
    lambda n, r: f"call_{r}{n}",  # OpenAI call_<24>
    lambda n, r: f"call_{n}_{r}-4b9b-98cd",  # DeepSeek call_0_<uuid>
    lambda n, r: f"chatcmpl-tool-{r}{n}",  # vLLM
    lambda n, r: f"functions.tool:{n}",  # Kimi
    lambda n, r: f"toolu_bdrk_{r}{n}",  # Bedrock via OpenRouter
    lambda n, r: str(193629320 + n),  # numeric string
]


@st.composite
def _arguments(draw: Draw) -> str:
    kind = draw(st.sampled_from(["object", "empty-object", "empty"]))
    if kind == "empty":
        return ""
    if kind == "empty-object":
        return "{}"
    value = draw(
        st.dictionaries(
            _WORD,
            st.one_of(_TEXT, st.integers(-1000, 10**6), st.booleans(), st.none(), st.lists(_WORD, max_size=3)),
            min_size=1,
            max_size=3,
        )
    )
    return json.dumps(value, ensure_ascii=draw(st.booleans()))


@st.composite
def _tool_calls(draw: Draw, backend: Backend, index_mode: str) -> list[ToolCall]:
    n = draw(st.integers(1, 3))
    styles = backend.tool_styles
    rand = draw(st.sampled_from(["Pt7xK2mQ9vLw3nRb8sYd4F", "a6dea19b44904", "x"]))
    id_format = draw(st.sampled_from(_ID_FORMATS))
    names = draw(st.lists(_NAME, min_size=n, max_size=n, unique=True))
    calls = []
    for i in range(n):
        style = draw(st.sampled_from(styles))
        args = draw(_arguments())
        empty_id = index_mode in ("index", "interleaved") and draw(st.integers(0, 15)) == 0
        call_id = "" if empty_id else id_format(i, rand)
        if style == "name_split" and len(names[i]) < 2:
            style = "standard"
        calls.append(
            ToolCall(
                id=call_id,
                name=names[i],
                arguments=args,
                style=style,
                arg_pieces=_split(draw, args) if style != "whole" else [args],
                name_pieces=_name_pieces(draw, names[i]) if style == "name_split" else [names[i]],
            )
        )
    return calls


@st.composite
def _usage(draw: Draw, backend: Backend) -> dict[str, Any]:
    prompt = draw(st.integers(0, 5000))
    completion = draw(st.integers(0, 5000))
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    shape = draw(st.sampled_from(["plain", "openai", "deepseek", "xai", "null-details"]))
    if shape == "openai":
        usage["prompt_tokens_details"] = {"cached_tokens": draw(st.integers(0, prompt)), "audio_tokens": 0}
        usage["completion_tokens_details"] = {
            "reasoning_tokens": draw(st.integers(0, completion)),
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        }
    elif shape == "deepseek":
        hit = draw(st.integers(0, prompt))
        usage.update(prompt_cache_hit_tokens=hit, prompt_cache_miss_tokens=prompt - hit)
        usage["prompt_tokens_details"] = {"cached_tokens": hit}
    elif shape == "xai":
        usage["total_tokens"] = prompt + completion + draw(st.integers(1, 300))
        usage["completion_tokens_details"] = {"reasoning_tokens": draw(st.integers(0, 300))}
    elif shape == "null-details":
        usage["prompt_tokens_details"] = None
        usage["completion_tokens_details"] = None
    return usage


@st.composite
def stream_contents(draw: Draw, backend: Backend) -> StreamContent:
    """The semantic content of one stream, valid for ``backend``."""
    c = StreamContent()
    # An HTTP error before the stream has no content: drawn first, so that content drawn for a
    # stream is never wasted on an error answer.
    if draw(st.integers(0, 24)) == 0:
        c.http_error = draw(
            st.sampled_from(
                [
                    (400, '{"error":{"message":"context length exceeded","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}'),
                    (429, '{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}'),
                    (404, '{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","param":null,"code":404}'),
                    (500, '{"error":{"code":500,"message":"Internal error","type":"server_error"}}'),
                    (503, '{"error":{"code":503,"message":"Provider overloaded","metadata":{}}}'),
                ]
            )
        )
        return c
    if backend.reasoning and draw(st.booleans()):
        c.reasoning_field = draw(st.sampled_from(backend.reasoning))
        c.reasoning = draw(st.lists(_TEXT, min_size=1, max_size=4))
    if backend.refusal and draw(st.integers(0, 5)) == 0:
        c.refusal = draw(st.lists(_TEXT, min_size=1, max_size=3))
    else:
        c.text = draw(st.lists(_TEXT, max_size=6))
    if not c.refusal and draw(st.booleans()):  # a refusal is the whole answer: no tool calls
        c.index_mode = draw(st.sampled_from(backend.index_modes))
        c.calls = draw(_tool_calls(backend, c.index_mode))
    finishes = list(backend.finishes)
    if c.calls:
        # gemini reports "stop" after tool calls (quirk 18); the rest say tool_calls
        finishes = ["stop" if backend.name == "gemini" else "tool_calls", *[f for f in finishes if f != "stop"]]
    c.finish = draw(st.sampled_from(finishes))
    if c.finish == "error":
        c.error = "openrouter"
    c.usage_mode = draw(st.sampled_from(backend.usage_modes))
    if c.usage_mode != "none":
        c.usage = draw(_usage(backend))
    if backend.errors and c.error is None and draw(st.integers(0, 9)) == 0:
        c.error = draw(st.sampled_from(backend.errors))
        c.error_at = draw(st.integers(0, 8))
        c.error_message = "upstream: " + draw(_TEXT)
        c.finish = None
    c.done = draw(st.sampled_from(backend.done))
    if draw(_one_in(12)):
        c.cut_at = draw(st.integers(0, 12))
    if backend.comments:
        c.comments = draw(st.lists(st.tuples(st.integers(0, 12), st.sampled_from(backend.comments)), max_size=3))
    return c


# -- rendering -------------------------------------------------------------------------------------
def _fragments(call: ToolCall, i: int, index_mode: str) -> list[dict[str, Any]]:
    """One call's tool-call deltas in its fragmentation style (``index`` set by the caller)."""
    head: dict[str, Any] = {"id": call.id, "type": "function"}
    rest = [{"function": {"arguments": p}} for p in call.arg_pieces if p]
    style, name, args = call.style, call.name, call.arguments
    if style == "whole":
        return [{**head, "function": {"name": name, "arguments": args}}]
    if style == "first_has_args":
        return [{**head, "function": {"name": name, "arguments": call.arg_pieces[0]}}, *rest[1:]]
    if style == "no_args_key":
        return [{**head, "function": {"name": name}}, *rest, {"function": {"arguments": ""}}]
    if style == "name_late":
        return [{**head, "function": {"arguments": ""}}, {"function": {"name": name}}, *rest]
    if style == "name_split":
        first, *more = call.name_pieces
        return [{**head, "function": {"name": first, "arguments": ""}}, *[{"function": {"name": p}} for p in more], *rest]
    if style == "args_before_name":
        if not rest:
            return [{**head, "function": {"arguments": ""}}, {"function": {"name": name}}]
        return [{**head, **rest[0]}, {"function": {"name": name}}, *rest[1:]]
    if style == "id_only":
        return [dict(head), {"function": {"name": name, "arguments": ""}}, *rest]
    return [{**head, "function": {"name": name, "arguments": ""}}, *rest]


def _tool_deltas(c: StreamContent) -> list[dict[str, Any]]:
    per_call = []
    for i, call in enumerate(c.calls):
        frags = _fragments(call, i, c.index_mode)
        for f in frags:
            if c.index_mode in ("index", "interleaved"):
                f["index"] = i
            elif c.index_mode == "reused":
                f["index"] = 0
        per_call.append(frags)
    ordered: list[dict[str, Any]] = []
    if c.index_mode == "interleaved":
        while any(per_call):
            for frags in per_call:
                if frags:
                    ordered.append(frags.pop(0))
    else:
        for frags in per_call:
            ordered.extend(frags)
    return [{"tool_calls": [f]} for f in ordered]


_CHUNK_ID = {
    "openai": "chatcmpl-D0q8CZXN1uEzngZGkU7FuV92lnXWq",
    "azure": "chatcmpl-DuLYkWnz0OixBh4yGRX57RgoH5wVP",
    "deepseek": "f802c271-d4da-4773-b8b3-b1e4dfbf14f3",
    "vllm": "chatcmpl-b4c1e0a7d6f84c0e9a5b3e2f1d0c9b8a",
    "ollama": "chatcmpl-417",
    "llamacpp": "chatcmpl-6VqTb8f5DRQ2lCdK0aZ4m3Yh1X9ePsWj",
    "mistral": "3a9e0f8d2c1b4a5e8f7d6c5b4a3e2f1d",
    "gemini": "SzpyaZuaHu_WxN8P9M-PgA4",
    "groq": "chatcmpl-7f3a9c2e-1b4d-4e8f-9a6c-5d2e1f0b3a7c",
    "openrouter": "gen-1777319950-BX6MCZRmFqpAw5lUPuhg",
    "dashscope": "chatcmpl-9f61858b-7204-4b9b-98cd-66ada377fe7d",
    "deepseek-r1-host": "3f0c2a51-7d6e-4b8a-9c1d-2e3f4a5b6c7d",
    "gateway": "",
    "mlx": "chatcmpl-b5e1c2d3f4a54b6c8d7e9f0a1b2c3d4e",
}


def _choice(b: Backend, delta: dict[str, Any] | None, finish: str | None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0}
    if delta is not None:
        choice["delta"] = delta
    if b.name in ("openai", "azure", "deepseek", "vllm", "dashscope", "mlx"):
        choice["logprobs"] = None
    if b.name == "azure":
        choice["content_filter_results"] = {}
    if b.name == "vllm":
        choice["stop_reason"] = None
    if b.name == "openrouter":
        choice["native_finish_reason"] = finish
    if finish is not None or b.name not in ("gateway", "deepseek-r1-host"):
        choice["finish_reason"] = finish
    return choice


def _envelope(b: Backend, choices: list[dict[str, Any]], usage: Any = "absent") -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": _CHUNK_ID[b.name],
        "object": "chat.completion.chunk",
        "created": 1782321896,
        "model": b.model,
    }
    if b.name in ("openai", "azure"):
        chunk.update(service_tier="default", system_fingerprint="fp_e6c46296c9" if b.name == "openai" else None)
    if b.name == "deepseek":
        chunk["system_fingerprint"] = "fp_ffc7281d48_prod0820_fp8_kvcache"
    if b.name == "openrouter":
        chunk["provider"] = "Amazon Bedrock"
    if b.name == "llamacpp":
        chunk["system_fingerprint"] = "b7010-7d3d5a5e"
    chunk["choices"] = choices
    if usage != "absent":
        chunk["usage"] = usage
    if b.name == "openai":
        chunk["obfuscation"] = "ZGF"
    if b.name == "groq":
        chunk["x_groq"] = {"id": "req_01k2"}
    return chunk


def _dump(b: Backend, obj: Any) -> str:
    sep = (", ", ": ") if b.spaced_json else (",", ":")
    return json.dumps(obj, separators=sep, sort_keys=b.sort_keys, ensure_ascii=b.name in ("vllm", "llamacpp"))


def render(b: Backend, c: StreamContent) -> tuple[list[str], str]:
    """SSE frames and the end (``clean``/``cut``) of ``c`` as backend ``b`` streams it."""
    deltas: list[dict[str, Any]] = []
    role: dict[str, Any] = {"role": "assistant"}
    if b.name in ("openai", "azure"):
        role.update(content="" if (c.text or c.refusal) else None, refusal=None)
    elif b.name == "deepseek" and c.reasoning:
        role.update(content=None, reasoning_content="")
    elif b.name == "llamacpp":
        role["content"] = None
    if b.name != "gemini":
        deltas.append(role)
    for piece in c.reasoning:
        d: dict[str, Any] = {c.reasoning_field: piece}
        if b.name == "deepseek":
            d["content"] = None
        deltas.append(d)
    for piece in c.text:
        d = {"content": piece}
        if b.name == "dashscope" and c.reasoning:
            d["reasoning_content"] = None
        if b.name == "vllm":
            d["tool_calls"] = []
        deltas.append(d)
    for piece in c.refusal:
        deltas.append({"refusal": piece})
    tool_deltas = _tool_deltas(c)
    if b.name == "openai" and tool_deltas and not c.text and not c.reasoning and not c.refusal:
        deltas[0] = {**deltas[0], **tool_deltas.pop(0)}  # gpt-5: the first call in the role chunk
    deltas.extend(tool_deltas)
    if b.role_every_delta:
        deltas = [{"role": "assistant", **d} for d in deltas]
    if b.name == "gemini" and len(deltas) > 1 and not c.calls:
        merged = "".join(str(d.get("content") or "") for d in deltas if "content" in d)
        deltas = [{"role": "assistant", "content": merged}]

    frames: list[str] = []
    per_chunk_usage: Any = None if c.usage is not None and b.name in ("openai", "azure") else "absent"

    def data(obj: Any) -> None:
        frames.append(f"{b.data_prefix}{_dump(b, obj)}\n\n")

    if b.name == "azure":
        data({"choices": [], "created": 0, "id": "", "model": "", "object": "", "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]})

    error_frame: list[str] = []
    if c.error is not None:
        error_frame = _error_frames(b, c)
        deltas = deltas[: c.error_at] if c.error != "openrouter" else deltas
    for n, d in enumerate(deltas):
        usage: Any = per_chunk_usage
        if c.usage_mode == "every" and c.usage is not None:
            usage = _partial_usage(c.usage, n + 1, len(deltas) + 1)
        data(_envelope(b, [_choice(b, d, None)], usage))
    if c.error is not None:
        frames.extend(error_frame)
    else:
        finish_delta: dict[str, Any] = {}
        if b.name in ("deepseek", "dashscope"):
            finish_delta = {"content": ""}
        if b.name == "gateway":
            finish_delta = {"content": "", "role": "assistant", "refusal": None}
        usage = per_chunk_usage
        if c.usage is not None and c.usage_mode in ("on_finish", "twice", "every"):
            usage = c.usage
        if c.finish is not None:
            data(_envelope(b, [_choice(b, finish_delta, c.finish)], usage))
        if c.usage is not None and c.usage_mode in ("separate", "twice"):
            data(_envelope(b, [], c.usage))
        if c.finish is not None and c.usage_mode == "dup_finish":
            data(_envelope(b, [_choice(b, finish_delta, c.finish)], c.usage))
        if c.finish is not None and b.name == "azure":
            frames.append(
                f"data: {_dump(b, {'choices': [{'content_filter_offsets': {'check_offset': 44, 'end_offset': 90, 'start_offset': 44}, 'content_filter_results': {}, 'finish_reason': None, 'index': 0}], 'created': 0, 'id': '', 'model': '', 'object': ''})}\n\n"
            )
        if c.finish is not None and b.name == "gateway":
            data(_envelope(b, [{"index": 0, "finish_reason": c.finish}], None))
        if c.done:
            frames.append(c.done)
    for pos, comment in sorted(c.comments, reverse=True):
        frames.insert(min(pos, len(frames)), comment)
    end = "clean"
    if c.cut_at is not None and c.cut_at < len(frames):
        frames, end = frames[: c.cut_at], "cut"
    return frames, end


def _partial_usage(usage: dict[str, Any], n: int, total: int) -> dict[str, Any]:
    """vLLM's continuous usage: cumulative completion tokens, the last chunk has the final count."""
    done = usage["completion_tokens"] * n // total
    return {"prompt_tokens": usage["prompt_tokens"], "completion_tokens": done, "total_tokens": usage["prompt_tokens"] + done}


def _error_frames(b: Backend, c: StreamContent) -> list[str]:
    msg = c.error_message
    if c.error == "openai":
        return [f"data: {_dump(b, {'error': {'message': msg, 'type': 'server_error', 'param': None, 'code': None}})}\n\n"]
    if c.error == "vllm":
        return [
            f"data: {_dump(b, {'error': {'object': 'error', 'message': msg, 'type': 'BadRequestError', 'code': 400}})}\n\n",
            "data: [DONE]\n\n",
        ]
    if c.error == "openrouter":
        chunk = _envelope(b, [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}])
        chunk["error"] = {"code": "server_error", "message": msg}
        return [f"data: {_dump(b, chunk)}\n\n", "data: [DONE]\n\n"]
    if c.error == "llamacpp":
        return [f"error: {_dump(b, {'code': 400, 'message': msg, 'type': 'invalid_request_error'})}\n\n", "data: [DONE]\n\n"]
    # ollama: the native error becomes a content-less chunk and the stream closes without [DONE]
    return [f"data: {_dump(b, _envelope(b, [_choice(b, {'role': 'assistant', 'content': ''}, None)]))}\n\n"]


# -- network reads -------------------------------------------------------------------------------
READ_MODES = ("events", "random", "utf8", "bytes1")


@st.composite
def reads(draw: Draw, frames: list[str]) -> tuple[str, list[bytes]]:
    """The same bytes as network reads: one per event, random cuts, inside every character, or 1 byte."""
    mode = draw(st.sampled_from(READ_MODES))
    body = "".join(frames).encode("utf-8")
    if mode == "events" or not body:
        return "events", [f.encode("utf-8") for f in frames if f]
    if mode == "bytes1" and len(body) <= 1500:
        return mode, [body[i : i + 1] for i in range(len(body))]
    cuts: set[int] = set()
    if mode == "utf8":
        pos = 0
        for ch in "".join(frames):
            size = len(ch.encode("utf-8"))
            cuts.update(range(pos + 1, pos + size))
            pos += size
        if not cuts:
            mode = "random"
    if mode != "utf8":
        mode = "random"
        cuts.update(draw(st.lists(st.integers(1, max(1, len(body) - 1)), max_size=8)))
    edges = [0, *sorted(c for c in cuts if 0 < c < len(body)), len(body)]
    return mode, [body[a:z] for a, z in itertools.pairwise(edges) if z > a]


@st.composite
def streams(draw: Draw, backend: str | None = None) -> GeneratedStream:
    """One upstream answer of a (drawn) backend, with its network reads."""
    b = BACKENDS[backend] if backend else BACKENDS[draw(st.sampled_from(_BACKEND_NAMES))]
    c = draw(stream_contents(b))
    if c.http_error is not None:
        status, body = c.http_error
        return GeneratedStream(b.name, c, [body], status=status, headers={"content-type": "application/json"}, reads=[body.encode()])
    frames, end = render(b, c)
    mode, chunks = draw(reads(frames))
    return GeneratedStream(b.name, c, frames, end=end, reads=chunks, read_mode=mode)


# -- requests and cassettes ----------------------------------------------------------------------
@dataclass
class Scenario:
    """A generated exchange: the request knobs, the first answer, and an optional tool loop."""

    stream: GeneratedStream
    request: dict[str, Any]
    follow_up: GeneratedStream | None = None


def _tool_def(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "description": f"The {name} tool.",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    }


@st.composite
def scenarios(draw: Draw, backend: str | None = None) -> Scenario:
    s = draw(streams(backend))
    c = s.content
    names = [call.name for call in c.calls]
    req: dict[str, Any] = {"model": BACKENDS[s.backend].model or "conformance-model"}
    req["stream"] = draw(st.sampled_from([True, True, True, False]))
    if names or draw(st.integers(0, 3)) == 0:
        tools = [_tool_def(n) for n in names] or [_tool_def("lookup")]
        req["tools"] = tools
        choice = draw(st.sampled_from(["absent", "auto", "required", "named"]))
        if choice == "named":
            req["tool_choice"] = {"type": "function", "name": tools[0]["name"]}
        elif choice != "absent":
            req["tool_choice"] = choice
        if len(names) > 1 or draw(st.booleans()):
            req["parallel_tool_calls"] = len(names) > 1 or draw(st.booleans())
    if c.reasoning or draw(st.integers(0, 4)) == 0:
        req["reasoning"] = {"effort": draw(st.sampled_from(["low", "medium", "high"]))}
    fmt = draw(st.sampled_from(["absent", "absent", "text", "json_object", "json_schema"]))
    if fmt == "json_schema":
        req["text"] = {"format": {"type": "json_schema", "name": "answer", "strict": True, "schema": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": False}}}
    elif fmt != "absent":
        req["text"] = {"format": {"type": fmt}}
    if c.finish == "length" or draw(st.integers(0, 4)) == 0:
        req["max_output_tokens"] = draw(st.integers(16, 4096))
    if draw(st.integers(0, 3)) == 0:
        req["instructions"] = "Answer briefly."
    if draw(st.integers(0, 3)) == 0:
        req["temperature"] = draw(st.sampled_from([0, 0.2, 1]))
    follow = None
    tool_loop = (
        c.calls
        and c.finish in ("tool_calls", "stop")
        and c.error is None
        and c.cut_at is None
        and c.http_error is None
        and s.end == "clean"
        and all(call.id for call in c.calls)
        and len({call.id for call in c.calls}) == len(c.calls)
    )
    if tool_loop and draw(st.integers(0, 2)) == 0:
        follow = draw(streams(s.backend).filter(lambda f: f.content.http_error is None))
    return Scenario(s, req, follow)


def _interaction(s: GeneratedStream) -> dict[str, Any]:
    chunks: list[dict[str, Any]] = []
    for n, data in enumerate(s.reads):  # 1 ms apart: strictly increasing, as recorded reads are
        try:
            chunks.append({"t_ms": n, "data": data.decode("utf-8")})
        except UnicodeDecodeError:
            chunks.append({"t_ms": n, "b64": base64.b64encode(data).decode("ascii")})
    out: dict[str, Any] = {"status": s.status, "headers": dict(s.headers), "chunks": chunks}
    if s.end != "clean":
        out["end"] = s.end
    return out


def _turn(request: dict[str, Any], s: GeneratedStream) -> dict[str, Any]:
    """A cassette turn; ``expect.outcome`` states what the oracle derives (a guard for editors)."""
    turn: dict[str, Any] = {"request": request, "upstream": [_interaction(s)]}
    outcome = expect_chunks(s.status, s.headers, s.reads, s.end).outcome
    if outcome in ("completed", "incomplete", "failed"):
        turn["expect"] = {"outcome": outcome}
    return turn


def _input(prompt: str, shape: int) -> Any:
    if shape == 0:
        return prompt
    if shape == 1:
        return [{"role": "user", "content": prompt}]
    return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]}]


def cassette_document(
    scenario: Scenario,
    cassette_id: str,
    prompt: str,
    provenance: dict[str, Any] | None = None,
    tags: list[str] | None = None,
) -> dict[str, Any]:
    """The cassette JSON of a scenario, with ``prompt`` as the (unique) upstream match key."""
    s = scenario.stream
    first = dict(scenario.request, input=_input(prompt, len(prompt) % 3))
    turns: list[dict[str, Any]] = [_turn(first, s)]
    if scenario.follow_up is not None:
        history: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
        for n, call in enumerate(s.content.calls):
            history.append({"type": "function_call", "call_id": call.id, "name": call.name, "arguments": call.arguments or "{}"})
            history.append({"type": "function_call_output", "call_id": call.id, "output": f"result {n} of {prompt}"})
        second = dict(scenario.request, input=history)
        turns.append(_turn(second, scenario.follow_up))
    b = BACKENDS[s.backend]
    prov: dict[str, Any] = {
        "source": "generated",
        "backend": s.backend,
        "model": b.model or "conformance-model",
        "based_on": f"shared/upstream-shapes.md {b.based_on}; conformance.fuzz strategies",
        "notes": f"reads: {s.read_mode}",
    }
    prov.update(provenance or {})
    return {
        "format": 1,
        "id": cassette_id,
        "description": f"Generated {s.backend} stream ({len(s.frames)} SSE frames in {len(s.reads)} reads).",
        "tags": sorted(set(tags or [])),
        "provenance": prov,
        "turns": turns,
    }


def to_cassette(
    scenario: Scenario, cassette_id: str, prompt: str, provenance: dict[str, Any] | None = None, *, validate: bool = False
) -> Cassette:
    """An in-memory :class:`Cassette`, built directly (schema validation costs ~70 ms a cassette;
    the documents are validated in the tests and whenever one is written and loaded back)."""
    doc = cassette_document(scenario, cassette_id, prompt, provenance)
    if validate:
        return parse_cassette(doc, f"<generated {cassette_id}>")
    turns = []
    for n, (turn, stream) in enumerate(zip(doc["turns"], [scenario.stream, scenario.follow_up], strict=False)):
        assert stream is not None
        interaction = Interaction(stream.status, dict(stream.headers), [(float(n), r) for n, r in enumerate(stream.reads)], stream.end)
        turns.append(Turn(n, turn["request"], [interaction], request_match_key(turn["request"]), dict(turn.get("expect", {}))))
    return Cassette(doc["id"], doc["description"], [], dict(doc["provenance"]), turns, raw=doc)


def cassettes(backend: str | None = None) -> st.SearchStrategy[Cassette]:
    """Generated cassettes with fresh ids (for property tests that need only the cassette)."""
    counter = iter(range(10**9))
    return scenarios(backend).map(lambda sc: to_cassette(sc, f"fuzz-{next(counter)}", f"fuzz probe {next(counter)}"))
