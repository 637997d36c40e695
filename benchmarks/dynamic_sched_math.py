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
import pathlib

from _static_vs_dynamic import compare, median_of, train_rows

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="runs per candidate")
    parser.add_argument("--steps", type=int, default=5, help="training steps per run")
    parser.add_argument("--hidden", type=int, default=128, help="tiny model hidden size")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--only", nargs="*", choices=list(CANDIDATES), help="some candidates")
    args = parser.parse_args(argv)
    shared = workload(args)
    print("workload:", " ".join(shared))

    def run(name: str, tmp: pathlib.Path) -> list[dict[str, float]]:
        rows = train_rows("math", "grpo", name, [*shared, *CANDIDATES[name]], tmp)
        return [r for r in rows if "time/step" in r][1:]

    columns = [
        ("s/step", median_of("time/step"), ".3f"),
        ("generate s", median_of("time/generate"), ".3f"),
        ("update s", median_of("time/update"), ".3f"),
        (
            "lent slots/step",
            lambda rows: sum(r.get("sched/lent_slots", 0.0) for r in rows) / len(rows),
            ".2f",
        ),
        ("lent update s", median_of("sched/lent_update_s"), ".3f"),
        ("trained tokens", lambda rows: sum(r["train/trained_tokens"] for r in rows), ".0f"),
    ]
    compare(run, args.only or list(CANDIDATES), STATIC, columns, rounds=args.rounds, unit="step")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
