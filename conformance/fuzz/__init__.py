"""Property-based fuzzing: generated upstream Chat Completions streams, judged by the oracle.

:mod:`conformance.fuzz.strategies` builds hypothesis strategies for upstream streams in the
shapes real backends send (``shared/upstream-shapes.md``) and for the network reads that carry
them; :mod:`conformance.fuzz.runner` replays each as an in-memory cassette against a target,
shrinks every distinct problem to a minimal stream and writes it as a normal cassette.
"""

from __future__ import annotations

from conformance.fuzz.runner import FuzzConfig, FuzzReport, Problem, fuzz, problem_id
from conformance.fuzz.strategies import BACKENDS, GeneratedStream, cassettes, streams

__all__ = [
    "BACKENDS",
    "FuzzConfig",
    "FuzzReport",
    "GeneratedStream",
    "Problem",
    "cassettes",
    "fuzz",
    "problem_id",
    "streams",
]
