"""Workspace-wide pytest hooks: skip `gpu` tests where no CUDA device is visible.

Kept import-light on purpose: a package's tests also run in a virtual environment that has
only that package's dependencies, where torch may be absent.
"""

from __future__ import annotations

import importlib.util

import pytest


def _cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items or _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none is visible")
    for item in gpu_items:
        item.add_marker(skip)
