"""The reference bridge: a small, correct Responses -> Chat Completions bridge, and its faults.

It is the harness's default target and the base of the fault zoo: with no faults it must pass
every check; each named fault in ``FAULTS`` breaks one rule, to prove the check for it fires.
"""

from __future__ import annotations

from ._faults import FAULTS, Fault
from ._server import ReferenceBridge

__all__ = ["FAULTS", "Fault", "ReferenceBridge"]
