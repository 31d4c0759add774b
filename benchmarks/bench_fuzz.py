"""Fuzz throughput: generated upstream streams replayed through the reference bridge, per second.

Counts what a campaign does per example: draw a scenario, build the in-memory cassette, serve it
from the fake upstream, send the Responses request (and its ``stream: false`` twin) through the
embedded reference bridge over real HTTP, and run every check. Also times generation alone, so
the share of the harness is visible.

    python benchmarks/bench_fuzz.py [--examples 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

from hypothesis import HealthCheck, given, settings

from conformance.fuzz.runner import FuzzConfig, fuzz
from conformance.fuzz.strategies import Scenario, scenarios, to_cassette
from conformance.harness import Settings


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    gen = generation_rate(args.examples, args.seed)
    report = fuzz(FuzzConfig(settings=Settings(), examples=args.examples, seed=args.seed, out_dir=None, database=None))
    print(f"{'what':<44}{'per second':>12}")
    print(f"{'scenarios generated (no HTTP)':<44}{gen:>12.1f}")
    print(f"{'examples against the reference bridge':<44}{report.examples / report.elapsed:>12.1f}")
    print(f"{'exchanges against the reference bridge':<44}{report.rate:>12.1f}")
    print(f"({report.examples} examples, {report.exchanges} exchanges, {report.elapsed:.1f} s, {len(report.problems)} problems)")


if __name__ == "__main__":
    main()
