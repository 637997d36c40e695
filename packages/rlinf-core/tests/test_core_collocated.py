"""Collocated groups take turns on shared devices through the device lock."""

from __future__ import annotations

import itertools
import time

import pytest

from rlinf.core import Worker
from rlinf.sched import PlacementMode


class TurnTaker(Worker):
    def __init__(self):
        super().__init__()
        self.events: list[tuple[str, float]] = []

    def onload(self) -> None:
        self.events.append(("onload", time.time()))

    def offload(self) -> None:
        self.events.append(("offload", time.time()))

    def work(self, turns: int, seconds: float) -> list[tuple[float, float]]:
        spans = []
        for _ in range(turns):
            with self.device_turn(timeout=60):
                start = time.time()
                time.sleep(seconds)
                spans.append((start, time.time()))
        return spans

    def hook_events(self) -> list[str]:
        return [name for name, _ in self.events]


@pytest.fixture(scope="module")
def pair(cluster):
    pgs = cluster.allocate({"coll_actor": "0-1", "coll_rollout": "0-1"})
    assert pgs.placement.mode is PlacementMode.COLLOCATED
    actor = cluster.launch(TurnTaker, pgs, "coll_actor")
    rollout = cluster.launch(TurnTaker, pgs, "coll_rollout")
    yield actor, rollout
    actor.kill()
    rollout.kill()
    pgs.remove()


def test_critical_sections_on_a_shared_device_never_overlap(pair):
    actor, rollout = pair
    fa = actor.call("work", 3, 0.2)
    fr = rollout.call("work", 3, 0.2)
    a_spans, r_spans = fa.wait(timeout=120), fr.wait(timeout=120)
    for device in (0, 1):
        spans = sorted(a_spans[device] + r_spans[device])
        assert len(spans) == 6
        for (s0, e0), (s1, _) in itertools.pairwise(spans):
            assert e0 <= s1, f"turns overlap on device {device}: {(s0, e0)} and {s1}"
    # both groups made progress concurrently overall (turns interleave, not serialize groups)
    assert actor.call("hook_events").wait(timeout=30)[0] == ["onload", "offload"] * 3


def test_disaggregated_worker_turn_is_free(cluster):
    pgs = cluster.allocate({"solo": "5"})
    group = cluster.launch(TurnTaker, pgs, "solo")
    try:
        assert len(group.call("work", 2, 0.01).wait(timeout=60)[0]) == 2
        # nobody shares the device: no lock, no offload/onload churn
        assert group.call("hook_events").wait(timeout=30) == [[]]
    finally:
        group.kill()
        pgs.remove()
