"""Dynamic re-allocation vs the best static placement on the same 2 CPU slots (issue 19).

Workload: embodied CartPole PPO with an update heavier than the rollout (a wide MLP, several
epochs), every candidate training the same number of samples (``--updates`` x 8 envs x
``--horizon`` steps). Each candidate runs through the real CLI (``rlinf-embodied train``,
a fresh process each); its s/iter is the median of ``time/iteration`` after the first.

Candidates (2 slots, 1 intra-op thread per slot, as the placement gives):

- ``collocated 0``: everything on slot 0, taking turns (one slot used);
- ``collocated 0-1``: 2 env workers and a 2-rank data-parallel actor on slots 0-1;
- ``disaggregated``: env + policy on slot 0, actor on slot 1, rollout then update;
- ``overlapped``: the same, the next rollout beside the update (one step off-policy);
- ``dynamic``: overlapped + ``scheduler.dynamic``: when the rollout ends first, its slot
  is lent to the update (2 threads) for the rest of the step;
- ``dynamic sequential``: disaggregated + ``scheduler.dynamic`` (the update always gets
  slot 0, the rollout never runs beside it).

``dynamic`` trains on exactly the samples ``overlapped`` trains on (same seeds; the
quick test ``apps/embodied/tests/test_embodied_dynamic.py`` checks every metric); the
others train the same number of samples. The speed-up is the best static s/iter over the
best dynamic s/iter. The load average is printed (a shared machine's cores are not free:
a lent thread helps only if a core is idle).

    uv run --locked python benchmarks/dynamic_sched.py            # one round
    uv run --locked python benchmarks/dynamic_sched.py --rounds 3 # medians over rounds

Goal (issue 19): >= 1.2x over the best static placement.
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

SPLIT = ["placement.env=0", "placement.rollout=0", "placement.actor=1"]
CANDIDATES: dict[str, list[str]] = {
    "collocated 0": ["placement.env=0", "placement.rollout=0", "placement.actor=0"],
    "collocated 0-1": ["placement.env=0-1", "placement.rollout=0-1", "placement.actor=0-1"],
    "disaggregated": [*SPLIT, "runner.overlap_update=false"],
    "overlapped": [*SPLIT, "runner.overlap_update=true"],
    "dynamic": [*SPLIT, "runner.overlap_update=true", "scheduler.dynamic=true"],
    "dynamic sequential": [*SPLIT, "runner.overlap_update=false", "scheduler.dynamic=true"],
}
STATIC = ("collocated 0", "collocated 0-1", "disaggregated", "overlapped")


def workload(args: argparse.Namespace) -> list[str]:
    """The overrides every candidate shares."""
    steps = args.updates * 8 * args.horizon
    width = args.width
    return [
        "env.num_envs=8",
        f"runner.horizon={args.horizon}",
        f"runner.total_env_steps={steps}",
        "runner.policy_in_env=true",
        "runner.torch_threads=1",
        f"policy.hidden_sizes=[{width},{width}]",
        f"algo.epochs={args.epochs}",
        "algo.minibatches=4",
        "runner.checkpoint_every=0",
        "runner.metric_backends=[jsonl]",
        "runner.progress=false",
    ]


def run(name: str, overrides: list[str], tmp: pathlib.Path) -> dict[str, float]:
    """One training run; returns medians (after the first iteration) of its timings."""
    from rlinf.core import read_metrics

    cli = shutil.which("rlinf-embodied", path=str(pathlib.Path(sys.executable).parent))
    if cli is None:
        raise SystemExit("rlinf-embodied is not installed in this environment (uv sync)")
    run_dir = tmp / name.replace(" ", "_")
    shutil.rmtree(run_dir, ignore_errors=True)
    log = tmp / f"{run_dir.name}.log"
    cmd = [cli, "train", "--config", "cartpole", "--run-dir", str(run_dir), *overrides]
    env = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_AUTH_MODE": "disabled"}
    with log.open("w") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if code:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise SystemExit(f"{name}: exited with {code}; log {log}:\n{tail}")
    rows = read_metrics(run_dir / "metrics.jsonl")[1:]
    if not rows:
        raise SystemExit(f"{name}: needs >= 2 updates (--updates)")

    def med(key: str) -> float:
        return statistics.median(r.get(key, 0.0) for r in rows)

    return {
        "s_iter": med("time/iteration"),
        "rollout": med("time/rollout"),
        "update": med("time/update"),
        "lent": sum(r.get("sched/lent_slots", 0.0) for r in rows) / len(rows),
        "lent_s": med("sched/lent_update_s"),
        "samples": rows[-1]["step"],  # env steps trained on, in total
        "version": rows[-1]["train/weight_version"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="runs per candidate")
    parser.add_argument("--updates", type=int, default=6, help="updates per run")
    parser.add_argument("--horizon", type=int, default=128)
    parser.add_argument("--width", type=int, default=512, help="MLP hidden width")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--only", nargs="*", choices=list(CANDIDATES), help="some candidates")
    args = parser.parse_args(argv)
    names = args.only or list(CANDIDATES)
    shared = workload(args)
    print(f"load average before: {os.getloadavg()[0]:.1f} (cores: {os.cpu_count()})")
    print("workload:", " ".join(shared))
    start = time.perf_counter()
    results: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="dynsched-") as tmp:
        for _ in range(args.rounds):
            for name in names:  # interleaved: load changes hit every candidate alike
                results[name].append(run(name, [*shared, *CANDIDATES[name]], pathlib.Path(tmp)))
    print(f"load average after: {os.getloadavg()[0]:.1f}; wall {time.perf_counter() - start:.0f} s")
    print()
    header = (
        "| candidate | s/iter | rollout s | update s | lent slots/iter | lent update s | samples |"
    )
    print(header)
    print("|" + "---|" * 7)
    best: dict[str, float] = {}
    for name in names:
        rows = results[name]
        s = statistics.median(r["s_iter"] for r in rows)
        best[name] = s
        cells = [statistics.median(r[k] for r in rows) for k in ("rollout", "update")]
        lent = statistics.median(r["lent"] for r in rows)
        lent_s = statistics.median(r["lent_s"] for r in rows)
        samples = {int(r["samples"]) for r in rows}
        print(
            f"| {name} | {s:.3f} | {cells[0]:.3f} | {cells[1]:.3f} | {lent:.2f} | {lent_s:.3f} "
            f"| {', '.join(map(str, sorted(samples)))} |"
        )
    static = {n: best[n] for n in STATIC if n in best}
    dynamic = {n: best[n] for n in best if n not in STATIC}
    if static and dynamic:
        s_name = min(static, key=static.__getitem__)
        d_name = min(dynamic, key=dynamic.__getitem__)
        speedup = static[s_name] / dynamic[d_name]
        verdict = "met" if speedup >= 1.2 else "NOT met"
        print(
            f"\nbest static: {s_name} {static[s_name]:.3f} s/iter; best dynamic: {d_name} "
            f"{dynamic[d_name]:.3f} s/iter; speed-up {speedup:.2f}x (goal 1.2x: {verdict})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
