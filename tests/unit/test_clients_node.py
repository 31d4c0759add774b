"""Node clients and Codex CLI against crafted streams: the verdicts match the committed table.

Each client is skipped when it is not installed here (`responses-conformance clients install`);
`nox -s clients` installs them from the project's own files and runs this module.
"""

from __future__ import annotations

import pytest

from conformance.clients import CLIENTS, load_table, replay_capture
from conformance.clients._carried import carried_events
from conformance.clients._defects import CLEAN, DEFECTS, clean_events

SAMPLE = ("clean", "no-created", "unknown-type", "no-fc-item-done", "delta-no-item-id", "no-terminal", "usage-no-total", "output-index-off-by-one")
NODE = ("openai-node.raw", "openai-node.stream", "ai-sdk-6", "ai-sdk-7", "codex")


@pytest.mark.slow
@pytest.mark.parametrize("client", NODE)
def test_node_client_verdicts_match_the_table(client: str) -> None:
    spec = CLIENTS[client]
    why = spec.missing()
    if why:
        pytest.skip(why)
    table = load_table()
    expected = carried_events(clean_events())
    for name in SAMPLE:
        capture = CLEAN.build() if name == "clean" else DEFECTS[name].build()
        (verdict,) = replay_capture(capture, [spec], expected=expected)
        committed = table["defects"][name]["verdicts"][client]
        assert verdict.verdict == committed["verdict"], f"{name}: {verdict.verdict} {verdict.message} vs {committed}"
        if verdict.verdict == "ERR":
            assert verdict.message, name  # the client's own error, as evidence
