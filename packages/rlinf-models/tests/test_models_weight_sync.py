"""sync_weights and its two halves (stage_weights, load_staged_weights) between groups;
the driver handles references only."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest
import ray
from ray import cloudpickle

from rlinf.core import Cluster, ClusterConfig, Worker
from rlinf.models import (
    StagedWeights,
    WeightStager,
    load_staged_weights,
    stage_weights,
    sync_weights,
)

# The workers below are defined here; Ray workers cannot import this module by name.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@dataclass(frozen=True)
class Snapshot:
    version: int
    state: dict


class Trainer(WeightStager, Worker):
    def __init__(self) -> None:
        super().__init__()
        self.reset()

    def reset(self) -> None:
        self.version = 0

    def step(self) -> int:
        self.version += 1
        return self.version

    def export_weights(self) -> Snapshot:
        return Snapshot(self.version, {"w": [self.version] * 3})


class Holder(Worker):
    """Loads snapshots strictly in order, like a rollout rank; rank 1 can be made to lag."""

    def __init__(self) -> None:
        super().__init__()
        self.reset()

    def reset(self) -> None:
        self.version = -1
        self.state: dict = {}
        self.frozen = False

    def freeze(self) -> None:
        self.frozen = True

    def load_weights(self, ref: ray.ObjectRef) -> int:
        snapshot = ray.get(ref)
        if not self.frozen:
            self.version, self.state = snapshot.version, snapshot.state
        return self.version

    def held(self) -> tuple[int, dict]:
        return self.version, self.state


@pytest.fixture(scope="module")
def ray_init_kwargs():
    return {"num_cpus": 3, "object_store_memory": 256 * 1024**2}


@pytest.fixture(scope="module")
def cluster(ray_cluster):
    # Joins the shared Ray (root conftest.py); shutdown kills what this module launched.
    c = Cluster(
        ClusterConfig(
            num_cpus=3,
            num_gpus=0,
            devices_per_node=3,
            object_store_memory=256 * 1024**2,
            namespace=ray.get_runtime_context().namespace,
        )
    )
    try:
        yield c
    finally:
        c.shutdown()


@pytest.fixture(scope="module")
def launched(cluster):
    # Launched once per module (three worker processes take seconds to start); each test
    # gets them reset to their initial state by `groups`.
    pgs = cluster.allocate({"trainer": "0", "holder": "1-2"})
    trainer = cluster.launch(Trainer, pgs, "trainer")
    holder = cluster.launch(Holder, pgs, "holder")
    yield trainer, holder
    trainer.kill()
    holder.kill()
    pgs.remove()


@pytest.fixture
def groups(launched):
    trainer, holder = launched
    trainer.call("reset").wait(60)
    holder.call("reset").wait(60)
    return trainer, holder


def test_sync_loads_the_exported_version_everywhere(groups):
    trainer, holder = groups
    assert sync_weights(trainer, holder, timeout=60) == 0
    trainer.call("step").wait(60)
    assert sync_weights(trainer, holder, timeout=60) == 1
    assert holder.call("held").wait(60) == [(1, {"w": [1, 1, 1]})] * 2


def test_staged_weights_are_the_version_at_export_time(groups):
    trainer, holder = groups
    staged = stage_weights(trainer, timeout=60)
    assert isinstance(staged, StagedWeights) and staged.version == 0
    # The trainer's process put the snapshot; the driver holds only the reference.
    assert isinstance(staged.ref, ray.ObjectRef)
    # The trainer moves on after the export; loading later still delivers what was staged.
    trainer.call("step").wait(60)
    assert load_staged_weights(holder, staged, timeout=60) == 0
    assert holder.call("held").wait(60) == [(0, {"w": [0, 0, 0]})] * 2


def test_a_rank_left_on_another_version_is_an_error(groups):
    trainer, holder = groups
    sync_weights(trainer, holder, timeout=60)
    trainer.call("step").wait(60)
    holder.call("freeze", ranks=1).wait(60)
    with pytest.raises(RuntimeError, match=r"rollout ranks hold versions \[1, 0\], not 1"):
        sync_weights(trainer, holder, timeout=60)
