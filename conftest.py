"""Workspace-wide pytest hooks: skip `gpu` tests where no CUDA device is visible; how many
parallel test processes ``-n auto`` starts; which test files start first.

Kept import-light on purpose: a package's tests also run in a virtual environment that has
only that package's dependencies, where torch may be absent.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

# Ray's `uv run` hook would rebuild the whole workspace inside every worker's runtime env
# (tens of seconds per cluster); the workspace venv already has everything. Auth tokens are
# pointless for clusters that live only inside a test session.
# Set while this file is imported, not in a hook: pytest imports the packages' own
# conftest files (and with them ray, which reads these at import) before any hook runs.
for _name, _value in {"RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_AUTH_MODE": "disabled"}.items():
    os.environ.setdefault(_name, _value)


# More test processes than cores only adds contention, and each may start a Ray cluster
# with its worker processes: a big machine gets a few, not one per core.
_MAX_TEST_WORKERS = 4


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` (pyproject's addopts): one test process per core, at most four, unless
    ``PYTEST_XDIST_AUTO_NUM_WORKERS`` says otherwise (xdist's own hook reads it)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return max(1, min(_MAX_TEST_WORKERS, len(os.sched_getaffinity(0))))


def _cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def _expected_seconds(item: pytest.Item) -> float:
    """The ``seconds`` a test's ``slow`` marker gives (its duration on two cores), else 0."""
    marker = item.get_closest_marker("slow")
    return float(marker.kwargs.get("seconds", 0)) if marker is not None else 0.0


def _longest_files_first(items: list[pytest.Item]) -> None:
    """Order whole files by their tests' expected seconds, longest first, then (where none
    is given) by how many tests they hold, as xdist's own reorder does (pyproject disables
    it, so that this order stands). xdist hands out whole files (``--dist loadfile``) in
    this order: a file that runs for many minutes must start first, not last, or the other
    worker idles while it finishes. Python's sort is stable: the order inside a file, and
    of equal files, stays the collection order."""
    by_file: dict[str, list[pytest.Item]] = {}
    for item in items:
        by_file.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    files = sorted(
        by_file.values(), key=lambda tests: (-sum(map(_expected_seconds, tests)), -len(tests))
    )
    items[:] = [item for tests in files for item in tests]


# Last: after `-m` has deselected, so that only the tests that run count.
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _longest_files_first(items)
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items or _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none is visible")
    for item in gpu_items:
        item.add_marker(skip)
