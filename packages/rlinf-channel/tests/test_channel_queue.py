"""Single-process semantics: FIFO per key, weights, batches, non-blocking calls, errors."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import ray

from rlinf.channel import (
    Channel,
    ChannelEmpty,
    ChannelExists,
    ChannelFull,
    ChannelNotFound,
    ChannelTimeout,
)
from rlinf.channel._payload import INLINE_LIMIT_BYTES, pack, unpack_all


def test_fifo_per_key_and_keys_are_independent(make_channel):
    ch = make_channel()
    for i in range(5):
        ch.put(("a", i), key="a")
        ch.put(("b", i), key="b")
    assert ch.qsize("a") == 5 and ch.qsize("b") == 5 and ch.qsize("c") == 0
    assert [ch.get(key="b") for _ in range(5)] == [("b", i) for i in range(5)]
    assert [ch.get(key="a") for _ in range(5)] == [("a", i) for i in range(5)]
    assert ch.empty("a") and ch.empty("b")


def test_non_hashable_key_types_work_across_processes(make_channel):
    ch = make_channel()
    ch.put("x", key=("env", 3))
    ch.put("y", key=7)
    assert ch.get(key=7) == "y"
    assert ch.get(key=("env", 3)) == "x"


def test_nowait_calls_raise_instead_of_waiting(make_channel):
    ch = make_channel(maxsize=2)
    with pytest.raises(ChannelEmpty, match=r"key .default.*empty"):
        ch.get_nowait()
    ch.put_nowait(1)
    ch.put_nowait(2)
    assert ch.full()
    with pytest.raises(ChannelFull, match="full"):
        ch.put_nowait(3)
    assert ch.get_nowait() == 1
    ch.put_nowait(3)
    assert [ch.get_nowait(), ch.get_nowait()] == [2, 3]


def test_timeouts_raise_and_move_nothing(make_channel):
    ch = make_channel(maxsize=1)
    with pytest.raises(ChannelTimeout, match=r"timed out after 0\.2 s"):
        ch.get(timeout=0.2)
    ch.put("first")
    with pytest.raises(ChannelTimeout):
        ch.put("second", timeout=0.2)
    assert ch.qsize() == 1
    assert ch.get(timeout=0.2) == "first"
    assert isinstance(ChannelTimeout("x"), TimeoutError)


def test_back_pressure_blocks_put_until_a_get_makes_room(make_channel):
    ch = make_channel(maxsize=2)
    ch.put(0)
    ch.put(1)
    done = threading.Event()

    def producer() -> None:
        ch.put(2)  # blocks: the key holds maxsize items
        done.set()

    thread = threading.Thread(target=producer)
    thread.start()
    assert not done.wait(0.5), "put on a full key must block"
    assert ch.get() == 0
    assert done.wait(60), "put must complete once a get made room"
    thread.join()
    assert [ch.get(), ch.get()] == [1, 2]


def test_get_batch_pops_greedily_within_target(make_channel):
    ch = make_channel()
    for item, weight in [("a", 1), ("b", 2), ("c", 3), ("d", 1)]:
        ch.put(item, weight=weight)
    assert ch.weight() == 7
    # Queued weight 7 >= 4; a (1) + b (2) = 3 fits, c would make 6 > 4, FIFO stops there.
    assert ch.get_batch(4) == ["a", "b"]
    assert ch.get_batch(4) == ["c", "d"]
    assert ch.weight() == 0


def test_get_batch_waits_for_the_target_weight(make_channel):
    ch = make_channel()
    ch.put("a", weight=2)
    with pytest.raises(ChannelTimeout):
        ch.get_batch(3, timeout=0.2)
    assert ch.qsize() == 1, "a timed-out batch pops nothing"
    result: list = []
    thread = threading.Thread(target=lambda: result.append(ch.get_batch(3, timeout=60)))
    thread.start()
    time.sleep(0.2)
    ch.put("b", weight=1)
    thread.join()
    assert result == [["a", "b"]]


def test_get_batch_returns_what_fits_when_the_key_is_full(make_channel):
    # maxsize 2 with weights 1 can never reach 5: waiting would deadlock with the producers.
    ch = make_channel(maxsize=2)
    ch.put("a")
    ch.put("b")
    assert ch.get_batch(5, timeout=60) == ["a", "b"]


def test_get_batch_rejects_an_item_heavier_than_the_target(make_channel):
    ch = make_channel()
    ch.put("big", weight=10)
    with pytest.raises(ValueError, match=r"weighs 10\.0, more than the batch target"):
        ch.get_batch(4, timeout=1)
    assert ch.get() == "big"


def test_get_batch_nowait_takes_what_is_there(make_channel):
    ch = make_channel()
    with pytest.raises(ChannelEmpty):
        ch.get_batch_nowait(4)
    ch.put(1, weight=1.5)
    ch.put(2, weight=1.5)
    ch.put(3, weight=1.5)
    assert ch.get_batch_nowait(10) == [1, 2, 3]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda ch: ch.put(1, weight=-1), "weight must be finite and >= 0"),
        (lambda ch: ch.put(1, weight=math.nan), "weight must be finite"),
        (lambda ch: ch.put(1, timeout=-1), "timeout must be None or >= 0"),
        (lambda ch: ch.get(timeout=math.nan), "timeout must be None or >= 0"),
        (lambda ch: ch.get_batch(0), "target_weight must be finite and > 0"),
        (lambda ch: ch.get_batch(math.inf), "target_weight must be finite"),
    ],
)
def test_bad_arguments_are_rejected_before_anything_is_sent(make_channel, call, match):
    ch = make_channel()
    with pytest.raises(ValueError, match=match):
        call(ch)
    assert ch.qsize() == 0


def test_create_connect_and_name_errors(make_channel):
    ch = make_channel()
    with pytest.raises(ChannelExists, match=repr(ch.name)):
        Channel.create(ch.name)
    other = Channel.connect(ch.name)
    other.put("via connect")
    assert ch.get() == "via connect"
    with pytest.raises(ChannelNotFound, match="'no-such-channel'"):
        Channel.connect("no-such-channel")
    with pytest.raises(ValueError, match="maxsize must be >= 0"):
        Channel.create("negative", maxsize=-1)


def test_small_items_travel_by_value_and_large_ones_by_reference(ray_cluster):
    small = {"step": 3, "obs": np.zeros(16, dtype=np.float32), "tag": "x" * 100}
    large = np.zeros(INLINE_LIMIT_BYTES, dtype=np.uint8)
    assert pack(small)[0] == "v"
    assert pack(large)[0] == "r" and isinstance(pack(large)[1], ray.ObjectRef)
    assert pack(np.array([object()], dtype=object))[0] == "r"
    assert pack(list(range(10_000)))[0] == "r"
    restored = unpack_all([pack(small), pack(large)])
    assert restored[0]["tag"] == small["tag"] and np.array_equal(restored[1], large)


def test_the_actor_stores_references_not_payloads(make_channel):
    ch = make_channel()
    payload = np.arange(1_000_000, dtype=np.float64)
    entry = pack(payload)
    ray.get(ch._actor.put.remote("k", entry, 1.0, None))
    reply = ray.get(ch._actor.get.remote("k", None, "request-3"))
    (kind, returned_ref) = reply[1][0]
    assert kind == "r"
    assert returned_ref.hex() == entry[1].hex(), "the same object reference comes back"


def test_large_numpy_arrays_arrive_zero_copy(make_channel):
    ch = make_channel()
    payload = np.arange(1 << 20, dtype=np.float32)
    ch.put(payload)
    received = ch.get()
    np.testing.assert_array_equal(received, payload)
    # Read-only means the array is a view on the shared-memory object store, not a copy.
    assert not received.flags.writeable


def test_inline_limit_zero_sends_every_payload_through_the_store(make_channel):
    ch = make_channel(inline_limit=0)
    assert Channel.connect(ch.name).describe()["inline_limit"] == 0
    connected = Channel.connect(ch.name)
    connected.put(7)  # a handle from connect() follows the channel's limit
    reply = ray.get(ch._actor.get.remote("default", None, "request-4"))
    kind, ref = reply[1][0]
    assert kind == "r" and ray.get(ref) == 7
    with pytest.raises(ValueError, match="inline_limit must be >= 0"):
        Channel.create("bad-limit", inline_limit=-1)
