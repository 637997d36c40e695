"""Dynamic re-allocation vs the best static placement on the same 2 CPU slots (issue 19).

Workload: embodied CartPole PPO with an update that scales with threads and a rollout about
half of it (MLP ``--width`` 1024 x 1024, 8 envs x ``--horizon`` 128 steps, ``--epochs`` 2 x
4 mini-batches of 256), every candidate training the same number of samples (``--updates``
x 8 envs x ``--horizon`` steps). Each candidate runs through the real CLI
(``rlinf-embodied train``, a fresh process each); its s/iter is the median of
``time/iteration`` after the first.

Why this workload: with rollout R, one-thread update U and the update's 2-thread speed-up
s, static overlap costs max(R, U), a 2-thread update after the rollout R + U/s, and lending
the rollout's slot once the rollout ends R + (U - R)/s. Lending wins only for s well above 1
(a wide MLP: ``benchmarks/update_threads.py`` measures s) and R about U/2 (R = U/2, s = 1.8:
0.78 U against U and 1.06 U, 1.28x).

Candidates (2 slots; ``runner.torch_threads`` 1 unless the name says 2 threads):

- ``collocated 0``: everything on slot 0, taking turns (one slot used);
- ``collocated 0, 2 threads``: the same with 2 threads per process (they take turns, so
  each phase has both cores): the static way to give the update 2 threads;
- ``collocated 0-1``: 2 env workers and a 2-rank data-parallel actor on slots 0-1;
- ``disaggregated``: env + policy on slot 0, actor on slot 1, rollout then update;
- ``disaggregated, 2 threads``: the same with 2 threads per process (the update runs alone,
  on 2 threads: the static counterpart of ``dynamic sequential``);
- ``overlapped``: env + policy on slot 0, actor on slot 1, the next rollout beside the update
  (one step off-policy);
- ``overlapped, 2 threads``: the same with 2 threads per process (4 threads on 2 cores);
- ``dynamic``: overlapped + ``scheduler.dynamic``: when the rollout ends first, its slot
  is lent to the update (2 threads) for the rest of the step;
- ``dynamic sequential``: disaggregated + ``scheduler.dynamic`` (the update gets slot 0
  every time, the rollout never runs beside it).

The "best static" is the fastest of the first seven, so a gain of ``dynamic`` is the gain
of lending, not of a second thread. ``dynamic`` trains on exactly the samples
``overlapped`` trains on (same seeds; the quick test
``apps/embodied/tests/test_embodied_dynamic.py`` checks every metric); the others train
the same number of samples. The speed-up is the best static s/iter over the best dynamic
s/iter; the update's measured thread speed-up (``disaggregated`` over ``disaggregated, 2
threads`` update seconds) is printed too. The load average is printed (a shared machine's
cores are not free: a lent thread helps only if a core is idle).

The real run (quiet machine, ~7-8 min: 9 candidates x 2 rounds, ~25 s each)::

    uv run --locked python benchmarks/dynamic_sched.py            # --rounds 2 (default)
    uv run --locked python benchmarks/dynamic_sched.py --rounds 1 # one round, ~4 min

Goal (issue 19): >= 1.2x over the best static placement.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics

from _static_vs_dynamic import compare, median_of, train_rows

__all__ = ["CANDIDATES", "main"]

# Overrides the workload's runner.torch_threads=1 (later overrides win).
TWO_THREADS = "runner.torch_threads=2"
SPLIT = ["placement.env=0", "placement.rollout=0", "placement.actor=1"]
CANDIDATES: dict[str, list[str]] = {
    "collocated 0": ["placement.env=0", "placement.rollout=0", "placement.actor=0"],
    "collocated 0, 2 threads": [
        "placement.env=0",
        "placement.rollout=0",
        "placement.actor=0",
        TWO_THREADS,
    ],
    "collocated 0-1": ["placement.env=0-1", "placement.rollout=0-1", "placement.actor=0-1"],
    "disaggregated": [*SPLIT, "runner.overlap_update=false"],
    "disaggregated, 2 threads": [*SPLIT, "runner.overlap_update=false", TWO_THREADS],
    "overlapped": [*SPLIT, "runner.overlap_update=true"],
    "overlapped, 2 threads": [*SPLIT, "runner.overlap_update=true", TWO_THREADS],
    "dynamic": [*SPLIT, "runner.overlap_update=true", "scheduler.dynamic=true"],
    "dynamic sequential": [*SPLIT, "runner.overlap_update=false", "scheduler.dynamic=true"],
}
STATIC = tuple(n for n in CANDIDATES if not n.startswith("dynamic"))


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
    parser.add_argument("--rounds", type=int, default=2, help="runs per candidate")
    parser.add_argument("--updates", type=int, default=8, help="updates per run")
    parser.add_argument("--horizon", type=int, default=128)
    parser.add_argument("--width", type=int, default=1024, help="MLP hidden width")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--only", nargs="*", choices=list(CANDIDATES), help="some candidates")
    args = parser.parse_args(argv)
    shared = workload(args)
    print("workload:", " ".join(shared))

    update_s: dict[str, list[float]] = {}

    def run(name: str, tmp: pathlib.Path) -> list[dict[str, float]]:
        rows = train_rows("embodied", "cartpole", name, [*shared, *CANDIDATES[name]], tmp)[1:]
        update_s.setdefault(name, []).append(median_of("time/update")(rows) if rows else 0.0)
        return rows

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
    names = args.only or list(CANDIDATES)
    compare(run, names, STATIC, columns, rounds=args.rounds, unit="iter")
    one, two = "disaggregated", "disaggregated, 2 threads"
    if one in update_s and two in update_s:
        # Both updates run alone on slot 1 after the rollout: their ratio is the thread
        # speed-up s the lending formula needs, measured in the app itself.
        u1, u2 = statistics.median(update_s[one]), statistics.median(update_s[two])
        print(
            f"update thread speed-up s ({one} / {two}, update s): {u1:.3f} / {u2:.3f} = {u1 / u2:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
