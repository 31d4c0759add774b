"""What every report file goes through before it is written: bounded size, secrets redacted.

A report holds the raw bytes of every exchange. With a proxy that floods (a 64 MiB line, a
decompression bomb up to the byte cap) that alone made reports of hundreds of megabytes, and the
NUL bytes a bomb decodes to grow sixfold as JSON escapes. Each exchange keeps its first
:data:`REPORT_EXCHANGE_BYTES` in the report, with a note of what was cut; the checks saw it all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conformance._secrets import redact_doc

__all__ = ["REPORT_EXCHANGE_BYTES", "bound_report", "prepare_report"]

REPORT_EXCHANGE_BYTES = 2 * 1024 * 1024


def _bound_chunks(exchange: dict[str, Any], limit: int) -> dict[str, Any]:
    chunks = exchange.get("chunks")
    if not isinstance(chunks, list):
        return exchange
    kept: list[Any] = []
    used = cut_bytes = cut_chunks = 0
    for chunk in chunks:
        size = len(chunk.get("data") or chunk.get("b64") or "") if isinstance(chunk, dict) else 0
        if used + size <= limit:
            kept.append(chunk)
            used += size
        else:
            cut_bytes += size
            cut_chunks += 1
    if not cut_chunks:
        return exchange
    out = dict(exchange, chunks=kept)
    out["chunks_cut"] = {
        "kept_characters": used,
        "cut_characters": cut_bytes,
        "cut_chunks": cut_chunks,
        "note": f"the report keeps the first {limit} characters of each exchange; the checks saw all of it",
    }
    return out


def bound_report(report: Mapping[str, Any], limit: int = REPORT_EXCHANGE_BYTES) -> dict[str, Any]:
    """A shallow copy of ``report`` whose exchanges keep at most ``limit`` characters of chunks."""
    doc = dict(report)
    cassettes = doc.get("cassettes")
    if isinstance(cassettes, list):
        new = []
        for c in cassettes:
            if isinstance(c, dict) and isinstance(c.get("exchanges"), list):
                c = dict(c, exchanges=[_bound_chunks(e, limit) if isinstance(e, dict) else e for e in c["exchanges"]])
            new.append(c)
        doc["cassettes"] = new
    return doc


def prepare_report(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report as it may be written to a file: bounded, then redacted."""
    out: dict[str, Any] = redact_doc(bound_report(report))
    return out
