"""Data-parallel scaling of the actor: the same run with 1 and with 2 actor ranks.

Runs an app's real CLI (``rlinf-<app> train --config <preset> placement.actor=<spec> ...``)
in a fresh process per run, rounds alternating the order of the variants, and reports the
medians over rounds of

* ``update s``: the actor's update per iteration (embodied ``time/update``, LLM
  ``time/update``), the part data parallelism divides;
* ``iteration s``: a whole iteration / step (``time/iteration`` or ``time/step``):
  rollout, update and weight sync;
* ``steps/s``: env steps (embodied) or optimizer steps (LLM) per second of training loop;
* ``whole s``: the command from process start to exit.

Usage::

    uv run --locked python benchmarks/scaling.py --app embodied --preset cartpole --rounds 3
    uv run --locked python benchmarks/scaling.py --app math --preset grpo --rounds 2 \\
        --set runner.steps=6 runner.eval_every=0

On a machine with ``C`` cores the ranks share them: with 2 cores, 2 actor ranks of one
thread each against 1 rank of 2 threads measures the cost of sharding (all-gathers,
reduce-scatters, the extra process) more than any gain; the gain needs ranks on their own
devices. ``docs/architecture.md`` ("Scaling") turns these measurements into a cost model
for 8 and 64 GPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

__all__ = ["run_variant"]

# The actor placements compared; the other components stay as the preset places them.
VARIANTS = {"1 rank": "0", "2 ranks": "0-1"}
# Keys of time per iteration and per update in each app's metrics.jsonl.
ITERATION_KEY = {"embodied": "time/iteration", "math": "time/step", "agentic": "time/step"}


def run_variant(
    app: str, preset: str, actor: str, extra: list[str], run_dir: pathlib.Path
) -> dict[str, float]:
    """One fresh ``rlinf-<app> train`` with ``placement.actor=<actor>``; its medians."""
    cmd = [
        sys.executable,
        "-m",
        f"rlinf.apps.{app}.cli",
        "train",
        "--config",
        preset,
        "--run-dir",
        str(run_dir),
        f"placement.actor={actor}",
        "runner.progress=false",
        *extra,
    ]
    env = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_AUTH_MODE": "disabled"}
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    whole = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    # The first iteration includes warm-up (allocator, lazy process groups); leave it out.
    rows = rows[1:] or rows
    it_key = ITERATION_KEY[app]
    loop = sum(r[it_key] for r in rows)
    steps = (
        sum(r["throughput/env_steps_per_s"] * r[it_key] for r in rows)
        if app == "embodied"
        else float(len(rows))
    )
    return {
        "update s": statistics.median(r["time/update"] for r in rows),
        "iteration s": statistics.median(r[it_key] for r in rows),
        "steps/s": steps / loop,
        "whole s": whole,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", choices=sorted(ITERATION_KEY), default="embodied")
    parser.add_argument("--preset", default="cartpole")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--set", nargs="*", default=[], help="extra config overrides")
    args = parser.parse_args(argv)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="rlinf-scaling-") as tmp:
        for i in range(args.rounds):
            order = list(VARIANTS) if i % 2 == 0 else list(reversed(VARIANTS))
            for name in order:
                run_dir = pathlib.Path(tmp) / f"{name.replace(' ', '_')}-{i}"
                row = run_variant(args.app, args.preset, VARIANTS[name], args.set, run_dir)
                results[name].append(row)
                print(f"round {i} {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()))
    cols = list(next(iter(results.values()))[0])
    print(f"\n{args.app} --config {args.preset} {' '.join(args.set)}: medians of {args.rounds}")
    print(f"| actor | {' | '.join(cols)} |")
    print(f"|---|{'---|' * len(cols)}")
    for name, runs in results.items():
        cells = " | ".join(f"{statistics.median(r[c] for r in runs):.3f}" for c in cols)
        print(f"| {name} | {cells} |")
    base = statistics.median(r["steps/s"] for r in results["1 rank"])
    two = statistics.median(r["steps/s"] for r in results["2 ranks"])
    print(f"2 ranks / 1 rank steps/s: {two / base:.2f}x")


if __name__ == "__main__":
    main()
