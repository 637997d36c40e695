"""Many producers and consumers in separate Ray actors: nothing lost, nothing twice, FIFO."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest
import ray

from rlinf.channel import Channel, ChannelClosed, ChannelItemLost

PRODUCERS = 4
CONSUMERS = 4
ITEMS = 10_000
KEYS = ("even", "odd")


@ray.remote(num_cpus=0)
class Producer:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel  # arrived pickled as an argument

    def run(self, producer_id: int, count: int) -> int:
        for seq in range(count):
            self.channel.put((producer_id, seq), key=KEYS[seq % 2])
        return count


@ray.remote(num_cpus=0)
class Consumer:
    def __init__(self, channel_name: str) -> None:
        self.channel = Channel.connect(channel_name)  # reached by name instead

    def run(self, key: str, batch_weight: float | None) -> list:
        received = []
        while True:
            try:
                if batch_weight is None:
                    received.append(self.channel.get(key=key, timeout=60))
                else:
                    received.extend(self.channel.get_batch(batch_weight, key=key, timeout=60))
            except ChannelClosed:
                return received


def test_four_by_four_actors_deliver_exactly_the_multiset_in_order(make_channel):
    ch = make_channel(maxsize=256)  # small enough that producers feel back-pressure
    producers = [Producer.remote(ch) for _ in range(PRODUCERS)]
    consumers = [Consumer.remote(ch.name) for _ in range(CONSUMERS)]
    # Two consumers per key; one of each pair pops single items, the other batches.
    plans = [("even", None), ("even", 16.0), ("odd", None), ("odd", 7.0)]
    consumed = [c.run.remote(key, w) for c, (key, w) in zip(consumers, plans, strict=True)]
    per_producer = ITEMS // PRODUCERS
    assert (
        ray.get([p.run.remote(i, per_producer) for i, p in enumerate(producers)])
        == [per_producer] * PRODUCERS
    )
    ch.close()
    results = ray.get(consumed, timeout=300)

    everything = [item for result in results for item in result]
    expected = [(p, s) for p in range(PRODUCERS) for s in range(per_producer)]
    assert Counter(everything) == Counter(expected), "the exact multiset, none lost or twice"
    for (key, _), result in zip(plans, results, strict=True):
        assert all(KEYS[seq % 2] == key for _, seq in result), "items stay under their key"
        for producer_id in range(PRODUCERS):
            seqs = [seq for p, seq in result if p == producer_id]
            assert seqs == sorted(seqs), "each producer's order is kept within a key"
    for producer in producers + consumers:
        ray.kill(producer)


@ray.remote(num_cpus=0)
class DoomedProducer:
    def put_large(self) -> list:
        return [ray.put(np.ones(1 << 20, dtype=np.float32))]


def test_payload_of_a_dead_producer_raises_item_lost(make_channel):
    ch = make_channel()
    producer = DoomedProducer.remote()
    [ref] = ray.get(producer.put_large.remote())
    ray.kill(producer)
    # Ray notices the owner's death asynchronously; wait until the payload is really gone
    # (repeated gets on our own copy of the reference consume nothing).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            ray.get(ref, timeout=5)
        except ray.exceptions.ObjectLostError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("Ray never reported the dead producer's payload as lost")
    # Queue the entry exactly as Channel.put would have before the producer died.
    ray.get(ch._actor.put.remote("default", ("r", ref), 1.0, None))
    with pytest.raises(ChannelItemLost, match="process that put it died"):
        ch.get(timeout=30)
    assert ch.qsize() == 0
