"""Thread speed-up s of an MLP policy update on the CPU: 1 vs 2 intra-op threads (issue 19).

Lending a slot to the update pays only when the update runs faster on 2 threads; this
measures s = t(1 thread) / t(2 threads) for the workload ``dynamic_sched.py`` uses: an
actor-critic MLP (obs 4, two hidden layers of ``--width``, a 2-way policy head and a value
head), ``--samples`` samples, ``--epochs`` x ``--minibatches`` Adam steps. Same process,
thread counts alternating over ``--rounds`` (load changes hit both alike); medians.
``OMP_WAIT_POLICY=PASSIVE`` as the lending actor runs (set before torch starts OpenMP).

    OMP_WAIT_POLICY=PASSIVE uv run --locked python benchmarks/update_threads.py --width 512 1024
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

__all__ = ["main", "time_update"]


def time_update(width: int, samples: int, epochs: int, minibatches: int, threads: int) -> float:
    """Seconds of one update (``epochs`` x ``minibatches`` Adam steps) on ``threads`` threads."""
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    trunk = torch.nn.Sequential(
        torch.nn.Linear(4, width), torch.nn.Tanh(), torch.nn.Linear(width, width), torch.nn.Tanh()
    )
    heads = torch.nn.Linear(width, 3)  # 2 logits + 1 value
    params = [*trunk.parameters(), *heads.parameters()]
    opt = torch.optim.Adam(params, lr=1e-4)
    obs = torch.randn(samples, 4, generator=g)
    act = torch.randint(0, 2, (samples,), generator=g)
    ret = torch.randn(samples, generator=g)
    size = samples // minibatches
    start = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(samples, generator=g)
        for i in range(minibatches):
            idx = perm[i * size : (i + 1) * size]
            out = heads(trunk(obs[idx]))  # [size, 3]
            logp = torch.log_softmax(out[:, :2], -1).gather(1, act[idx, None]).squeeze(1)
            loss = -(logp * ret[idx]).mean() + ((out[:, 2] - ret[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--samples", type=int, default=1024, help="8 envs x horizon")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--minibatches", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
    print(f"load average before: {os.getloadavg()}")
    print("| width | samples | epochs x mb | 1 thread s | 2 threads s | s (speed-up) |")
    print("|---|---|---|---|---|---|")
    for w in args.width:
        shape = (w, args.samples, args.epochs, args.minibatches)
        time_update(*shape, 1)  # warm-up (first-touch allocations, kernel selection)
        t: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(args.rounds):
            for threads in (1, 2):
                t[threads].append(time_update(*shape, threads))
        t1, t2 = statistics.median(t[1]), statistics.median(t[2])
        print(
            f"| {w} | {args.samples} | {args.epochs} x {args.minibatches} | {t1:.3f} | "
            f"{t2:.3f} | {t1 / t2:.2f} |"
        )
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
