"""Workspace-wide pytest hooks: skip `gpu` tests where no CUDA device is visible; how many
parallel test processes ``-n auto`` starts; which test files start first.

Kept import-light on purpose: a package's tests also run in a virtual environment that has
only that package's dependencies, where torch may be absent.
"""

from __future__ import annotations

import importlib.util
import os
import time
import uuid
from collections.abc import Iterator

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


# Last, so that it sees the items left after `-m` deselection.
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _order_files(items)
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items or _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none is visible")
    for item in gpu_items:
        item.add_marker(skip)


# --- One Ray per test process, shared by consecutive modules -------------------------------
# Starting Ray costs ~8 s of CPU (its GCS, raylet, dashboard head and agents start even
# without the dashboard), paid once per module when every module started its own. A module
# asks for Ray through the `ray_cluster` fixture; the next module that asks for the same
# `ray_init_kwargs` (override that fixture for another size) gets the same Ray, a different
# size restarts it. Isolation stays as with one Ray per module:
# - a test whose module did not ask for `ray_cluster` finds no Ray (a leftover shared one is
#   stopped first): those that start their own Ray, or assert that none started, see what
#   they saw before;
# - a module marked `fresh_ray` (it asserts what a new Ray session holds) gets a new one;
# - at a module's end, actors (other than the p2p rendezvous store, held for the whole Ray
#   session on purpose) and placement groups still alive mean the module leaked something
#   (a named group, a device lock, a placement): Ray is stopped rather than handed on.
_RAY_DEFAULTS = {
    "num_gpus": 0,
    "include_dashboard": False,
    "logging_level": "WARNING",
}
# Session-wide actors that later users are meant to find (rlinf.core._rendezvous).
_SHARED_ACTORS = frozenset({"rlinf-p2p-rendezvous"})


class _SharedRay:
    """The Ray this test process started for `ray_cluster`, and which module holds it."""

    def __init__(self) -> None:
        self.kwargs: dict | None = None  # what ray.init got; None while not started by us
        self.holder: str | None = None  # nodeid of the module using it now
        self.starts = 0

    def acquire(self, module: str, kwargs: dict, fresh: bool = False) -> None:
        import ray

        wanted = {**_RAY_DEFAULTS, **kwargs}
        if self.kwargs is not None and (fresh or self.kwargs != wanted or not ray.is_initialized()):
            self.stop()
        if self.kwargs is None:
            if ray.is_initialized():
                raise RuntimeError(
                    f"{module}: a Ray started outside the `ray_cluster` fixture is still "
                    "running; stop it where it was started"
                )
            # Namespaced per start: named actors of one Ray session never meet another's.
            try:
                ray.init(namespace=f"rlinf-test-{uuid.uuid4().hex[:8]}", **wanted)
            except BaseException:
                ray.shutdown()  # what a failed start left running; the next module retries
                raise
            self.kwargs = wanted
            self.starts += 1
        self.holder = module

    def release(self) -> None:
        self.holder = None
        if self.kwargs is not None and _leftovers(timeout_s=5.0):
            self.stop()

    def stop(self) -> None:
        # Ray is imported only where a Ray was started: a package's tests run in
        # environments that have no Ray at all (tests/test_isolated_install.py).
        if self.kwargs is not None:
            import ray

            ray.shutdown()
        self.kwargs = None
        self.holder = None


def _leftovers(timeout_s: float) -> list[str]:
    """Actors and placement groups still alive (Ray kills them asynchronously: waits a bit)."""
    import ray
    from ray._private import state

    deadline = time.monotonic() + timeout_s
    while True:
        left = [
            f"actor {a.get('Name') or a['ActorID']}"
            for a in state.actors().values()
            if a["State"] != "DEAD" and a.get("Name") not in _SHARED_ACTORS
        ] + [
            f"placement group {pg['placement_group_id']}"
            for pg in ray.util.placement_group_table().values()
            if pg["state"] != "REMOVED"
        ]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


_shared_ray = _SharedRay()


@pytest.fixture(scope="module")
def ray_init_kwargs() -> dict:
    """``ray.init`` arguments of this module's Ray (over ``_RAY_DEFAULTS``); override in a
    module or conftest. The CPU count is also the device count of CPU-only topologies."""
    return {"num_cpus": 2}


@pytest.fixture(scope="module")
def ray_cluster(request: pytest.FixtureRequest, ray_init_kwargs: dict) -> Iterator[None]:
    """A local Ray for this module, shared with neighbouring modules of the same size
    (a new one for a module marked ``fresh_ray``)."""
    fresh = request.node.get_closest_marker("fresh_ray") is not None
    _shared_ray.acquire(request.node.nodeid, ray_init_kwargs, fresh=fresh)
    try:
        yield
    finally:
        _shared_ray.release()


def _order_files(items: list[pytest.Item]) -> None:
    """Order whole files as xdist's loadfile hands them out (pyproject:
    --no-loadscope-reorder; its default sorts by test count, which put the few-test Ray
    flow files, and the one-test agentic learning proof, among the last): the longest
    first by their tests' ``slow(seconds=N)`` estimates, then the files whose tests ask for
    ``ray_cluster`` (the long ones of the quick phase: worker processes importing torch),
    those of one Ray size next to each other so that neighbours can share a Ray, then the
    rest by test count. The short files left then fill both processes at the end, and a
    file that runs for many minutes never starts last beside an idle worker.
    """
    _ray_modules.clear()
    sizes: dict[str, str] = {}
    for item in items:
        module = item.getparent(pytest.Module)
        if module is not None and "ray_cluster" in getattr(item, "fixturenames", ()):
            _ray_modules.add(module.nodeid)
            defs = item._fixtureinfo.name2fixturedefs.get("ray_init_kwargs", ())
            # The overriding definition (a module's or a conftest's) names the size group.
            sizes[module.nodeid] = defs[-1].baseid if defs else ""
    first: dict[str, int] = {}
    count: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for i, item in enumerate(items):
        module = _module_id(item)
        first.setdefault(module, i)
        count[module] = count.get(module, 0) + 1
        seconds[module] = seconds.get(module, 0.0) + _expected_seconds(item)

    def key(item: pytest.Item) -> tuple[float, int, str, int, int]:
        module = _module_id(item)
        if module in _ray_modules:
            return (-seconds[module], 0, sizes[module], 0, first[module])
        return (-seconds[module], 1, "", -count[module], first[module])

    items.sort(key=key)  # stable: a module's tests keep their order


def _module_id(item: pytest.Item) -> str:
    module = item.getparent(pytest.Module)
    return module.nodeid if module is not None else item.nodeid.split("::")[0]


_ray_modules: set[str] = set()


@pytest.fixture(scope="module", autouse=True)
def _no_foreign_ray_module(request: pytest.FixtureRequest) -> None:
    # Autouse, so before the module's own fixtures: one that starts its own Ray (a
    # `Cluster`) finds none, as when every module stopped its Ray at its end.
    if _shared_ray.kwargs is not None and request.node.nodeid not in _ray_modules:
        _shared_ray.stop()


@pytest.fixture(autouse=True)
def _no_foreign_ray(request: pytest.FixtureRequest) -> None:
    # A test outside the module holding the shared Ray must not find it (see above).
    module = request.node.getparent(pytest.Module)
    if _shared_ray.kwargs is not None and _shared_ray.holder != (module and module.nodeid):
        _shared_ray.stop()


def pytest_sessionfinish(session: pytest.Session) -> None:
    _shared_ray.stop()
