"""One SSE stream that exercises the WHATWG rules, shared by the parser tests (tests/unit/test_sse*.py).

A BOM, CRLF, LF and lone CR line ends, a comment, a named event, an id that persists, a ``retry``
field, multi-line data, non-ASCII text, a bare ``data`` field and an empty event.
"""

STREAM = (
    "\ufeffevent: response.created\r\ndata: {\"a\":1}\r\n\r\n"
    ": a comment\n"
    "event: x\n"
    "id: 7\n"
    "data: line one\n"
    "data:line two\n"
    "\n"
    "retry: 100\r"
    "data: é😀\r"
    "\r"
    "data\n"
    "\n"
    "event: response.completed\n"
    "data: {}\n"
    "\n"
).encode()

DATAS = ['{"a":1}', "line one\nline two", "é😀", "", "{}"]
"""The data of its events, in order."""
