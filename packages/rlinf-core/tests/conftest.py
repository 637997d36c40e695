"""The rlinf-core tests' `cluster`: a Cluster on the Ray that `ray_cluster` shares."""

from __future__ import annotations

import os

import pytest

# Must be set before Ray starts: the test machine has no auth token set up.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# Under `uv run`, Ray would otherwise rebuild the whole workspace venv for every worker.
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Test modules are imported by path (--import-mode=importlib), so Ray's workers cannot
    # import them by name: ship the Worker classes they define by value instead.
    import ray.cloudpickle

    seen = set()
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and module.__name__ not in seen and "rlinf-core" in str(item.path):
            seen.add(module.__name__)
            ray.cloudpickle.register_pickle_by_value(module)


@pytest.fixture(scope="module")
def ray_init_kwargs() -> dict:
    # Six CPU slots for the topologies below; a bounded object store.
    return {"num_cpus": 6, "object_store_memory": 512 * 1024**2}


@pytest.fixture(scope="module")
def cluster(ray_cluster):
    # Joins the Ray of `ray_cluster` (root conftest.py: shared by neighbouring modules of
    # this size); shutdown kills this module's groups and placements and leaves Ray up.
    import ray

    from rlinf.core import Cluster, ClusterConfig

    c = Cluster(
        ClusterConfig(
            num_cpus=6,
            # CPU slots even on a GPU machine, where GPUs would otherwise become the devices.
            num_gpus=0,
            devices_per_node=6,
            object_store_memory=512 * 1024**2,
            namespace=ray.get_runtime_context().namespace,
        )
    )
    try:
        yield c
    finally:
        c.shutdown()
