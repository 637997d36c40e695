"""Channel throughput against bare Ray, measured side by side in one run.

(a) small items: put+get pairs per second through a channel vs round trips of a bare Ray
    actor method, both from the driver one after another (latency-bound), and with a
    producer and a consumer actor working at once (throughput-bound). Goal: >= 0.5x.
    A pair is two calls and the baseline one, so 0.5x is the ceiling of the sequential
    case; a third line compares against the same two calls on a bare actor that keeps a
    plain deque (no keys, weights, timeouts or blocking), the overhead of our semantics.
(b) 64 MiB torch tensors from a producer actor to a consumer actor: through a channel vs
    raw ``ray.put`` + ``ray.get`` of the reference between the same two actors. Goal: >= 0.8x.
(c) many-to-many: 4 producer actors and 4 consumer actors on one channel, small items over
    3 keys, maxsize 16 (two consumers share the first key), items/s from the first put to the
    last consumer's return. No baseline: a figure to compare across versions.

Rounds alternate between the baseline and the channel and the median ratio is reported, so
a machine busy with other work slows both sides alike.

    RAY_ENABLE_UV_RUN_RUNTIME_ENV=0 uv run python benchmarks/channel.py
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import time

os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import ray
import torch

from rlinf.channel import Channel, ChannelClosed

MIB = 1 << 20


class _Echo:
    def __init__(self) -> None:
        self.items: collections.deque = collections.deque()

    def echo(self, item):
        return item

    def push(self, item) -> None:
        self.items.append(item)

    def pop(self):
        return self.items.popleft()

    def take(self, wrapped: list) -> int:
        tensor = ray.get(wrapped[0])
        return int(tensor.numel())


Echo = ray.remote(num_cpus=0)(_Echo)


@ray.remote(num_cpus=0)
class Producer:
    def ping(self) -> None:
        return None

    def put_small(self, channel: Channel, count: int) -> None:
        for i in range(count):
            channel.put(i)

    def call_small(self, echo, count: int) -> None:
        for i in range(count):
            ray.get(echo.echo.remote(i))

    def put_tensors(self, channel: Channel, count: int, nbytes: int) -> None:
        tensor = torch.ones(nbytes // 4, dtype=torch.float32)
        for _ in range(count):
            channel.put(tensor)

    def put_keyed(self, channel: Channel, producer_id: int, count: int, keys: list) -> None:
        for seq in range(count):
            channel.put((producer_id, seq), key=keys[seq % len(keys)])

    def send_raw(self, consumer, count: int, nbytes: int) -> None:
        tensor = torch.ones(nbytes // 4, dtype=torch.float32)
        for _ in range(count):
            ray.get(consumer.take.remote([ray.put(tensor)]))


@ray.remote(num_cpus=0)
class Consumer(_Echo):
    def ping(self) -> None:
        return None

    def get_small(self, channel: Channel, count: int) -> None:
        for _ in range(count):
            channel.get()

    def get_tensors(self, channel: Channel, count: int) -> int:
        return sum(int(channel.get().numel()) for _ in range(count))

    def drain(self, channel: Channel, key: str) -> int:
        received = 0
        while True:
            try:
                channel.get(key=key, timeout=300)
            except ChannelClosed:
                # Versions before the fix raised it spuriously on an open channel; going on
                # lets the figure be measured for them too.
                if channel.describe()["closed"]:
                    return received
                continue
            received += 1


def _rate(count: float, fn) -> float:
    start = time.perf_counter()
    fn()
    return count / (time.perf_counter() - start)


def small_sequential(channel: Channel, echo, count: int) -> tuple[float, float]:
    def ours() -> None:
        for i in range(count):
            channel.put(i)
            channel.get()

    def bare() -> None:
        for i in range(count):
            ray.get(echo.echo.remote(i))

    return _rate(count, bare), _rate(count, ours)


def small_vs_deque(channel: Channel, echo, count: int) -> tuple[float, float]:
    def ours() -> None:
        for i in range(count):
            channel.put(i)
            channel.get()

    def deque_actor() -> None:
        for i in range(count):
            ray.get(echo.push.remote(i))
            ray.get(echo.pop.remote())

    return _rate(count, deque_actor), _rate(count, ours)


def small_pipelined(channel: Channel, producer, consumer, echo, count: int) -> tuple[float, float]:
    def ours() -> None:
        ray.get(
            [producer.put_small.remote(channel, count), consumer.get_small.remote(channel, count)]
        )

    def bare() -> None:
        ray.get(producer.call_small.remote(echo, count))

    return _rate(count, bare), _rate(count, ours)


def large(channel: Channel, producer, consumer, count: int, nbytes: int) -> tuple[float, float]:
    def ours() -> None:
        done = consumer.get_tensors.remote(channel, count)
        ray.get(producer.put_tensors.remote(channel, count, nbytes))
        ray.get(done)

    def raw() -> None:
        ray.get(producer.send_raw.remote(consumer, count, nbytes))

    to_mib = nbytes / MIB
    return _rate(count * to_mib, raw), _rate(count * to_mib, ours)


MANY_KEYS = ["a", "b", "c"]


def many_to_many(producers: list, consumers: list, count: int, round_id: int) -> float:
    """Items/s with every producer and consumer actor working on one channel at once."""
    channel = Channel.create(f"bench-many-{round_id}", maxsize=16)
    try:
        plans = [MANY_KEYS[i % len(MANY_KEYS)] for i in range(len(consumers))]
        per_producer = count // len(producers)
        start = time.perf_counter()
        drained = [c.drain.remote(channel, key) for c, key in zip(consumers, plans, strict=True)]
        ray.get(
            [
                p.put_keyed.remote(channel, i, per_producer, MANY_KEYS)
                for i, p in enumerate(producers)
            ]
        )
        channel.close()
        received = sum(ray.get(drained))
        elapsed = time.perf_counter() - start
        if received != per_producer * len(producers):
            raise RuntimeError(f"many-to-many: {received} items received, {count} put")
        return received / elapsed
    finally:
        channel.kill()


def report(name: str, unit: str, rounds: list[tuple[float, float]], goal: float) -> None:
    base = statistics.median(b for b, _ in rounds)
    ours = statistics.median(o for _, o in rounds)
    ratio = statistics.median(o / b for b, o in rounds)
    verdict = "meets" if ratio >= goal else "below"
    print(
        f"{name:<44} baseline {base:9.1f} {unit}  channel {ours:9.1f} {unit}  "
        f"ratio {ratio:4.2f}x ({verdict} goal {goal}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--small", type=int, default=2000, help="small items per round")
    parser.add_argument("--large", type=int, default=8, help="64 MiB tensors per round")
    parser.add_argument("--many", type=int, default=4000, help="items per many-to-many round")
    parser.add_argument(
        "--only-many", action="store_true", help="run only the many-to-many figure (c)"
    )
    args = parser.parse_args()

    ray.init(num_cpus=4, include_dashboard=False, logging_level="ERROR")
    try:
        channel = Channel.create("bench-small")
        bulk = Channel.create("bench-large", maxsize=2)
        echo, producer, consumer = Echo.remote(), Producer.remote(), Consumer.remote()
        senders = [Producer.remote() for _ in range(4)]
        receivers = [Consumer.remote() for _ in range(4)]
        ray.get([echo.echo.remote(0), producer.ping.remote(), consumer.ping.remote()])
        ray.get([actor.ping.remote() for actor in senders + receivers])
        seq, deq, pipe, big, many = [], [], [], [], []
        for round_id in range(args.rounds):
            many.append(many_to_many(senders, receivers, args.many, round_id))
            if args.only_many:
                continue
            seq.append(small_sequential(channel, echo, args.small))
            deq.append(small_vs_deque(channel, echo, args.small))
            pipe.append(small_pipelined(channel, producer, consumer, echo, args.small))
            big.append(large(bulk, producer, consumer, args.large, 64 * MIB))
        print(f"ray {ray.__version__}, {os.cpu_count()} CPUs, {args.rounds} rounds, medians")
        print(
            f"{'(c) many-to-many, 4 producers x 4 consumers':<44} "
            f"channel {statistics.median(many):9.1f} items/s  "
            f"(3 keys, maxsize 16, {args.many} items per round)"
        )
        if args.only_many:
            return
        report("(a) small put+get, driver, sequential", "op/s", seq, 0.5)
        report("(a) small put+get, producer || consumer", "op/s", pipe, 0.5)
        report("(a') small put+get vs a bare deque actor", "op/s", deq, 0.5)
        report("(b) 64 MiB tensors, producer -> consumer", "MiB/s", big, 0.8)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
