"""Weight sync from 2 FSDP2 actor ranks to 2 rollout ranks: rlinf's collective path vs a raw
gloo broadcast of the same bytes, and seconds per sync of both rlinf paths (object store,
collective) at 1M / 10M / 100M parameters.

The models are Qwen2 causal LMs built from a config (random weights, fp32, no download).
Each round runs every method once, alternating, so load from other jobs hits all alike;
the table shows medians over ``--rounds``. Timed from the driver, call to last reply:

* ``collective``: ``sync_weights(actor, rollout, method="collective")``: every actor rank
  gathers its shards bucket by bucket, rank 0 broadcasts each bucket of ``--bucket-mib``
  into the rollout models' own tensors;
* ``object_store``: every actor rank gathers the full state dict (``full_state_dict``, what
  the object-store path needs under fsdp2), rank 0 puts one snapshot, each rollout rank
  fetches and loads it;
* ``raw gloo``: one ``ProcessGroupGloo.broadcast`` of a flat buffer as large as the state
  dict, from actor rank 0 to the rollout ranks (a group of their own, no rlinf code),
  preallocated on both sides: the transport's ceiling.

    RAY_ENABLE_UV_RUN_RUNTIME_ENV=0 RAY_AUTH_MODE=disabled \\
        uv run --locked python benchmarks/weight_sync.py --rounds 3
"""

from __future__ import annotations

import argparse
import datetime
import os
import socket
import statistics
import time
from typing import Any

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")

import ray
import torch
import torch.distributed as dist

from rlinf.core import Cluster, ClusterConfig, Worker
from rlinf.models import (
    VersionedWeights,
    WeightBroadcaster,
    WeightReceiver,
    WeightSnapshot,
    WeightStager,
    resolve_snapshot,
    sync_weights,
)
from rlinf.models.train import TrainingConfig, build_backend

# (hidden, intermediate, layers, vocab) -> about 1M, 10M and 100M parameters.
SIZES = {
    "1M": (64, 192, 2, 7200),
    "10M": (256, 768, 4, 13500),
    "100M": (768, 2048, 8, 32000),
}


def _model(size: str) -> torch.nn.Module:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    h, i, layers, vocab = SIZES[size]
    config = Qwen2Config(
        hidden_size=h,
        intermediate_size=i,
        num_hidden_layers=layers,
        num_attention_heads=max(1, h // 64),
        num_key_value_heads=max(1, h // 128),
        vocab_size=vocab,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    return Qwen2ForCausalLM(config)


class _Raw:
    """A bare gloo group of actor rank 0 (rank 0) and the rollout ranks, for the baseline."""

    pg: Any = None
    buf: torch.Tensor | None = None

    def raw_store(self) -> tuple[str, int]:
        host = ray.util.get_node_ip_address()
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        self._store = dist.TCPStore(host, port, is_master=True, wait_for_workers=False)
        return host, port

    def raw_join(self, host: str, port: int, rank: int, world: int, nbytes: int) -> None:
        store = self._store if rank == 0 else dist.TCPStore(host, port, is_master=False)
        opts = dist.ProcessGroupGloo._Options()
        opts._timeout = datetime.timedelta(seconds=600)
        opts._devices = [dist.ProcessGroupGloo.create_device(hostname=host)]
        self.pg = dist.ProcessGroupGloo(dist.PrefixStore("raw/", store), rank, world, opts)
        self.buf = torch.ones(nbytes, dtype=torch.uint8)

    def raw_broadcast(self) -> None:
        opts = dist.BroadcastOptions()
        opts.rootRank = 0
        self.pg.broadcast([self.buf], opts).wait()


class Trainer(WeightBroadcaster, WeightStager, _Raw, Worker):
    def __init__(self, size: str) -> None:
        super().__init__()
        torch.set_num_threads(1)
        backend = "fsdp2" if self.world_size > 1 else "torch"
        if backend == "fsdp2":
            self.init_torch_distributed()
        self.backend = build_backend(
            TrainingConfig(backend=backend), _model(size), lambda p: torch.optim.SGD(p, lr=0.1)
        )
        self.version = 0
        self._full: dict[str, torch.Tensor] | None = None

    def state_bytes(self) -> tuple[int, int]:
        """(parameters, bytes of the full state dict)."""
        sd = self.backend.model.state_dict()
        numel = sum(p.numel() for p in self.backend.model.parameters())
        return numel, sum(t.numel() * t.element_size() for t in sd.values())

    def bump(self) -> None:
        self.version += 1
        self._full = None

    def gather_full(self) -> None:
        self._full = self.backend.full_state_dict()

    def export_weights(self) -> WeightSnapshot:
        assert self._full is not None
        return WeightSnapshot(self.version, self._full)

    def weight_state(self) -> tuple[int, dict[str, torch.Tensor]]:
        return self.version, self.backend.model.state_dict()


class Generator(WeightReceiver, _Raw, Worker):
    def __init__(self, size: str) -> None:
        super().__init__()
        torch.set_num_threads(1)
        self.model = _model(size).eval()
        self.weights = VersionedWeights(self.model)

    def weight_targets(self) -> tuple[VersionedWeights, dict[str, torch.Tensor]]:
        return self.weights, self.model.state_dict()

    def load_weights(self, ref: Any) -> int:
        self.weights.load(resolve_snapshot(ref))
        return self.weights.version


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_size(cluster: Cluster, size: str, rounds: int, bucket: int, actors: int) -> dict:
    pgs = cluster.allocate({"actor": "0-1" if actors == 2 else "0", "rollout": "2-3"})
    actor = cluster.launch(Trainer, pgs, "actor", name=f"actor-{size}", args=(size,))
    rollout = cluster.launch(Generator, pgs, "rollout", name=f"rollout-{size}", args=(size,))
    try:
        numel, nbytes = actor.call("state_bytes", ranks=0).wait(600)[0]
        host, port = actor.call("raw_store", ranks=0).wait(60)[0]
        world = 1 + rollout.world_size
        joins = [actor.call("raw_join", host, port, 0, world, nbytes, ranks=0)]
        joins += [
            rollout.call("raw_join", host, port, 1 + r, world, nbytes, ranks=r)
            for r in range(rollout.world_size)
        ]
        for j in joins:
            j.wait(600)

        def collective() -> None:
            sync_weights(actor, rollout, 600, method="collective", bucket_bytes=bucket)

        def object_store() -> None:
            actor.call("gather_full").wait(600)
            sync_weights(actor, rollout, 600, method="object_store")

        def raw_gloo() -> None:
            futures = [actor.call("raw_broadcast", ranks=0), rollout.call("raw_broadcast")]
            for f in futures:
                f.wait(600)

        methods = {"collective": collective, "object_store": object_store, "raw gloo": raw_gloo}
        times: dict[str, list[float]] = {m: [] for m in methods}
        for r in range(rounds + 1):  # round 0 warms up (group set-up, first calls)
            for name, fn in methods.items():
                if name != "raw gloo":
                    actor.call("bump").wait(60)
                t = _timed(fn)
                if r > 0:
                    times[name].append(t)
        return {
            "params": numel,
            "bytes": nbytes,
            **{m: statistics.median(t) for m, t in times.items()},
        }
    finally:
        actor.kill()
        rollout.kill()
        pgs.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bucket-mib", type=float, default=64.0)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument(
        "--actor-ranks", type=int, default=2, choices=(1, 2), help="1: plain torch, no shards"
    )
    args = parser.parse_args()
    bucket = int(args.bucket_mib * 1024**2)
    config = ClusterConfig(
        num_cpus=4, num_gpus=0, devices_per_node=4, object_store_memory=3 * 1024**3
    )
    results = {}
    with Cluster(config) as cluster:
        for size in args.sizes:
            results[size] = run_size(cluster, size, args.rounds, bucket, args.actor_ranks)
            print(f"{size}: {results[size]}", flush=True)
    actors = "2 FSDP2 actor ranks" if args.actor_ranks == 2 else "1 actor rank (torch)"
    print(
        f"\n{actors} -> 2 rollout ranks, CPU/gloo, bucket {args.bucket_mib:g} MiB, "
        f"median of {args.rounds} rounds (seconds per sync)"
    )
    print(
        f"{'model':>6} {'params':>8} {'MB':>7} {'object_store':>13} {'collective':>11} {'raw gloo':>9}"
    )
    for size, r in results.items():
        raw = f"{r['raw gloo']:9.3f}" if "raw gloo" in r else f"{'-':>9}"
        print(
            f"{size:>6} {r['params'] / 1e6:7.1f}M {r['bytes'] / 1e6:7.1f} "
            f"{r['object_store']:13.3f} {r['collective']:11.3f} {raw}"
        )
    for size, r in results.items():
        if "raw gloo" in r:
            ours, base = r["bytes"] / r["collective"], r["bytes"] / r["raw gloo"]
            print(
                f"\n{size}: collective {ours / 1e9:.3f} GB/s, raw gloo broadcast "
                f"{base / 1e9:.3f} GB/s of the same bytes: ratio {ours / base:.2f} (goal >= 0.8)"
            )


if __name__ == "__main__":
    main()
