"""Where the harness's own servers may listen: loopback, unless the user says otherwise on purpose."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

__all__ = ["is_loopback", "listen_problem"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) only ever means this machine."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def listen_problem(hosts: Iterable[str], allow_remote: bool, warn: Callable[[str], None]) -> str | None:
    """A usage error for a non-loopback listen address without ``--allow-remote``; else warn and None."""
    remote = sorted({h for h in hosts if not is_loopback(h)})
    if not remote:
        return None
    if not allow_remote:
        return (
            f"refusing to listen on {', '.join(remote)}: not a loopback address, so anyone who can reach it "
            "could send requests through your upstream credentials; add --allow-remote if that is intended"
        )
    warn(f"warning: listening on {', '.join(remote)} (--allow-remote): reachable from other machines")
    return None
