"""Measure what the calling process (the driver) fetches from and puts into Ray's object
store, to check that a flow keeps payloads off the driver."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import ray
from ray import cloudpickle

__all__ = ["DriverTraffic", "count_driver_traffic"]


@dataclass
class DriverTraffic:
    """Bytes this process received through ``ray.get`` and sent through ``ray.put``.

    Sizes are the cloudpickle size of each value: the bytes that crossed between this
    process and the object store, within a few bytes of framing. ``ObjectRef``\\ s count as
    their own small size, not as the object they name.

    Attributes:
        received_bytes: total size of every value ``ray.get`` returned here.
        sent_bytes: total size of every value ``ray.put`` stored from here.
        largest_received: size of the largest single value received.
        gets: number of values received.
    """

    received_bytes: int = 0
    sent_bytes: int = 0
    largest_received: int = 0
    gets: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _received(self, value: Any) -> None:
        size = len(cloudpickle.dumps(value))
        with self._lock:
            self.received_bytes += size
            self.largest_received = max(self.largest_received, size)
            self.gets += 1

    def _sent(self, value: Any) -> None:
        size = len(cloudpickle.dumps(value))
        with self._lock:
            self.sent_bytes += size


@contextlib.contextmanager
def count_driver_traffic() -> Iterator[DriverTraffic]:
    """Count, while the block runs, what this process gets from and puts into the object
    store (every caller of ``ray.get`` / ``ray.put`` here: WorkerGroup futures, channels).

    A diagnostic for tests and benchmarks: it re-pickles each value to size it, so keep it
    out of timed runs.
    """
    traffic = DriverTraffic()
    real_get, real_put = ray.get, ray.put

    def get(refs: Any, *args: Any, **kwargs: Any) -> Any:
        values = real_get(refs, *args, **kwargs)
        for value in values if isinstance(refs, list) else [values]:
            traffic._received(value)
        return values

    def put(value: Any, *args: Any, **kwargs: Any) -> Any:
        traffic._sent(value)
        return real_put(value, *args, **kwargs)

    ray.get, ray.put = get, put
    try:
        yield traffic
    finally:
        ray.get, ray.put = real_get, real_put
