"""The proxy's final Response object of an exchange, as a later turn or a check reads it.

Apart from :mod:`conformance.expected` (what the upstream said) on purpose: this reads the proxy's
answer with the stream analyser, and the fake upstream, which needs the former, must not depend on
the checker's view of a proxy.
"""

from __future__ import annotations

import json
from typing import Any

from conformance.exchange import Exchange
from conformance.stream import Analysis, analyze

__all__ = ["response_of"]

_TERMINAL_STATUS = {"response.completed": "completed", "response.incomplete": "incomplete", "response.failed": "failed"}


def response_of(
    exchange: Exchange, analysis: Analysis | None = None
) -> tuple[dict[str, Any] | None, str | None]:
    """The proxy's final Response object and how it ended (completed/incomplete/failed), or (None, None).

    Stream: the first terminal event's ``response`` and the event type's status. Non-stream: the
    JSON body of a 2xx answer and its ``status``. ``analysis``: the stream's analysis when the
    caller has it already (``analyze(exchange)``), so the stream is not parsed a second time.
    """
    if exchange.status is None or not 200 <= exchange.status < 300:
        return None, None
    if exchange.mode == "nonstream":
        try:
            body = json.loads(exchange.body)
        except ValueError:
            return None, None
        if not isinstance(body, dict):
            return None, None
        status = body.get("status")
        return body, status if isinstance(status, str) else None
    term = (analysis if analysis is not None else analyze(exchange)).terminal
    if term is None or term.data is None:
        return None, None
    resp = term.data.get("response")
    return (resp if isinstance(resp, dict) else None), _TERMINAL_STATUS.get(term.type or "")
