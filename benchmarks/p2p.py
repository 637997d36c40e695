"""Bandwidth of rlinf.core send/recv and broadcast vs raw torch.distributed (gloo).

Both are measured in the same run, between the same Ray worker processes, on CPU tensors of
64 MiB (override with --mib). Prints GiB/s and the ratio ours / raw (goal: >= 0.8).

    uv run python benchmarks/p2p.py --iters 10
"""

from __future__ import annotations

import argparse
import os
import socket
import time

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")

import torch
import torch.distributed as dist

from rlinf.core import Cluster, ClusterConfig, Worker


class Bench(Worker):
    """Rank 0 is the source; the other ranks receive."""

    def raw_init(self, host: str, port: int) -> None:
        dist.init_process_group(
            "gloo", init_method=f"tcp://{host}:{port}", rank=self.rank, world_size=self.world_size
        )

    def sendrecv(self, raw: bool, numel: int, iters: int, into: bool = True) -> float:
        """Seconds for ``iters`` transfers 0 -> 1, timed on the receiver after a warm-up."""
        if self.rank > 1:
            return 0.0
        buf = torch.ones(numel, dtype=torch.float32)
        peer = 1 - self.rank
        for i in range(iters + 1):
            if i == 1:
                start = time.perf_counter()
            if self.rank == 0:
                if raw:
                    dist.send(buf, peer)
                else:
                    self.send(buf, self.group_name, peer)
            elif raw:
                dist.recv(buf, peer)
            else:
                buf = self.recv(self.group_name, peer, out=buf if into else None)
        return time.perf_counter() - start

    def bcast(self, raw: bool, numel: int, iters: int, into: bool = True) -> float:
        """Seconds for ``iters`` broadcasts from rank 0 to all others, timed after a warm-up."""
        buf = torch.ones(numel, dtype=torch.float32)
        dsts = [(self.group_name, r) for r in range(1, self.world_size)]
        for i in range(iters + 1):
            if i == 1:
                start = time.perf_counter()
            if raw:
                dist.broadcast(buf, 0)
            else:
                src = buf if self.rank == 0 else None
                out = buf if (into and self.rank > 0) else None
                buf = self.broadcast(src, (self.group_name, 0), dsts, out=out)
        return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64, help="payload size in MiB")
    parser.add_argument("--iters", type=int, default=10, help="timed transfers per measurement")
    parser.add_argument("--ranks", type=int, default=4, help="processes (broadcast 1 -> ranks-1)")
    args = parser.parse_args()
    numel = args.mib * 1024 * 1024 // 4
    gib = args.mib / 1024 * args.iters

    cluster = Cluster(
        ClusterConfig(
            num_cpus=args.ranks, devices_per_node=args.ranks, object_store_memory=256 * 1024**2
        )
    )
    try:
        pgs = cluster.allocate({"bench": f"0-{args.ranks - 1}"})
        group = cluster.launch(Bench, pgs, "bench")
        import ray

        group.call("raw_init", ray.util.get_node_ip_address(), free_port()).wait(timeout=120)
        rows = []
        cases = [
            ("send/recv", "sendrecv", True),
            ("send/recv (fresh buffer)", "sendrecv", False),
            ("broadcast", "bcast", True),
            ("broadcast (fresh buffer)", "bcast", False),
        ]
        for label, method, into in cases:
            seconds: dict[bool, list[float]] = {}
            # alternate to spread any background load evenly over both
            for raw in (False, True, False, True):
                t = max(group.call(method, raw, numel, args.iters, into).wait(timeout=600))
                seconds.setdefault(raw, []).append(t)
            ours, base = min(seconds[False]), min(seconds[True])
            rows.append((label, gib / ours, gib / base, base / ours))
        print(f"payload {args.mib} MiB, {args.iters} iterations, {args.ranks} ranks, gloo on CPU")
        print("(fresh buffer: rlinf allocates the received tensors; raw always reuses one)")
        print(f"{'op':<26} {'rlinf GiB/s':>12} {'raw GiB/s':>10} {'ratio':>6}")
        for label, ours_bw, raw_bw, ratio in rows:
            print(f"{label:<26} {ours_bw:>12.2f} {raw_bw:>10.2f} {ratio:>6.2f}")
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
