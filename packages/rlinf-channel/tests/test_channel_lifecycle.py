"""Close, actor death and the asyncio API."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import ray

from rlinf.channel import ChannelClosed, ChannelDied, ChannelTimeout


def _run_in_thread(fn):
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as err:
            outcome["error"] = err

    thread = threading.Thread(target=target)
    thread.start()
    return thread, outcome


def test_close_wakes_blocked_getters_and_putters(make_channel):
    ch = make_channel(maxsize=1)
    getter, got = _run_in_thread(lambda: ch.get(key="empty"))
    ch.put("occupies", key="full")
    putter, put = _run_in_thread(lambda: ch.put("blocked", key="full"))
    time.sleep(0.5)
    assert getter.is_alive() and putter.is_alive()
    ch.close()
    getter.join(60)
    putter.join(60)
    assert isinstance(got.get("error"), ChannelClosed)
    assert isinstance(put.get("error"), ChannelClosed)
    assert "closed" in str(got["error"]) and "'empty'" in str(got["error"])


def test_queued_items_stay_gettable_after_close(make_channel):
    ch = make_channel()
    for i in range(3):
        ch.put(i, weight=1)
    ch.close()
    with pytest.raises(ChannelClosed):
        ch.put(99)
    assert ch.get() == 0
    # A batch below its target is handed out rather than stranded by the close.
    assert ch.get_batch(10) == [1, 2]
    with pytest.raises(ChannelClosed):
        ch.get(timeout=1)
    with pytest.raises(ChannelClosed):
        ch.get_batch(1)
    assert ch.describe()["closed"] is True


def test_dead_actor_raises_instead_of_hanging(make_channel):
    ch = make_channel()
    getter, got = _run_in_thread(lambda: ch.get())  # blocked with no timeout
    time.sleep(0.5)
    ray.kill(ch._actor)
    getter.join(30)
    assert not getter.is_alive(), "a blocked get must not outlive the channel"
    assert isinstance(got.get("error"), ChannelDied)
    assert repr(ch.name) in str(got["error"])
    with pytest.raises(ChannelDied, match="is dead"):
        ch.put(1)


def test_asyncio_api_many_waiters_in_one_loop(make_channel):
    ch = make_channel(maxsize=4)

    async def scenario() -> tuple[list, list]:
        getters = [asyncio.create_task(ch.get_async(key="k", timeout=30)) for _ in range(6)]
        await asyncio.sleep(0.2)
        assert not any(task.done() for task in getters)
        await asyncio.gather(*(ch.put_async(i, key="k", timeout=30) for i in range(6)))
        singles = await asyncio.gather(*getters)
        for i in range(4):  # maxsize is 4
            await ch.put_async(i, key="b", weight=2)
        batch = await ch.get_batch_async(6, key="b", timeout=30)
        return singles, batch

    singles, batch = asyncio.run(scenario())
    assert sorted(singles) == list(range(6))
    assert batch == [0, 1, 2]
    assert ch.qsize("b") == 1


def test_asyncio_timeout_raises(make_channel):
    ch = make_channel()
    with pytest.raises(ChannelTimeout):
        asyncio.run(ch.get_async(timeout=0.2))


def test_cancelled_async_get_loses_no_item(make_channel):
    ch = make_channel()

    async def cancel_then_put() -> None:
        task = asyncio.create_task(ch.get_async())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await ch.put_async("survivor")

    asyncio.run(cancel_then_put())
    assert ch.get(timeout=30) == "survivor"
    with pytest.raises(ChannelTimeout):
        ch.get(timeout=0.5)


def test_abandoned_get_that_still_waits_pops_nothing(make_channel):
    ch = make_channel()
    ref = ch._actor.get.remote("default", None, "request-2")
    time.sleep(0.5)
    ray.get(ch._actor.abandon.remote("default", "request-2"))
    assert ray.get(ref, timeout=60) == ("abandoned",)
    ch.put("kept")
    assert ch.get(timeout=30) == "kept"


def test_async_get_cancelled_after_the_pop_requeues_the_item(make_channel):
    # Simulates a consumer that gives up just as its get was served: the popped entry is
    # handed back to the front of the key, ahead of later items.
    ch = make_channel()
    ch.put("first")
    ch.put("second")
    consumer = ch._consumer().consumer
    ref = ch._actor.get.remote("default", None, "request-1", consumer)
    ray.wait([ref], timeout=60)
    assert ch.describe()["unacked"] == 1, "popped and not acknowledged"
    ch._salvage("default", "request-1", consumer)
    deadline = time.monotonic() + 10
    while ch.qsize() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ch.describe()["unacked"] == 0
    assert [ch.get(), ch.get()] == ["first", "second"]
