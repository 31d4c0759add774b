"""Fuzz throughput: generated upstream streams replayed through the reference bridge, per second.

Counts what a campaign does per example: draw a scenario, build the in-memory cassette, serve it
from the fake upstream, send the Responses request (and its ``stream: false`` twin) through the
embedded reference bridge over real HTTP, and run every check. Also times generation alone, so
the share of the harness is visible.

    python benchmarks/bench_fuzz.py [--examples 300] [--seed 0]
    python benchmarks/bench_fuzz.py --faults   # examples to find, and chunks after shrinking, per fault
"""

from __future__ import annotations

import argparse
import time

from hypothesis import HealthCheck, given, settings

from conformance.fuzz.runner import FuzzConfig, fuzz
from conformance.fuzz.strategies import Scenario, scenarios, to_cassette
from conformance.options import Settings


def generation_rate(examples: int, seed: int) -> float:
    """Scenarios drawn and turned into validated cassettes per second (no HTTP)."""
    count = [0]

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
    @given(scenarios())
    def draw(sc: Scenario) -> None:
        count[0] += 1
        to_cassette(sc, f"bench-{count[0]}", f"bench prompt {count[0]}")

    start = time.perf_counter()
    draw()
    return count[0] / (time.perf_counter() - start)


SWEEP = (
    "T2-first-name-fragment-only",
    "T4-argument-fragment-lost",
    "T4-cumulative-arguments",
    "I3-call-id-reminted",
    "X2-upstream-text-lost",
    "X2-strip-done-text",
    "X2-per-read-decoding",
    "U1-usage-dropped",
    "F1-length-as-completed",
)


def sweep(seed: int) -> None:
    """Each tool-call, argument, text-integrity, usage and finish-reason fault: when it is first
    seen (examples, shrinking included) and how many chunks its shrunk cassette has."""
    print(f"{'fault':<32}{'first seen':>11}{'chunks':>8}{'problems':>10}{'seconds':>9}")
    for fault in SWEEP:
        report = fuzz(
            FuzzConfig(settings=Settings(reference_faults=(fault,)), examples=300, seed=seed, out_dir=None, database=None)
        )
        first = min((p.first_seen for p in report.problems), default=0)
        chunks = min((p.chunks for p in report.problems if p.chunks), default=0)
        print(f"{fault:<32}{first if report.problems else 'never':>11}{chunks:>8}{len(report.problems):>10}{report.elapsed:>9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--faults", action="store_true", help="sweep the reference faults instead")
    args = parser.parse_args()
    if args.faults:
        sweep(args.seed or 1)
        return
    gen = generation_rate(args.examples, args.seed)
    report = fuzz(FuzzConfig(settings=Settings(), examples=args.examples, seed=args.seed, out_dir=None, database=None))
    print(f"{'what':<44}{'per second':>12}")
    print(f"{'scenarios generated (no HTTP)':<44}{gen:>12.1f}")
    print(f"{'examples against the reference bridge':<44}{report.examples / report.elapsed:>12.1f}")
    print(f"{'exchanges against the reference bridge':<44}{report.rate:>12.1f}")
    print(f"({report.examples} examples, {report.exchanges} exchanges, {report.elapsed:.1f} s, {len(report.problems)} problems)")


if __name__ == "__main__":
    main()
