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
import pathlib

from _static_vs_dynamic import compare, median_of, train_rows

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="runs per candidate")
    parser.add_argument("--updates", type=int, default=6, help="updates per run")
    parser.add_argument("--horizon", type=int, default=128)
    parser.add_argument("--width", type=int, default=512, help="MLP hidden width")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--only", nargs="*", choices=list(CANDIDATES), help="some candidates")
    args = parser.parse_args(argv)
    shared = workload(args)
    print("workload:", " ".join(shared))

    def run(name: str, tmp: pathlib.Path) -> list[dict[str, float]]:
        return train_rows("embodied", "cartpole", name, [*shared, *CANDIDATES[name]], tmp)[1:]

    columns = [
        ("s/iter", median_of("time/iteration"), ".3f"),
        ("rollout s", median_of("time/rollout"), ".3f"),
        ("update s", median_of("time/update"), ".3f"),
        (
            "lent slots/iter",
            lambda rows: sum(r.get("sched/lent_slots", 0.0) for r in rows) / len(rows),
            ".2f",
        ),
        ("lent update s", median_of("sched/lent_update_s"), ".3f"),
        ("env steps trained", lambda rows: rows[-1]["step"], ".0f"),
    ]
    compare(run, args.only or list(CANDIDATES), STATIC, columns, rounds=args.rounds, unit="iter")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
