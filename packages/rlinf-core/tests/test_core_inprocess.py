"""The in-process backend: every rank a thread of this process, the same calls, futures and
errors as Ray actors, and no Ray at all."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from rlinf.core import (
    CallTimeout,
    Cluster,
    ClusterConfig,
    Worker,
    WorkerDied,
    WorkerError,
)
from rlinf.core._future import wait_first
from rlinf.sched import PlacementError


class Counter(Worker):
    def __init__(self, base: int = 0) -> None:
        self.base = base
        self.events: list[str] = []

    def add(self, x: int) -> int:
        return self.base + x

    def add_all(self, xs: list[int]) -> list[int]:
        return [self.base + x for x in xs]

    def fail(self) -> None:
        raise ValueError("bad row 3")

    def sleep(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    def thread_name(self) -> str:
        return threading.current_thread().name

    def info(self) -> dict:
        return self.process_info()

    def talk(self) -> None:
        self.send(1, "other", 0)

    def onload(self) -> None:
        self.events.append("onload")

    def offload(self) -> None:
        self.events.append("offload")

    def hold(self, log: list, seconds: float) -> list[str]:
        with self.device_turn():
            log.append((self.group_name, "in"))
            time.sleep(seconds)
            log.append((self.group_name, "out"))
        return self.events


class Broken(Worker):
    def __init__(self) -> None:
        raise RuntimeError("no model at /nope")


@pytest.fixture
def local():
    cluster = Cluster(ClusterConfig(backend="inprocess", devices_per_node=2))
    try:
        yield cluster
    finally:
        cluster.shutdown()


def test_calls_scatter_and_results_as_on_ray(local: Cluster) -> None:
    pgs = local.allocate({"a": "0"})
    group = local.launch(Counter, pgs, "a", args=(10,))
    assert group.in_process
    assert group.call("add", 5).wait() == [15]
    assert group.execute("add", 1) == [11]
    assert group.scatter("add_all", [1, 2, 3]).gather() == [11, 12, 13]
    # Served by the rank's own thread, not the caller's.
    assert group.execute("thread_name")[0].startswith("rlinf-a-")
    info = group.execute("info")[0]
    assert info["node_id"] == "in-process" and info["devices"] == (0,)
    assert asyncio.run(_awaited(group)) == [12]


async def _awaited(group) -> list[int]:
    return await group.call("add", 2)


def test_worker_errors_name_group_rank_and_cause(local: Cluster) -> None:
    pgs = local.allocate({"a": "0", "b": "0"})
    group = local.launch(Counter, pgs, "a")
    with pytest.raises(
        WorkerError, match=r"group 'a' rank 0 failed in fail\(\): ValueError: bad row 3"
    ):
        group.call("fail").wait()
    with pytest.raises(
        WorkerError, match=r"failed in __init__\(\): RuntimeError: no model at /nope"
    ):
        local.launch(Broken, pgs, "b")


def test_timeout_kill_and_dead_ranks(local: Cluster) -> None:
    pgs = local.allocate({"a": "0"})
    group = local.launch(Counter, pgs, "a")
    with pytest.raises(
        CallTimeout, match=r"sleep\(\) did not finish within 0.1 s on rank\(s\) \[0\]"
    ):
        group.call("sleep", 1.0).wait(0.1)
    # Calls run in order on the rank: this one queues behind the sleep.
    queued = group.call("add", 1)
    group.kill()
    with pytest.raises(WorkerDied, match=r"group 'a' rank 0 died during add\(\)"):
        queued.wait()
    assert group.dead_ranks() == [0]
    with pytest.raises(WorkerDied):
        group.call("add", 1).wait()


def test_wait_first_returns_the_finished_future(local: Cluster) -> None:
    pgs = local.allocate({"a": "0", "b": "0"})
    slow = local.launch(Counter, pgs, "a")
    fast = local.launch(Counter, pgs, "b")
    futures = [slow.call("sleep", 0.5), fast.call("sleep", 0.01)]
    assert wait_first(futures, timeout=5) == 1
    assert futures[0].wait() == [0.5]


def test_collocated_groups_take_turns_with_hooks(local: Cluster) -> None:
    pgs = local.allocate({"a": "0", "b": "0"})
    a = local.launch(Counter, pgs, "a")
    b = local.launch(Counter, pgs, "b")
    log: list = []
    events = [a.call("hold", log, 0.2), b.call("hold", log, 0.2)]
    results = [f.wait(10)[0] for f in events]
    # Never both inside: each "in" is followed by its own "out".
    assert [e[1] for e in log] == ["in", "out", "in", "out"]
    assert log[0][0] == log[1][0] and log[2][0] == log[3][0] != log[0][0]
    assert results == [["onload", "offload"], ["onload", "offload"]]


def test_what_needs_processes_is_refused_with_the_reason(local: Cluster) -> None:
    with pytest.raises(PlacementError, match="one rank per component on one device; 'a' has 2"):
        local.allocate({"a": "0-1"})
    with pytest.raises(PlacementError, match=r"every component on one device.*\[0, 1\]"):
        local.allocate({"a": "0", "b": "1"})
    pgs = local.allocate({"a": "0"})
    with pytest.raises(ValueError, match="share the driver's process and environment"):
        local.spawn(Counter, pgs, "a", env_vars={"OMP_WAIT_POLICY": "PASSIVE"})
    group = local.launch(Counter, pgs, "a")
    with pytest.raises(WorkerError, match=r"need worker processes.*cluster\.backend=ray"):
        group.call("talk").wait()
    with pytest.raises(ValueError, match="cannot join"):
        ClusterConfig(backend="inprocess", address="auto")


def test_in_process_run_never_imports_ray() -> None:
    # A fresh interpreter: this test process has Ray loaded by the suite's conftest.
    script = textwrap.dedent(
        """
        import sys
        from rlinf.channel import get, put
        from rlinf.core import Cluster, ClusterConfig, Worker

        class Doubler(Worker):
            def double(self, ref):
                return put(2 * get(ref))

        with Cluster(ClusterConfig(backend="inprocess")) as cluster:
            group = cluster.launch(Doubler, cluster.allocate({"a": "0"}), "a")
            out = group.execute("double", put(21))[0]
            print(get(out), "ray" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == ["42", "False"]
