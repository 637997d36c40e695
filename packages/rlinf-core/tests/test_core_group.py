"""WorkerGroup: launch, call patterns, scatter/gather, errors, SIGKILL, timeouts."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
import torch

from rlinf.core import CallTimeout, Worker, WorkerDied, WorkerError, WorkerGroup


class Echo(Worker):
    def __init__(self, scale: int, bias: int = 0):
        super().__init__()
        self.scale = scale
        self.bias = bias

    def identity(self) -> dict:
        return {
            "rank": self.rank,
            "world_size": self.world_size,
            "group": self.group_name,
            "device": str(self.device),
            "devices": self.placement.devices,
        }

    def mul(self, x: int) -> int:
        return x * self.scale + self.rank + self.bias

    def double(self, piece):
        if isinstance(piece, torch.Tensor):
            return piece * 2
        if isinstance(piece, dict):
            return {k: v * 2 for k, v in piece.items()}
        return [(self.rank, v * 2) for v in piece]

    def fail_on(self, bad_rank: int) -> int:
        if self.rank == bad_rank:
            raise ValueError(f"boom from rank {self.rank}")
        return self.rank

    def sleep(self, seconds: float) -> int:
        time.sleep(seconds)
        return self.rank

    async def async_add(self, x: int) -> int:
        await asyncio.sleep(0.01)
        return x + self.rank


class BadInit(Worker):
    def __init__(self):
        super().__init__()
        if self.rank == 1:
            raise RuntimeError("cannot build rank 1")

    def ping(self) -> str:
        return "pong"


@pytest.fixture(scope="module")
def echo(cluster):
    pgs = cluster.allocate({"echo": "0-3"})
    group = cluster.launch(
        Echo, pgs, "echo", args=(10,), rank_kwargs=[{"bias": b} for b in range(4)]
    )
    yield group
    group.kill()
    pgs.remove()


def test_identity_of_each_rank(echo):
    info = echo.call("identity").wait(timeout=60)
    assert [i["rank"] for i in info] == [0, 1, 2, 3]
    assert {i["world_size"] for i in info} == {4}
    assert {i["group"] for i in info} == {"echo"}
    assert [i["devices"] for i in info] == [(0,), (1,), (2,), (3,)]
    assert {i["device"] for i in info} == {"cpu"}


def test_call_all_and_chosen_ranks(echo):
    # rank r: 3 * 10 + r + bias(r) = 30 + 2r
    assert echo.call("mul", 3).wait(timeout=60) == [30, 32, 34, 36]
    assert echo.call("mul", x=1, ranks=[3, 1]).wait(timeout=60) == [16, 12]
    assert echo.execute("mul", 0, ranks=2) == [4]


def test_call_per_rank_and_async_await(echo):
    assert echo.call_per_rank("mul", [(1,), (2,), (3,), (4,)]).wait(timeout=60) == [10, 22, 34, 46]

    async def main():
        return await echo.call("async_add", 100)

    assert asyncio.run(main()) == [100, 101, 102, 103]


def test_scatter_gather_list_tensor_dict(echo):
    out = echo.scatter("double", list(range(10))).wait(timeout=60)
    # 10 items over 4 ranks: sizes 3, 3, 2, 2, contiguous
    assert out == [
        [(0, 0), (0, 2), (0, 4)],
        [(1, 6), (1, 8), (1, 10)],
        [(2, 12), (2, 14)],
        [(3, 16), (3, 18)],
    ]
    x = torch.arange(18, dtype=torch.float32).reshape(9, 2)
    assert torch.equal(echo.scatter("double", x).gather(timeout=60), x * 2)
    batch = {"a": torch.arange(6), "b": torch.ones(6, 3)}
    got = echo.scatter("double", batch, ranks=[0, 2]).gather(timeout=60)
    assert torch.equal(got["a"], batch["a"] * 2) and torch.equal(got["b"], batch["b"] * 2)


def test_exception_names_group_rank_and_remote_traceback(echo):
    with pytest.raises(
        WorkerError, match=r"group 'echo' rank 2 failed in fail_on\(\): ValueError: boom"
    ) as info:
        echo.call("fail_on", 2).wait(timeout=60)
    assert info.value.rank == 2
    assert "Traceback" in info.value.remote_traceback
    assert 'raise ValueError(f"boom from rank {self.rank}")' in str(info.value)
    # the group stays usable after a user exception
    assert echo.call("fail_on", 99).wait(timeout=60) == [0, 1, 2, 3]


def test_unknown_method_and_bad_rank(echo):
    with pytest.raises(AttributeError, match="Echo has no public method 'nope'"):
        echo.call("nope")
    with pytest.raises(IndexError, match=r"ranks 0\.\.3, not 7"):
        echo.call("mul", 1, ranks=[7])


def test_timeout_names_pending_ranks(echo):
    fut = echo.call("sleep", 3.0, ranks=[1], timeout=0.5)
    start = time.monotonic()
    with pytest.raises(
        CallTimeout, match=r"sleep\(\) did not finish within 0.5 s on rank\(s\) \[1\]"
    ):
        fut.wait()
    assert time.monotonic() - start < 2.0
    assert fut.wait(timeout=30) == [1]


def test_init_failure_reports_rank(cluster):
    pgs = cluster.allocate({"bad": "4-5"})
    try:
        with pytest.raises(
            WorkerError,
            match=r"'bad' rank 1 failed in __init__\(\): RuntimeError: cannot build rank 1",
        ):
            WorkerGroup.launch(BadInit, pgs, "bad")
    finally:
        pgs.remove()


def test_spawned_group_builds_workers_from_later_arguments(cluster):
    # spawn starts the processes; start builds the workers with arguments known only now.
    pgs = cluster.allocate({"late": "4-5"})
    try:
        group = WorkerGroup.spawn(Echo, pgs, "late")
        with pytest.raises(ValueError, match="rank_kwargs has 1 entries for 2 ranks"):
            group.start((7,), rank_kwargs=[{}])
        assert group.start((7,), timeout=120).wait() == [None, None]
        assert [i["group"] for i in group.call("identity").wait(timeout=60)] == ["late"] * 2
        assert group.call("mul", 2).wait(timeout=60) == [14, 15]  # x * 7 + rank
        group.kill()  # frees its share of the bundles for the next group
        bad = WorkerGroup.spawn(BadInit, pgs, "late", name="late-bad")
        with pytest.raises(WorkerError, match=r"'late-bad' rank 1 failed in __init__\(\)"):
            bad.start(timeout=120).wait()
        # The failed start killed its group: calls fail at once instead of hanging.
        with pytest.raises(WorkerError):
            bad.call("ping").wait(timeout=60)
    finally:
        pgs.remove()


def test_sigkill_mid_call_raises_worker_died_quickly(cluster):
    pgs = cluster.allocate({"victim": "4-5"})
    group = WorkerGroup.launch(Echo, pgs, "victim", args=(1,))
    try:
        pids = [i["pid"] for i in group.call("process_info").wait(timeout=60)]
        fut = group.call("sleep", 60.0)
        time.sleep(1.0)
        os.kill(pids[1], signal.SIGKILL)
        start = time.monotonic()
        with pytest.raises(WorkerDied, match=r"group 'victim' rank 1 died during sleep\(\)"):
            fut.wait(timeout=30)
        assert time.monotonic() - start < 10.0
        # later calls on the dead rank fail fast instead of hanging
        with pytest.raises(WorkerDied, match="rank 1"):
            group.call("mul", 1, ranks=[1]).wait(timeout=30)
    finally:
        group.kill()
        pgs.remove()
