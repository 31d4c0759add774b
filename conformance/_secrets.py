"""Secrets: redacted by name (credential headers, query parameters) and by value (what the run knows).

Names cover the credential headers and query parameters of the providers a proxy talks to (OpenAI,
Azure, Google, AWS, API gateways). Values are whatever this process was told is secret: the
``--api-key``, a password inside a URL, key-shaped arguments of ``--proxy-cmd``, and environment
variables whose name or value looks like a credential. Every sink that writes a file or prints
passes its text through :func:`redact_text` / :func:`redact_doc`, so a proxy that echoes a key in
an error message does not put it in a report either.
"""

from __future__ import annotations

import os
import re
import shlex
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import SplitResult, parse_qsl, quote, urlsplit

__all__ = [
    "REDACTED",
    "SECRET_HEADERS",
    "SECRET_QUERY",
    "forget_all",
    "known_secrets",
    "redact_doc",
    "redact_known",
    "redact_text",
    "redact_url",
    "remember",
    "remember_command",
    "remember_env",
    "remember_settings",
    "remember_url",
]

REDACTED = "[redacted]"
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
        "ocp-apim-subscription-key",
        "x-auth-token",
        "x-amz-security-token",
        "x-amz-session-token",
        "x-functions-key",
    }
)
SECRET_QUERY = frozenset(
    {
        "key",
        "api-key",
        "api_key",
        "apikey",
        "access_token",
        "token",
        "sig",
        "signature",
        "subscription-key",
        "code",
        "x-amz-security-token",
        "x-amz-signature",
        "x-goog-signature",
        "password",
    }
)
_MIN_SECRET = 6  # shorter values would redact ordinary words
_SECRET_NAME = re.compile(r"(?i)(key|token|secret|passw(or)?d|credential|signature|auth(?!or))")
# Only shapes that are credentials by their prefix: a long model name or path must never be
# mistaken for one (the fake upstream's log redacts known values in bodies the checks compare).
_KEY_SHAPE = re.compile(r"(?:sk-|sk_|gsk_|xai-|hf_|gh[pousr]_|AIza|AKIA|pk-|rk-|sess-|glpat-)[A-Za-z0-9_\-]{8,}")

_lock = threading.Lock()
_known: set[str] = set()
_pattern: re.Pattern[str] | None = None


def remember(value: str | None, min_len: int = _MIN_SECRET) -> None:
    """Treat ``value`` (and its URL-encoded form) as a secret from now on, in this process."""
    global _pattern
    if not value or len(value) < max(min_len, _MIN_SECRET) or value.isspace():
        return
    with _lock:
        before = len(_known)
        _known.add(value)
        enc = quote(value, safe="")
        if enc != value:
            _known.add(enc)
        if len(_known) != before:
            _pattern = re.compile("|".join(re.escape(v) for v in sorted(_known, key=len, reverse=True)))


def known_secrets() -> frozenset[str]:
    with _lock:
        return frozenset(_known)


def forget_all() -> None:
    """For tests: start again with no known values."""
    global _pattern
    with _lock:
        _known.clear()
        _pattern = None


def remember_url(url: str | None) -> None:
    """The password of a URL's user part, and the values of credential query parameters."""
    if not url:
        return
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return
    remember(password)
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name.lower() in SECRET_QUERY:
            remember(value)


def remember_command(cmd: str | None) -> None:
    """Key-shaped arguments of a command line, values of ``--*key*/--*token*`` options and ``NAME=VALUE``."""
    if not cmd:
        return
    try:
        args = shlex.split(cmd)
    except ValueError:
        args = cmd.split()
    previous = ""
    for arg in args:
        name, eq, value = arg.partition("=")
        if eq and _SECRET_NAME.search(name):
            remember(value, 8)
        elif previous.startswith("-") and _SECRET_NAME.search(previous) and not arg.startswith("-"):
            remember(arg, 8)
        elif _KEY_SHAPE.fullmatch(arg) and not arg.startswith(("/", ".")):
            remember(arg)
        if "://" in arg:
            remember_url(arg)
        previous = arg


def remember_env(env: Mapping[str, str] | None = None) -> None:
    """Environment values whose name says credential, or whose value has a key's shape."""
    for name, value in (os.environ if env is None else env).items():
        if _SECRET_NAME.search(name) or _KEY_SHAPE.fullmatch(value or ""):
            if "/" in value or " " in value:
                continue  # paths and sentences are not secrets
            remember(value, 12)


def remember_settings(settings: Any) -> None:
    """Everything a run's settings hold that is secret (duck-typed: harness ``Settings``)."""
    remember(getattr(settings, "api_key", None))
    remember_url(getattr(settings, "proxy_url", None))
    remember_url(getattr(settings, "upstream_url", None))
    remember_command(getattr(settings, "proxy_cmd", None))
    remember_env()


_QUERY_IN_TEXT = re.compile(
    r"(?i)([?&;](?:" + "|".join(re.escape(q) for q in sorted(SECRET_QUERY, key=len, reverse=True)) + r")=)[^&\s\"'<>#]+"
)
_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://[^\s:/@\"'<>]*:)[^\s@/\"'<>]+(@)")
_HEADER_LINE = re.compile(
    r"(?im)^(\s*(?:" + "|".join(re.escape(h) for h in sorted(SECRET_HEADERS, key=len, reverse=True)) + r")\s*:\s*)\S[^\r\n]*"
)


def redact_text(text: str) -> str:
    """``text`` with known secret values, URL passwords, credential query values and header lines hidden."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    if "=" in text:
        text = _QUERY_IN_TEXT.sub(lambda m: m.group(1) + REDACTED, text)
    if "@" in text:
        text = _USERINFO.sub(lambda m: m.group(1) + REDACTED + m.group(2), text)
    if ":" in text:
        text = _HEADER_LINE.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def redact_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", f":{REDACTED}@", 1)
    return redact_text(SplitResult(parts.scheme, netloc, parts.path, parts.query, parts.fragment).geturl())


def redact_known(text: str) -> str:
    """``text`` with only the known secret values hidden (for bodies the checks still compare)."""
    pattern = _pattern
    return pattern.sub(REDACTED, text) if pattern is not None else text


def redact_doc(doc: Any, _depth: int = 0, *, values_only: bool = False) -> Any:
    """A copy of ``doc`` with secret header values (by key name) and every string redacted.

    ``values_only``: hide only the known secret values (request bodies, whose text the checks
    compare with the cassette, must not change otherwise).
    """
    if isinstance(doc, str):
        return redact_known(doc) if values_only else redact_text(doc)
    if values_only and _pattern is None:
        return doc
    if _depth > 400:
        return doc
    if isinstance(doc, dict):
        out: dict[Any, Any] = {}
        for k, v in doc.items():
            key = redact_doc(k, _depth, values_only=values_only) if isinstance(k, str) else k
            if not values_only and isinstance(k, str) and k.lower() in SECRET_HEADERS and isinstance(v, str) and v:
                out[key] = REDACTED
            else:
                out[key] = redact_doc(v, _depth + 1, values_only=values_only)
        return out
    if isinstance(doc, list):
        return [redact_doc(v, _depth + 1, values_only=values_only) for v in doc]
    if isinstance(doc, tuple):
        if not values_only and len(doc) == 2 and isinstance(doc[0], str) and doc[0].lower() in SECRET_HEADERS:
            return (doc[0], REDACTED)
        return tuple(redact_doc(v, _depth + 1, values_only=values_only) for v in doc)
    return doc


def redact_pairs(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, REDACTED if k.lower() in SECRET_HEADERS else redact_text(v)) for k, v in pairs]
