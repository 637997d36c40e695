"""A Ray instance for the placement-group tests (reused if another package started one)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")


@pytest.fixture(scope="module")
def ray_cpu4():
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(include_dashboard=False, num_cpus=4, num_gpus=0, object_store_memory=256 * 1024**2)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()
