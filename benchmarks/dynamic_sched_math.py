"""Dynamic re-allocation in the LLM flow vs the best static placement, 2 CPU slots (issue 19).

Workload: math GRPO on a tiny Qwen2 model (no SFT warm-up: timing only), with an update
heavier than the rollout (several epochs of small mini-batches), every candidate training
the same samples (``--steps`` x ``prompts_per_step`` x ``n`` responses, same seeds). Each
candidate runs through the real CLI (``rlinf-math train``, a fresh process each); its
s/step is the median of ``time/step`` after the first step.

Candidates (2 slots, 1 intra-op thread per slot, as the placement gives):

- ``collocated 0``: actor, rollout and reward on slot 0, taking turns (one slot used);
- ``disaggregated``: rollout + reward on slot 0, actor on slot 1, step after step (k=0);
- ``pipelined``: the same with ``runner.max_staleness=1`` (the next step's rollout beside
  the update; samples one version old, so not the same samples as the others);
- ``dynamic``: disaggregated + ``scheduler.dynamic``: once a step's rollouts and scores
  are in, slot 0 is lent to the actor's update (2 threads) until it ends.

``dynamic`` trains on the samples ``disaggregated`` trains on (same seeds; the slow test
``apps/math/tests/test_math_dynamic.py`` checks every metric). The speed-up is the best
static s/step over ``dynamic``'s. The load average is printed (a shared machine's cores
are not free: a lent thread helps only if a core is idle).

    uv run --locked python benchmarks/dynamic_sched_math.py            # one round
    uv run --locked python benchmarks/dynamic_sched_math.py --rounds 3 # medians over rounds
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

__all__ = ["CANDIDATES", "main"]

SPLIT = ["placement.actor=1", "placement.rollout=0", "placement.reward=0"]
CANDIDATES: dict[str, list[str]] = {
    "collocated 0": ["placement.actor=0", "placement.rollout=0", "placement.reward=0"],
    "disaggregated": [*SPLIT, "runner.max_staleness=0"],
    "pipelined": [*SPLIT, "runner.max_staleness=1", "algo.off_policy_correction=tis"],
    "dynamic": [*SPLIT, "runner.max_staleness=0", "scheduler.dynamic=true"],
}
STATIC = ("collocated 0", "disaggregated", "pipelined")


def workload(args: argparse.Namespace) -> list[str]:
    """The overrides every candidate shares."""
    h = args.hidden
    return [
        "sft.steps=0",
        f"model.tiny.hidden_size={h}",
        f"model.tiny.intermediate_size={4 * h}",
        f"model.tiny.num_layers={args.layers}",
        "generation.max_new_tokens=12",
        "generation.n=8",
        "runner.prompts_per_step=8",
        f"runner.steps={args.steps}",
        f"algo.epochs={args.epochs}",
        "algo.mini_batch_size=16",
        "runner.eval_every=0",
        "runner.checkpoint_every=0",
        "runner.torch_threads=1",
        "runner.metric_backends=[jsonl]",
        "runner.progress=false",
        "checker.num_workers=1",
        "cluster.num_cpus=2",
        "cluster.devices=2",
    ]


def run(name: str, overrides: list[str], tmp: pathlib.Path) -> dict[str, float]:
    """One training run; returns medians (after the first step) of its timings."""
    from rlinf.core import read_metrics

    cli = shutil.which("rlinf-math", path=str(pathlib.Path(sys.executable).parent))
    if cli is None:
        raise SystemExit("rlinf-math is not installed in this environment (uv sync)")
    run_dir = tmp / name.replace(" ", "_")
    shutil.rmtree(run_dir, ignore_errors=True)
    log = tmp / f"{run_dir.name}.log"
    cmd = [cli, "train", "--config", "grpo", "--run-dir", str(run_dir), *overrides]
    env = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_AUTH_MODE": "disabled"}
    with log.open("w") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if code:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise SystemExit(f"{name}: exited with {code}; log {log}:\n{tail}")
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "time/step" in r][1:]
    if not rows:
        raise SystemExit(f"{name}: needs >= 2 steps (--steps)")

    def med(key: str) -> float:
        return statistics.median(r.get(key, 0.0) for r in rows)

    return {
        "s_step": med("time/step"),
        "generate": med("time/generate"),
        "update": med("time/update"),
        "lent": sum(r.get("sched/lent_slots", 0.0) for r in rows) / len(rows),
        "lent_s": med("sched/lent_update_s"),
        "tokens": sum(r["train/trained_tokens"] for r in rows),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="runs per candidate")
    parser.add_argument("--steps", type=int, default=5, help="training steps per run")
    parser.add_argument("--hidden", type=int, default=128, help="tiny model hidden size")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--only", nargs="*", choices=list(CANDIDATES), help="some candidates")
    args = parser.parse_args(argv)
    names = args.only or list(CANDIDATES)
    shared = workload(args)
    print(f"load average before: {os.getloadavg()[0]:.1f} (cores: {os.cpu_count()})")
    print("workload:", " ".join(shared))
    start = time.perf_counter()
    results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="dynsched-math-") as tmp:
        for _ in range(args.rounds):
            for name in names:  # interleaved: load changes hit every candidate alike
                results[name].append(run(name, [*shared, *CANDIDATES[name]], pathlib.Path(tmp)))
    print(f"load average after: {os.getloadavg()[0]:.1f}; wall {time.perf_counter() - start:.0f} s")
    print()
    print(
        "| candidate | s/step | generate s | update s | lent slots/step | lent update s "
        "| trained tokens |"
    )
    print("|" + "---|" * 7)
    best: dict[str, float] = {}
    for name in names:
        rows = results[name]
        best[name] = s = statistics.median(r["s_step"] for r in rows)
        cells = [statistics.median(r[k] for r in rows) for k in ("generate", "update")]
        lent = statistics.median(r["lent"] for r in rows)
        lent_s = statistics.median(r["lent_s"] for r in rows)
        tokens = sorted({int(r["tokens"]) for r in rows})
        print(
            f"| {name} | {s:.3f} | {cells[0]:.3f} | {cells[1]:.3f} | {lent:.2f} | {lent_s:.3f} "
            f"| {', '.join(map(str, tokens))} |"
        )
    static = {n: best[n] for n in STATIC if n in best}
    if static and "dynamic" in best:
        s_name = min(static, key=static.__getitem__)
        speedup = static[s_name] / best["dynamic"]
        verdict = "met" if speedup >= 1.2 else "NOT met"
        print(
            f"\nbest static: {s_name} {static[s_name]:.3f} s/step; dynamic "
            f"{best['dynamic']:.3f} s/step; speed-up {speedup:.2f}x (goal 1.2x: {verdict})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
