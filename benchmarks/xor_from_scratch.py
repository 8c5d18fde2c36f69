"""XOR grown from no hidden units (``configs/xor_from_scratch.yaml``) against XOR from a given hidden layer
(``configs/xor.yaml``), over many seeds.

NEAT (Stanley & Miikkulainen 2002) starts from inputs wired straight to the output and solved XOR in 4,755
evaluations on average over 100 runs; the target here is evo solving it on every seed from the same minimal
start (``evolution.init.hidden: []``, the first hidden layer grown by ``deepen``) with a median no higher. Runs are
counted as the gradient-free comparison counts them (:func:`benchmarks.peers.evo_side.run_evo`: individuals
evaluated until the best fitness exceeds :data:`evo.tasks.xor.SOLVED_FITNESS`, serial backend, one core), with
its XOR caps on evaluations and wall time per run. Seconds are medians over solved runs.

Writes the "xor-from-scratch" section of docs/benchmarks.md (or ``--doc PATH``).
Run: ``python -m benchmarks.xor_from_scratch [--seeds 0 1 ...]`` (seeds 0-19 by default; a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from benchmarks._report import DOC, table, update_section
from benchmarks.peers.evo_side import BENCHMARKS, Benchmark, Outcome, median_or_dash, run_evo
from evo.tasks.xor import SOLVED_FITNESS

#: NEAT's evaluations to solve XOR (Stanley & Miikkulainen 2002: 32 generations, 4,755 networks, on average).
NEAT_MEDIAN = 4755
#: the shipped configs, from no hidden units first; caps as the gradient-free comparison's XOR.
CONFIGS = {
    "xor_from_scratch.yaml": replace(BENCHMARKS["xor"], name="XOR from no hidden units", evo_config="xor_from_scratch.yaml"),
    "xor.yaml": replace(BENCHMARKS["xor"], name="XOR from hidden [2]"),
}
HEADERS = ["config", "solved", "median evaluations to solve", "most evaluations used", "median seconds to solve"]


def row(bench: Benchmark, runs: Sequence[Outcome]) -> list[object]:
    """One config's table row: medians over the solved runs, the most evaluations over all."""
    solved = [r for r in runs if r.solved]
    return [f"`configs/{bench.evo_config}`", f"{len(solved)}/{len(runs)}",
            median_or_dash([r.evaluations for r in solved]), max(r.evaluations for r in runs),
            median_or_dash([round(r.seconds, 1) for r in solved])]


def verdict(runs: Sequence[Outcome]) -> str:
    """Whether every seed solved XOR from no hidden units with a median at most NEAT's."""
    solved = [r.evaluations for r in runs if r.solved]
    median = statistics.median(solved) if solved else float("inf")
    met = len(solved) == len(runs) and median <= NEAT_MEDIAN
    said = f"median {median:g}" if solved else "none solved"
    return (f"Target (XOR solved on every seed from no hidden units, median ≤ {NEAT_MEDIAN:,} evaluations, NEAT's "
            f"figure): **{'met' if met else 'not met'}** — {len(solved)}/{len(runs)} solved, {said}.")


def report(benches: Sequence[Benchmark], results: dict[str, list[Outcome]], seeds: Sequence[int]) -> str:
    caps = benches[0]
    return "\n\n".join([
        f"Seeds {', '.join(map(str, seeds))}; each run serial (one core), stopped at fitness > {SOLVED_FITNESS} "
        f"or {caps.max_evaluations:,} evaluations or {caps.max_seconds:.0f} s; evaluations counted as in the "
        "gradient-free comparison (individuals evaluated until the threshold). Run: `python -m "
        "benchmarks.xor_from_scratch`.",
        table(HEADERS, [row(b, results[b.evo_config]) for b in benches]),
        verdict(results[benches[0].evo_config]),
    ])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(20)))
    parser.add_argument("--max-evaluations", type=int, default=None, help="cap per run (default: the comparison's)")
    parser.add_argument("--doc", type=Path, default=DOC, help="the Markdown file whose section is written")
    args = parser.parse_args(argv)
    benches = [b if args.max_evaluations is None else replace(b, max_evaluations=args.max_evaluations)
               for b in CONFIGS.values()]
    results: dict[str, list[Outcome]] = {}
    for bench in benches:
        for seed in args.seeds:
            outcome = run_evo(bench, seed)
            results.setdefault(bench.evo_config, []).append(outcome)
            print(f"{bench.evo_config} seed {seed}: solved={outcome.solved} evaluations={outcome.evaluations} "
                  f"{outcome.seconds:.1f}s", flush=True)
    body = report(benches, results, args.seeds)
    print(body, flush=True)
    update_section("xor-from-scratch", "XOR from no hidden units (20 seeds)", body, doc=args.doc)


if __name__ == "__main__":
    main()
