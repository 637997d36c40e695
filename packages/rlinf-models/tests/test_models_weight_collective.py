"""Collective weight sync (sync_weights(method="collective")): from 1 (plain torch) and 2
(fsdp2, sharded: each rank sends its own rows) trainer ranks to 2 generator ranks, in
buckets, version checked, with no weight bytes through the driver."""

from __future__ import annotations

import sys
import uuid

import pytest
import ray
import torch
from ray import cloudpickle
from torch import nn

from rlinf.core import Cluster, ClusterConfig, Worker, WorkerError, count_driver_traffic
from rlinf.models import (
    VersionedWeights,
    WeightBroadcaster,
    WeightReceiver,
    choose_weight_sync,
    sync_weights,
)
from rlinf.models._weight_buckets import (
    Bucket,
    Piece,
    WeightManifest,
    _row_sharded,
    pieces,
    plan_buckets,
)
from rlinf.models.train import TrainingConfig, build_backend

# The workers below are defined here; Ray workers cannot import this module by name.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

BUCKET = 4096  # bytes: pieces of 256 B or more go alone (the 128x128 weight's rows), the
# 24 small layers' pieces are packed


class Net(nn.Module):
    """A 64 KiB weight, 24 tiny layers (many small tensors), a BatchNorm (float buffers
    and a 0-dim int64 counter) and a bf16 buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.big = nn.Linear(128, 128)
        self.small = nn.ModuleList(nn.Linear(4, 4) for _ in range(24))
        self.norm = nn.BatchNorm1d(4)
        self.register_buffer("scale", torch.ones(3, dtype=torch.bfloat16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``[B, 128]`` -> ``[B]``."""
        h = self.big(x)[:, :4]
        for layer in self.small:
            h = torch.tanh(layer(h))
        return self.norm(h).sum(-1) * self.scale.float().sum()


class Trainer(WeightBroadcaster, Worker):
    def __init__(self, backend: str) -> None:
        super().__init__()
        if backend == "fsdp2":
            self.init_torch_distributed()
        self.reset(backend)

    def reset(self, backend: str) -> None:
        """The state of a freshly launched trainer (fsdp2: once, at launch only)."""
        torch.manual_seed(0)
        self.backend = build_backend(
            TrainingConfig(backend=backend),
            Net(),
            lambda params: torch.optim.SGD(params, lr=0.1),
        )
        self.version = 0

    def step(self) -> int:
        """One update on the same batch on every rank, so the weights change."""
        g = torch.Generator().manual_seed(self.version)
        x = torch.randn(8, 128, generator=g)
        self.backend.model.train()
        self.backend.zero_grad()
        self.backend.backward(self.backend.model(x).pow(2).mean() / self.backend.world_size)
        self.backend.step()
        with torch.no_grad():
            self.backend.model.scale.add_(1.0)
        self.version += 1
        return self.version

    def set_version(self, version: int) -> None:
        self.version = version

    def full(self) -> dict[str, torch.Tensor]:
        """The full state dict (a collective under fsdp2)."""
        return self.backend.full_state_dict()

    def weight_state(self) -> tuple[int, dict[str, torch.Tensor]]:
        return self.version, self.backend.model.state_dict()

    def row_sharded(self) -> list[str]:
        """Tensors this rank sends rows of (rather than rank 0 sending them whole)."""
        state = self.backend.model.state_dict()
        return [k for k, t in state.items() if _row_sharded(t, self.world_size)]


class Holder(WeightReceiver, Worker):
    def __init__(self) -> None:
        super().__init__()
        self.reset()

    def reset(self) -> None:
        """The state of a freshly launched holder: no version, weights of its own."""
        torch.manual_seed(100 + self.rank)  # different from the trainer's weights
        self.model = Net().eval()
        self.weights = VersionedWeights(self.model)
        self.buffers_at_start = [p.data_ptr() for p in self.model.parameters()]

    def weight_targets(self) -> tuple[VersionedWeights, dict[str, torch.Tensor]]:
        return self.weights, self.model.state_dict()

    def held(self) -> tuple[int, dict[str, torch.Tensor], bool]:
        """Version, state and whether the parameters are still the same storage."""
        same = self.buffers_at_start == [p.data_ptr() for p in self.model.parameters()]
        return self.weights.version, self.model.state_dict(), same


@pytest.fixture(scope="module")
def ray_init_kwargs():
    return {"num_cpus": 4, "object_store_memory": 256 * 1024**2}


@pytest.fixture(scope="module")
def cluster(ray_cluster):
    # Joins the shared Ray (root conftest.py); shutdown kills what this module launched.
    c = Cluster(
        ClusterConfig(
            num_cpus=4,
            num_gpus=0,
            devices_per_node=4,
            object_store_memory=256 * 1024**2,
            namespace=ray.get_runtime_context().namespace,
        )
    )
    try:
        yield c
    finally:
        c.shutdown()


def _groups(cluster, actor_spec: str, backend: str):
    tag = uuid.uuid4().hex[:6]
    pgs = cluster.allocate({"trainer": actor_spec, "holder": "2-3"})
    trainer = cluster.launch(Trainer, pgs, "trainer", name=f"trainer-{tag}", args=(backend,))
    holder = cluster.launch(Holder, pgs, "holder", name=f"holder-{tag}")
    return pgs, trainer, holder


@pytest.fixture(scope="module")
def torch_launched(cluster):
    # One torch trainer and two holders serve both tests that need that layout: three
    # worker processes importing torch take a while to start.
    pgs, trainer, holder = _groups(cluster, "0", "torch")
    yield trainer, holder
    trainer.kill()
    holder.kill()
    pgs.remove()


@pytest.fixture
def torch_groups(torch_launched):
    """``torch_launched`` reset to the state of a fresh launch."""
    trainer, holder = torch_launched
    trainer.call("reset", "torch").wait(60)
    holder.call("reset").wait(60)
    return trainer, holder


def _assert_holders_equal(trainer, holder, version: int) -> None:
    full = trainer.call("full").wait(60)[0]
    for held_version, state, same_storage in holder.call("held").wait(60):
        assert held_version == version
        assert same_storage  # received in place, no new parameter tensors
        assert state.keys() == full.keys()
        for k, v in full.items():
            assert state[k].dtype == v.dtype and torch.equal(state[k], v), k


def test_buckets_group_small_tensors_and_send_large_ones_alone():
    # 16-byte alignment: 10 -> [0, 10), 20 -> [16, 36); 100 > 64 alone; 50 does not fit
    # after 5 (16 + 50 > 64): 5 alone; empty tensors are skipped.
    got = plan_buckets([10, 20, 0, 100, 5, 50, 3, 4], 64, alone_bytes=64)
    assert got == [
        Bucket((0, 1), (0, 16), 36, False),
        Bucket((3,), (0,), 100, True),
        Bucket((4,), (0,), 5, True),
        Bucket((5,), (0,), 50, True),
        Bucket((6, 7), (0, 16), 20, False),
    ]
    # Default: pieces of bucket_bytes / 16 (here 64) or more go alone, as they are.
    assert plan_buckets([10, 64, 63, 20], 1024) == [
        Bucket((0,), (0,), 10, True),
        Bucket((1,), (0,), 64, True),
        Bucket((2, 3), (0, 64), 84, False),
    ]
    with pytest.raises(ValueError, match="bucket_bytes must be >= 16, got 8"):
        plan_buckets([1], 8)


def test_each_trainer_rank_sends_its_torch_chunk_rows_and_rank_0_the_rest():
    manifest = WeightManifest(
        version=3,
        names=("w", "one_row", "b", "empty"),
        shapes=((5, 3), (1, 4), (7,), (0, 2)),
        dtypes=("float32", "float32", "bfloat16", "float32"),
        sharded=(True, True, False, True),
        sources=2,
        bucket_bytes=64,
        cuda=False,
    )
    # 5 rows in chunks of 3: rows 0-2 (elements 0-8) and 3-4 (9-14); the single row of
    # "one_row" is rank 0's, rank 1's chunk is empty; "b" is whole from rank 0.
    assert pieces(manifest, 0) == [Piece(0, 0, 9), Piece(1, 0, 4), Piece(2, 0, 7)]
    assert pieces(manifest, 1) == [Piece(0, 9, 15)]


# fsdp2 first: its groups take all four slots and are removed before `torch_launched`
# (slots 0, 2, 3, kept to the end of the module) is launched for the torch case.
@pytest.mark.parametrize(("actor_spec", "backend"), [("0-1", "fsdp2"), ("0", "torch")])
def test_collective_sync_gives_the_actors_full_state_on_every_rank(
    cluster, request, actor_spec, backend
):
    if backend == "torch":
        _check_collective_sync(*request.getfixturevalue("torch_groups"), backend)
        return
    pgs, trainer, holder = _groups(cluster, actor_spec, backend)
    try:
        _check_collective_sync(trainer, holder, backend)
    finally:
        trainer.kill()
        holder.kill()
        pgs.remove()


def _check_collective_sync(trainer, holder, backend: str) -> None:
    sharded = trainer.call("row_sharded").wait(60)
    # fsdp2: every parameter is split by rows and each rank sends its own; buffers whole.
    assert all(("big.weight" in keys) == (backend == "fsdp2") for keys in sharded)
    assert all("norm.running_mean" not in keys for keys in sharded)
    assert sync_weights(trainer, holder, 60, method="collective", bucket_bytes=BUCKET) == 0
    _assert_holders_equal(trainer, holder, 0)
    trainer.call("step").wait(60)
    with count_driver_traffic() as traffic:
        assert sync_weights(trainer, holder, 60, "collective", BUCKET) == 1
    _assert_holders_equal(trainer, holder, 1)
    # ~70 KB of weights reached 2 ranks; the driver saw versions and None replies only.
    assert traffic.received_bytes < 2048 and traffic.sent_bytes == 0
    # One rank: the object store is the better path; sharded: the collective one.
    assert choose_weight_sync("auto", trainer, holder) == (
        "collective" if backend == "fsdp2" else "object_store"
    )


def test_a_version_out_of_order_raises_naming_both_and_changes_nothing(torch_groups):
    trainer, holder = torch_groups
    sync_weights(trainer, holder, 60, "collective", BUCKET)
    before = holder.call("held").wait(60)
    trainer.call("step").wait(60)
    trainer.call("set_version", 5).wait(60)
    with pytest.raises(WorkerError, match=r"skipped weights: holding version 0, got 5"):
        sync_weights(trainer, holder, 60, "collective", BUCKET)
    # The receivers drained the transfer without writing: weights and version as before.
    for (v0, s0, _), (v1, s1, _) in zip(before, holder.call("held").wait(60), strict=True):
        assert v0 == v1 == 0
        assert all(torch.equal(s0[k], s1[k]) for k in s0)
    # The protocol stayed in step: the next in-order version goes through.
    trainer.call("set_version", 1).wait(60)
    assert sync_weights(trainer, holder, 60, "collective", BUCKET) == 1
    _assert_holders_equal(trainer, holder, 1)


def test_unknown_method_is_an_error():
    with pytest.raises(ValueError, match=r"weight_sync must be one of .* got 'nccl'"):
        choose_weight_sync("nccl", None, None)  # type: ignore[arg-type]


class _Placed:
    """A group as choose_weight_sync sees it: ranks on devices and nodes (no Ray)."""

    def __init__(self, devices: tuple[int, ...], nodes: tuple[int, ...], world_size: int):
        self.name, self.world_size = "g", world_size
        self.placement = type("P", (), {"devices": devices, "nodes": nodes})()


def test_auto_keeps_the_object_store_when_actor_and_rollout_share_a_gpu():
    actor, rollout = _Placed((0, 1), (0,), 2), _Placed((1, 2), (0,), 2)
    # CPU slots: two actor ranks -> collectives (gloo groups may share a slot).
    assert choose_weight_sync("auto", actor, rollout, "cpu") == "collective"
    # GPUs: GPU 1 holds an actor and a rollout rank, which one NCCL group cannot have.
    assert choose_weight_sync("auto", actor, rollout, "gpu") == "object_store"
    with pytest.raises(ValueError, match=r"share GPU\(s\) \[1\].*use object_store"):
        choose_weight_sync("collective", actor, rollout, "gpu")
    apart = _Placed((2, 3), (0,), 2)
    assert choose_weight_sync("auto", actor, apart, "gpu") == "collective"
    assert choose_weight_sync("auto", _Placed((0,), (0,), 1), _Placed((1,), (1,), 1), "gpu") == (
        "collective"  # one actor rank, but the groups span two nodes
    )
    assert choose_weight_sync("auto", _Placed((0,), (0,), 1), _Placed((1,), (0,), 1)) == (
        "object_store"
    )
