"""Start-up work a flow does not need is not done: the rendezvous store starts on first
use, and a Worker's ``warm_up`` runs as its process starts, before ``__init__``.

No other test of this module communicates between workers: the first test sees the
session's rendezvous store before any worker needed it.
"""

from __future__ import annotations

import os
import time

import pytest
import ray
import torch

from rlinf.core import Worker, WorkerError
from rlinf.core._rendezvous import RENDEZVOUS_NAME

# The rendezvous store lives as long as the Ray session: a Ray shared with an earlier module
# may have started it already.
pytestmark = pytest.mark.fresh_ray


class Talker(Worker):
    def send_to(self, group: str, value: float) -> None:
        self.send(torch.full((3,), value), group, 0)

    def recv_from(self, group: str) -> list[float]:
        return self.recv(group, 0).tolist()


class Warmed(Worker):
    warmed: tuple[int, float] | None = None

    @classmethod
    def warm_up(cls) -> None:
        cls.warmed = (os.getpid(), time.time())

    def __init__(self, offset: int) -> None:
        super().__init__()
        self.offset = offset

    def seen(self) -> tuple[tuple[int, float] | None, int, int]:
        return type(self).warmed, os.getpid(), self.offset


class BadWarmUp(Worker):
    @classmethod
    def warm_up(cls) -> None:
        raise RuntimeError("simulator library missing on this node")


def test_rendezvous_store_starts_on_first_communication(cluster):
    pgs = cluster.allocate({"quiet_a": "0", "quiet_b": "1"})
    a = cluster.launch(Talker, pgs, "quiet_a")
    b = cluster.launch(Talker, pgs, "quiet_b")
    rendezvous = ray.get_actor(RENDEZVOUS_NAME, namespace=cluster.config.namespace)
    # Two single-rank groups built and idle: no store, and no torch import for one.
    assert ray.get(rendezvous.state.remote()) == {"store": False, "torch": False}
    sent = a.call("send_to", b.name, 2.5)
    assert b.execute("recv_from", a.name, timeout=120) == [[2.5, 2.5, 2.5]]
    sent.wait(120)
    assert ray.get(rendezvous.state.remote()) == {"store": True, "torch": True}


def test_warm_up_runs_in_the_worker_process_before_init(cluster):
    pgs = cluster.allocate({"warm": "2"})
    group = cluster.spawn(Warmed, pgs, "warm")
    # The process is up (its host built) before the driver has sent any argument.
    ray.get(group.handles[0].__ray_ready__.remote(), timeout=120)
    asked = time.time()
    group.start((7,), timeout=120).wait()
    ((warmed, pid, offset),) = group.execute("seen")
    assert warmed is not None and warmed[0] == pid and warmed[1] <= asked
    assert offset == 7


def test_warm_up_failure_is_the_ranks_init_failure(cluster):
    pgs = cluster.allocate({"badwarm": "3"})
    with pytest.raises(WorkerError, match=r"'badwarm' rank 0 failed in __init__\(\).*simulator"):
        cluster.launch(BadWarmUp, pgs, "badwarm", startup_timeout=120)
