"""LocalDeviceLock: the device lock's grant rules for threads of one process."""

from __future__ import annotations

import threading
import time

import pytest

from rlinf.sched import DeviceLockTimeout, LocalDeviceLock


def test_sets_of_devices_are_granted_whole_and_in_arrival_order() -> None:
    lock = LocalDeviceLock("t")
    lock.acquire([0, 1], "a")
    order: list[str] = []

    def take(holder: str, devices: list[int]) -> None:
        lock.acquire(devices, holder, timeout=5)
        order.append(holder)
        time.sleep(0.05)
        lock.release(devices, holder)

    # b waits for device 1; c arrives later wanting device 0 (free once a releases) and
    # must not overtake b, whose set overlaps its own only through the queue order rule.
    b = threading.Thread(target=take, args=("b", [1, 2]))
    b.start()
    time.sleep(0.05)
    c = threading.Thread(target=take, args=("c", [0, 2]))
    c.start()
    time.sleep(0.05)
    assert lock.holders() == {0: "a", 1: "a"}
    lock.release([0, 1], "a")
    b.join(5)
    c.join(5)
    assert order == ["b", "c"]
    assert lock.holders() == {}


def test_timeout_names_the_holder_and_double_acquire_is_refused() -> None:
    lock = LocalDeviceLock("t")
    lock.acquire([0], "actor:0")
    with pytest.raises(
        DeviceLockTimeout,
        match=r"rollout:0 could not lock devices \[0\]: timed out after 0.05 s; held: \{0: 'actor:0'\}",
    ):
        lock.acquire([0], "rollout:0", timeout=0.05)
    with pytest.raises(DeviceLockTimeout, match=r"actor:0 already holds device\(s\) \[0\]"):
        lock.acquire([0], "actor:0")
    assert lock.release_all("actor:0") == [0]
    lock.acquire([0], "rollout:0", timeout=0.05)


def test_turn_runs_hooks_inside_the_grant() -> None:
    lock = LocalDeviceLock("t")
    seen: list[str] = []

    class Hooks:
        def onload(self) -> None:
            seen.append(f"onload {lock.holders()}")

        def offload(self) -> None:
            seen.append("offload")

    with lock.turn([3], "env:0", Hooks()):
        seen.append("body")
    assert seen == ["onload {3: 'env:0'}", "body", "offload"]
    assert lock.holders() == {}
