"""HTTP, transport and upstream-matching checks: did a stream arrive at all, and whole?"""

from __future__ import annotations

from collections.abc import Iterator

from conformance.checks._registry import Context, Issue, check


def _excerpt(body: bytes, limit: int = 300) -> str:
    text = body.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "…"


@check("transport.connect", classes=(), needs_stream=False)
def connect(ctx: Context) -> Iterator[Issue]:
    """The proxy accepts the connection.

    Nothing else can be judged when the proxy is not listening or refuses the connection; this
    is usually a wrong ``--proxy-url`` or a proxy that did not start.
    """
    err = ctx.exchange.transport_error
    if err is not None and err.kind == "connect":
        yield Issue(err.message)


@check("transport.timeout", classes=("S1",), needs_stream=False)
def timeout(ctx: Context) -> Iterator[Issue]:
    """The response starts, keeps flowing and ends within the configured timeouts.

    A proxy that stalls (waiting for an upstream that already finished, or holding the
    connection open after the last event) makes Codex report ``idle timeout waiting for SSE``
    and retry, re-billing the request. The driver enforces first-byte, idle-gap and total
    timeouts and reports which one ran out.
    """
    err = ctx.exchange.transport_error
    if err is not None and err.kind.endswith("_timeout"):
        yield Issue(err.message, actual=err.kind)


@check("transport.cap", classes=(), needs_stream=False)
def cap(ctx: Context) -> Iterator[Issue]:
    """The response stays under the byte and event caps.

    An endless or runaway stream (a proxy looping on an upstream keep-alive, re-sending deltas)
    would hang a client forever; the driver stops reading at the cap and reports it.
    """
    err = ctx.exchange.transport_error
    if err is not None and err.kind == "cap":
        yield Issue(err.message)


@check("transport.clean_close", classes=("S1",), needs_stream=False)
def clean_close(ctx: Context) -> Iterator[Issue]:
    """The HTTP response body ends cleanly (no reset, no truncated chunked encoding).

    A connection dropped mid-body is what Codex reports as ``stream disconnected before
    completion``; when the upstream fails, the proxy should end the stream with
    ``response.failed`` instead of cutting the connection.
    """
    err = ctx.exchange.transport_error
    if err is not None and err.kind == "protocol":
        yield Issue(err.message)


@check("http.status_ok", classes=("S7",), needs_stream=False)
def status_ok(ctx: Context) -> Iterator[Issue]:
    """The HTTP status is the right one: 2xx for a valid request, the cassette's error status otherwise.

    A valid request rejected (4xx) or failed (5xx) is the obvious case. The error paths matter as
    much: an upstream that fails before the first byte must become a non-2xx answer, not a 200
    stream (clients then report the upstream's error instead of an empty answer); a malformed
    request is a 400, never a 500 (Codex relabels a 500 as "high demand" and retries).
    """
    ex = ctx.exchange
    if ex.status is None or ctx.status_allowed(ex.status):
        return
    allowed = " or ".join(ctx.allowed_statuses())
    what = "a valid request" if allowed == "2xx" else "this request"
    yield Issue(
        f"HTTP {ex.status} for {what}, where {allowed} is right; body: {_excerpt(ex.body)}",
        expected=allowed,
        actual=ex.status,
    )


@check("http.content_type", classes=("S5",), profiles={"lenient": "warning"})
def content_type(ctx: Context) -> Iterator[Issue]:
    """A streaming response has ``Content-Type: text/event-stream``.

    Clients and intermediaries (nginx, Azure APIM, browsers) decide buffering and parsing from
    the content type; ``application/json`` on a stream makes some SDKs wait for the whole body.
    """
    value = ctx.exchange.header("content-type")
    if value is None or value.split(";")[0].strip().lower() != "text/event-stream":
        yield Issue(
            f"Content-Type is {value!r}, not text/event-stream",
            expected="text/event-stream",
            actual=value,
        )


@check("upstream.matched", classes=("Q1", "Q2"), needs_stream=False, needs_upstream=True)
def upstream_matched(ctx: Context) -> Iterator[Issue]:
    """The proxy's Chat Completions request reaches the fake upstream and matches the cassette.

    The fake upstream answers any chat request that fits the turn in flight, even one whose
    conversation the proxy changed (the translation checks then name the change). No match means
    the proxy never called upstream, called the wrong path, or sent a conversation with nothing
    of the client's; the upstream's diagnosis names the closest cassettes and what differed.
    """
    ex = ctx.exchange
    if ex.upstream_expected <= 0 or ex.upstream_requests:
        return
    if ctx.turn is not None and not ctx.turn.upstream:
        return
    if ex.upstream_unmatched:
        for entry in ex.upstream_unmatched[:3]:
            yield Issue(
                "the proxy's upstream request matched no cassette: " + str(entry.get("diagnosis")),
                actual=entry.get("path"),
            )
    else:
        yield Issue("the proxy sent no request to the fake upstream for this turn")
