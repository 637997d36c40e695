"""One Ray cluster per rlinf-core test module (starting Ray takes several seconds)."""

from __future__ import annotations

import os
import uuid

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
def cluster():
    # Per module, not per session: a Ray left running would be picked up by the Ray users
    # of later packages (apps start their own and must find none).
    from rlinf.core import Cluster, ClusterConfig

    c = Cluster(
        ClusterConfig(
            num_cpus=6,
            # CPU slots even on a GPU machine, where GPUs would otherwise become the devices.
            num_gpus=0,
            devices_per_node=6,
            object_store_memory=512 * 1024**2,
            namespace=f"rlinf-core-test-{uuid.uuid4().hex[:6]}",
        )
    )
    try:
        yield c
    finally:
        c.shutdown()
