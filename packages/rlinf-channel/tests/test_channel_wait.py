"""KeyQueue's waiting, without Ray: the race behind the spurious ChannelClosed of issue 14."""

from __future__ import annotations

import asyncio

from rlinf.channel._queue import KeyQueue, WaitOutcome


def test_a_race_lost_after_a_wakeup_is_not_reported_as_closed():
    async def scenario() -> tuple[bool, str]:
        queue = KeyQueue(maxsize=0)
        waiter = asyncio.create_task(queue.wait_until(lambda: len(queue) > 0, lambda: False, 5))
        await asyncio.sleep(0)  # the waiter is now waiting
        queue.push("x", 1.0)
        queue.notify()
        queue.pop()  # a get served at once takes the item before the woken waiter resumes
        await asyncio.sleep(0.05)
        still_waiting = not waiter.done()
        queue.push("y", 1.0)
        queue.notify()
        return still_waiting, await waiter

    still_waiting, outcome = asyncio.run(scenario())
    assert still_waiting, "the waiter must go on waiting, not report a close"
    assert outcome == WaitOutcome.READY


def test_room_taken_by_another_put_keeps_a_blocked_put_waiting():
    async def scenario() -> tuple[bool, str]:
        queue = KeyQueue(maxsize=1)
        queue.push("a", 1.0)
        waiter = asyncio.create_task(queue.wait_until(lambda: not queue.full(), lambda: False, 5))
        await asyncio.sleep(0)
        queue.pop()
        queue.notify()
        queue.push("b", 1.0)  # a newcomer put takes the room first
        await asyncio.sleep(0.05)
        still_waiting = not waiter.done()
        queue.pop()
        queue.notify()
        return still_waiting, await waiter

    still_waiting, outcome = asyncio.run(scenario())
    assert still_waiting
    assert outcome == WaitOutcome.READY


def test_wait_outcomes_close_timeout_and_ready_before_closed():
    async def scenario() -> list[str]:
        queue = KeyQueue(maxsize=0)
        closed = {"now": False}
        waiter = asyncio.create_task(
            queue.wait_until(lambda: len(queue) > 0, lambda: closed["now"], None)
        )
        await asyncio.sleep(0)
        closed["now"] = True
        queue.notify()
        outcomes = [await waiter]
        outcomes.append(await queue.wait_until(lambda: False, lambda: False, 0.05))
        queue.push("left", 1.0)
        # Items queued before the close stay gettable: ready wins over closed.
        outcomes.append(await queue.wait_until(lambda: len(queue) > 0, lambda: True, None))
        return outcomes

    assert asyncio.run(scenario()) == [WaitOutcome.CLOSED, WaitOutcome.TIMEOUT, WaitOutcome.READY]


def test_a_cancelled_waiter_does_not_disturb_the_others():
    async def scenario() -> str:
        queue = KeyQueue(maxsize=0)
        first = asyncio.create_task(queue.wait_until(lambda: len(queue) > 0, lambda: False, None))
        second = asyncio.create_task(queue.wait_until(lambda: len(queue) > 0, lambda: False, 5))
        await asyncio.sleep(0)
        first.cancel()  # shares the wake-up future with the second waiter
        await asyncio.sleep(0)
        queue.push("x", 1.0)
        queue.notify()
        return await second

    assert asyncio.run(scenario()) == WaitOutcome.READY
