"""The Ray of the placement-group tests: `ray_cluster` (root conftest.py) with 4 CPUs."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")


@pytest.fixture(scope="module")
def ray_init_kwargs() -> dict:
    # Four CPU slots: test_sched_ray counts them.
    return {"num_cpus": 4, "object_store_memory": 256 * 1024**2}


@pytest.fixture(scope="module")
def ray_cpu4(ray_cluster):
    import ray

    return ray
