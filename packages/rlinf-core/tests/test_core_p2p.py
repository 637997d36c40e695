"""Point-to-point send/recv and broadcast between workers of different groups."""

from __future__ import annotations

import dataclasses
import time

import pytest
import torch

from rlinf.core import Worker, WorkerError


@dataclasses.dataclass
class Rollout:
    tokens: torch.Tensor
    logprobs: torch.Tensor
    meta: dict


def make_payload(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "x": torch.randn(3, 5, generator=g),
        "ids": torch.randint(0, 100, (7,), generator=g),
        "nested": [torch.randn(2, generator=g).to(torch.float64), "text", 4],
        "rollout": Rollout(torch.arange(6).reshape(2, 3), torch.randn(2, 3, generator=g), {"k": 1}),
        "empty": torch.empty(0, 4),
        "bf16": torch.randn(4, generator=g).to(torch.bfloat16),
    }


def assert_payload_equal(a: dict, b: dict) -> None:
    assert torch.equal(a["x"], b["x"]) and a["x"].dtype == b["x"].dtype
    assert torch.equal(a["ids"], b["ids"])
    assert torch.equal(a["nested"][0], b["nested"][0]) and b["nested"][0].dtype == torch.float64
    assert a["nested"][1:] == b["nested"][1:]
    assert isinstance(b["rollout"], Rollout)
    assert torch.equal(a["rollout"].tokens, b["rollout"].tokens)
    assert torch.equal(a["rollout"].logprobs, b["rollout"].logprobs)
    assert b["rollout"].meta == {"k": 1}
    assert b["empty"].shape == (0, 4)
    assert torch.equal(a["bf16"], b["bf16"]) and b["bf16"].dtype == torch.bfloat16


class Peer(Worker):
    def send_to(self, group: str, rank: int, seed: int) -> None:
        self.send(make_payload(seed), group, rank)

    def send_tensor(self, group: str, rank: int, n: int) -> None:
        self.send(torch.arange(n, dtype=torch.float32) + self.rank, group, rank)

    def recv_from(self, group: str, rank: int, timeout: float | None = None):
        return self.recv(group, rank, timeout=timeout)

    def bcast(self, src, dsts, seed):
        obj = make_payload(seed) if (self.group_name, self.rank) == tuple(src) else None
        return self.broadcast(obj, src=src, dsts=dsts)

    def stamp_then_recv(self, group: str, rank: int):
        start = time.time()
        return start, self.recv(group, rank)


@pytest.fixture(scope="module")
def peers(cluster):
    pgs = cluster.allocate({"p2p_a": "0-1", "p2p_b": "2-3"})
    a = cluster.launch(Peer, pgs, "p2p_a")
    b = cluster.launch(Peer, pgs, "p2p_b")
    yield a, b
    a.kill()
    b.kill()
    pgs.remove()


def test_send_recv_structured_object(peers):
    a, b = peers
    fut_send = a.call("send_to", "p2p_b", 1, 11, ranks=[0])
    got = b.call("recv_from", "p2p_a", 0, ranks=[1]).wait(timeout=120)[0]
    assert fut_send.wait(timeout=60) == [None]
    assert_payload_equal(make_payload(11), got)


def test_send_posted_long_before_first_recv_does_not_deadlock(peers):
    a, b = peers
    # a:1 has never talked to b:0; its send blocks until b:0 shows up two seconds later.
    fut_send = a.call("send_tensor", "p2p_b", 0, 1000, ranks=[1])
    time.sleep(2.0)
    assert not fut_send.done()
    got = b.call("recv_from", "p2p_a", 1, ranks=[0]).wait(timeout=120)[0]
    fut_send.wait(timeout=60)
    assert torch.equal(got, torch.arange(1000, dtype=torch.float32) + 1)


def test_unrelated_pairs_and_both_directions(peers):
    a, b = peers
    # every a rank sends to every b rank and back, pairs set up in no particular order
    sends = [a.call("send_tensor", "p2p_b", r, 10, ranks=[q]) for q in (0, 1) for r in (1, 0)]
    recvs = [b.call("recv_from", "p2p_a", q, ranks=[r]) for r in (0, 1) for q in (1, 0)]
    got = [f.wait(timeout=120)[0] for f in recvs]
    for f in sends:
        f.wait(timeout=60)
    assert [int(t[0]) for t in got] == [1, 0, 1, 0]
    back = b.call("send_tensor", "p2p_a", 0, 5, ranks=[1])
    assert torch.equal(
        a.call("recv_from", "p2p_b", 1, ranks=[0]).wait(timeout=120)[0], torch.arange(5.0) + 1
    )
    back.wait(timeout=60)


def test_broadcast_from_one_rank_to_other_groups(peers):
    a, b = peers
    src = ("p2p_a", 0)
    dsts = [("p2p_b", 0), ("p2p_b", 1), ("p2p_a", 1)]
    fa = a.call("bcast", src, dsts, 5)
    fb = b.call("bcast", src, dsts, 5)
    expected = make_payload(5)
    for got in fa.wait(timeout=120) + fb.wait(timeout=120):
        assert_payload_equal(expected, got)


def test_recv_timeout_names_the_peer(peers):
    a, _ = peers
    with pytest.raises(WorkerError, match=r"CommError: p2p_a:0: .*p2p_b:1"):
        a.call("recv_from", "p2p_b", 1, 1.0, ranks=[0]).wait(timeout=60)


class Into(Worker):
    def recv_into(self, group: str, rank: int, n: int):
        buf = torch.zeros(n)
        got = self.recv(group, rank, out=buf)
        return got is buf, buf

    def recv_wrong(self, group: str, rank: int):
        return self.recv(group, rank, out=torch.zeros(3, dtype=torch.int64))


def test_recv_into_preallocated_buffer(cluster, peers):
    a, _ = peers
    pgs = cluster.allocate({"into": "4"})
    c = cluster.launch(Into, pgs, "into")
    try:
        fs = a.call("send_tensor", "into", 0, 8, ranks=[0])
        same, buf = c.call("recv_into", "p2p_a", 0, 8).wait(timeout=120)[0]
        fs.wait(timeout=60)
        assert same and torch.equal(buf, torch.arange(8.0))
        fs = a.call("send_tensor", "into", 0, 3, ranks=[0])
        with pytest.raises(
            WorkerError,
            match=r"out\[0\] is \(\(3,\), 'int64', False\).*message tensor is \(\(3,\), 'float32', False\)",
        ):
            c.call("recv_wrong", "p2p_a", 0).wait(timeout=120)
    finally:
        c.kill()
        pgs.remove()


class Reborn(Worker):
    def exchange(self, value: float, late: float) -> float:
        # rank 0 -> rank 1 over a pair group, then an all-reduce over the default group; rank
        # 1 comes ``late`` seconds after rank 0, so rank 0 looks for it in the store first.
        import torch.distributed as dist

        if self.rank == 1:
            time.sleep(late)
        if self.rank == 0:
            self.send(torch.tensor([value]), self.group_name, 1, timeout=30)
        else:
            value = float(self.recv(self.group_name, 0, timeout=30)[0]) + 1.0
        self.init_torch_distributed(timeout=30)
        total = torch.tensor([value])
        dist.all_reduce(total)
        return float(total[0])


def _launch_when_name_is_free(cluster, pgs, deadline_s: float = 30.0):
    # ray.kill returns before the old actors' names are released.
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return cluster.launch(Reborn, pgs, "reborn")
        except ValueError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_relaunched_group_of_same_name_connects_afresh(cluster):
    # The rendezvous store lives for the whole session, so the first incarnation's keys stay
    # in it: the second must not read them (it would wait on, or connect to, dead peers).
    pgs = cluster.allocate({"reborn": "4-5"})
    try:
        first = cluster.launch(Reborn, pgs, "reborn")
        assert first.call("exchange", 1.0, 0.0).wait(timeout=120) == [3.0, 3.0]
        first.kill()
        second = _launch_when_name_is_free(cluster, pgs)
        try:
            assert second.call("exchange", 10.0, 3.0).wait(timeout=120) == [21.0, 21.0]
        finally:
            second.kill()
    finally:
        pgs.remove()
