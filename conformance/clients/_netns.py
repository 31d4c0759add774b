"""Run a command next to a replay server inside a network namespace that has only loopback.

``unshare -rn python -m conformance.clients._netns CAPTURE.json PORT -- CMD…`` brings ``lo`` up,
serves the capture on 127.0.0.1:PORT, runs CMD (with a timeout) and prints one JSON line: the
command's exit code, stdout, stderr tail and the requests the server saw. Codex CLI contacts
the internet at start; in this namespace it can reach nothing but the replay server.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from conformance.clients._replay import Capture, ReplayServer

__all__ = ["capture_from_json", "capture_to_json"]


def capture_to_json(capture: Capture) -> dict[str, Any]:
    return {
        "status": capture.status,
        "headers": capture.headers,
        "chunks": [base64.b64encode(c).decode() for c in capture.chunks],
        "cut": capture.cut,
    }


def capture_from_json(data: dict[str, Any]) -> Capture:
    return Capture(int(data["status"]), dict(data["headers"]), [base64.b64decode(c) for c in data["chunks"]], data.get("cut"))


def _main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print(json.dumps({"error": "usage: _netns CAPTURE.json PORT -- CMD…"}))
        return 2
    capture = capture_from_json(json.loads(Path(argv[0]).read_text()))
    port, cmd = int(argv[1]), argv[3:]
    up = subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True, text=True, check=False)
    if up.returncode != 0:
        print(json.dumps({"error": f"cannot bring up loopback in the namespace: {up.stderr.strip()}"}))
        return 0
    with ReplayServer(capture, port=port) as server:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL, check=False)
            result: dict[str, Any] = {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr[-4000:]}
        except subprocess.TimeoutExpired:
            result = {"error": "the command did not finish within 90 s"}
        except OSError as exc:
            result = {"error": f"cannot start {cmd[0]}: {exc}"}
        result["requests"] = server.requests
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
