"""Python clients: openai-python (four ways), the OpenAI Agents SDK and LangChain.

Each runner drives the real library against the replay server, as an application would, and
turns what it got into an :class:`Outcome`. The Agents SDK and LangChain come with the
``clients`` extra; without it their runners say what to install.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import logging
from typing import Any

from conformance.clients._carried import outcome_of_response
from conformance.clients._model import Outcome, ToolCall
from conformance.clients._spec import ClientSpec

__all__ = ["PYTHON_CLIENTS", "TOOL", "Tools"]

Tools = list[dict[str, Any]]  # Responses function-tool definitions the client declares

INPUT = "What is f of 1?"
# The one function tool every client is given (the lab's streams call it).
TOOL: dict[str, Any] = {
    "type": "function",
    "name": "f",
    "description": "A test function.",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"], "additionalProperties": False},
    "strict": True,
}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _needs(module: str, dist: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return f"{dist} is not installed: pip install 'responses-conformance[clients]'"
    return None


def _openai(base_url: str, timeout: float, strict: bool) -> Any:
    import openai

    return openai.OpenAI(
        base_url=base_url, api_key="sk-replay", max_retries=0, timeout=timeout,
        _strict_response_validation=strict,
    )


def _dump(obj: Any) -> Any:
    return obj.model_dump(mode="json", warnings=False) if hasattr(obj, "model_dump") else obj


def _raw(base_url: str, timeout: float, tools: Tools, strict: bool) -> Outcome:
    """Iterate ``responses.create(stream=True)`` as an app does: text and refusal from the deltas,
    reasoning from the summary deltas, tool calls from ``output_item.done``, status and usage
    from the terminal event."""
    client = _openai(base_url, timeout, strict)
    out = Outcome(text="", refusal="", reasoning="", tool_calls=[])
    with client.responses.create(model="m", input=INPUT, tools=tools, stream=True) as stream:  # type: ignore[call-overload]
        for event in stream:
            kind = getattr(event, "type", None)
            if kind == "response.output_text.delta":
                out.text = (out.text or "") + str(event.delta or "")
            elif kind == "response.refusal.delta":
                out.refusal = (out.refusal or "") + str(event.delta or "")
            elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
                out.reasoning = (out.reasoning or "") + str(event.delta or "")
            elif kind == "response.output_item.done":
                item = _dump(event.item)
                if isinstance(item, dict) and item.get("type") == "function_call":
                    assert out.tool_calls is not None
                    out.tool_calls.append(ToolCall.of(item.get("call_id"), item.get("name"), item.get("arguments")))
            elif kind in ("response.completed", "response.incomplete", "response.failed"):
                final = outcome_of_response(_dump(event.response))
                out.status, out.usage = final.status, final.usage
    return out


def _stream(base_url: str, timeout: float, tools: Tools, strict: bool) -> Outcome:
    """``responses.stream()`` + ``get_final_response()``: everything from the final Response."""
    client = _openai(base_url, timeout, strict)
    with client.responses.stream(model="m", input=INPUT, tools=tools) as stream:  # type: ignore[arg-type]
        for _ in stream:
            pass
        final = stream.get_final_response()
    return outcome_of_response(_dump(final))


def _nonstream(base_url: str, timeout: float, tools: Tools) -> Outcome:
    client = _openai(base_url, timeout, False)
    return outcome_of_response(_dump(client.responses.create(model="m", input=INPUT, tools=tools)))  # type: ignore[arg-type]


def _agents(base_url: str, timeout: float, tools: Tools) -> Outcome:
    """``Runner.run_streamed`` with one function tool; the first model turn is what is judged."""
    import agents
    import openai

    agents.set_tracing_disabled(True)
    # The SDK logs the error it then raises; the verdict carries it, the terminal need not.
    logging.getLogger("openai.agents").setLevel(logging.CRITICAL)

    async def invoke(ctx: Any, arguments: str) -> str:
        return "42"

    declared: list[Any] = [
        agents.FunctionTool(
            name=str(t["name"]), description=str(t.get("description") or ""),
            params_json_schema=dict(t.get("parameters") or {"type": "object", "properties": {}}),
            on_invoke_tool=invoke, strict_json_schema=bool(t.get("strict")),
        )
        for t in tools
    ]

    async def go() -> Outcome:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-replay", max_retries=0, timeout=timeout)
        model = agents.OpenAIResponsesModel(model="m", openai_client=client)
        agent = agents.Agent(name="a", instructions="Use the tools.", model=model, tools=declared)
        result = agents.Runner.run_streamed(agent, INPUT, max_turns=3)
        async for _ in result.stream_events():
            pass
        if result._stored_exception is not None:  # surfaced by stream_events in most versions
            raise result._stored_exception
        first = result.raw_responses[0]
        out = outcome_of_response({"output": [_dump(i) for i in first.output]})
        usage = first.usage
        out.usage = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens, "total_tokens": usage.total_tokens}
        return out

    return asyncio.run(go())


def _langchain(base_url: str, timeout: float, tools: Tools) -> Outcome:
    """``ChatOpenAI(use_responses_api=True)`` with the tool bound; the streamed chunks summed."""
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        model="m", base_url=base_url, api_key="sk-replay", use_responses_api=True,  # type: ignore[arg-type]
        max_retries=0, timeout=timeout,
    ).bind_tools(tools)
    total: Any = None
    for chunk in llm.stream(INPUT):
        total = chunk if total is None else total + chunk
    if total is None:
        return Outcome(text="", tool_calls=[], usage=None)
    calls = [ToolCall.of(c.get("id"), c.get("name"), c.get("args")) for c in total.tool_calls]
    meta = total.usage_metadata
    usage = None if meta is None else {k: int(meta[k]) for k in ("input_tokens", "output_tokens", "total_tokens")}
    return Outcome(text=total.text, tool_calls=calls, usage=usage)


def _py(module: str, dist: str) -> tuple[Any, Any]:
    return (lambda: _version(dist)), (lambda: _needs(module, dist))


_OPENAI = _py("openai", "openai")
STRICT = "_strict_response_validation=True"

PYTHON_CLIENTS: tuple[ClientSpec, ...] = (
    ClientSpec("openai-python.raw", "python", "openai-python responses.create(stream=True), iterated",
               lambda u, t, tl: _raw(u, t, tl, False), *_OPENAI),
    ClientSpec("openai-python.stream", "python", "openai-python responses.stream() + get_final_response()",
               lambda u, t, tl: _stream(u, t, tl, False), *_OPENAI),
    ClientSpec("openai-python.raw-strict", "python", f"openai-python raw iteration with {STRICT}",
               lambda u, t, tl: _raw(u, t, tl, True), *_OPENAI, opt_in=STRICT),
    ClientSpec("openai-python.stream-strict", "python", f"openai-python responses.stream() with {STRICT}",
               lambda u, t, tl: _stream(u, t, tl, True), *_OPENAI, opt_in=STRICT),
    ClientSpec("openai-python.nonstream", "python", "openai-python responses.create() (stream: false)",
               _nonstream, *_OPENAI, modes=("nonstream",)),
    ClientSpec("openai-agents", "python", "OpenAI Agents SDK Runner.run_streamed with one function tool",
               _agents, *_py("agents", "openai-agents"), reports=("text", "refusal", "reasoning", "tool_calls", "usage")),
    ClientSpec("langchain", "python", "LangChain ChatOpenAI(use_responses_api=True).bind_tools().stream()",
               _langchain, *_py("langchain_openai", "langchain-openai"), reports=("text", "tool_calls", "usage")),
)
