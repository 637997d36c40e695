"""count_driver_traffic sizes what the driver gets and puts, not what references name."""

from __future__ import annotations

import numpy as np
import ray

from rlinf.core import count_driver_traffic


@ray.remote
def _make(n: int) -> np.ndarray:
    return np.ones(n, dtype=np.uint8)


@ray.remote
def _make_ref(n: int) -> list[ray.ObjectRef]:
    return [ray.put(np.ones(n, dtype=np.uint8))]


def test_counts_values_received_and_sent_but_not_what_refs_name(cluster):
    with count_driver_traffic() as traffic:
        big = ray.get(_make.remote(200_000))
        ref = ray.put(np.zeros(300_000, dtype=np.uint8))
        nested = ray.get(_make_ref.remote(500_000))
    assert big.nbytes == 200_000
    assert 200_000 <= traffic.largest_received < 201_000
    # The nested reference travels as a reference: the 500 KB it names stays off the driver.
    assert isinstance(nested[0], ray.ObjectRef)
    assert traffic.gets == 2
    assert 200_000 < traffic.received_bytes < 202_000
    assert 300_000 <= traffic.sent_bytes < 301_000
    # Outside the block nothing is counted and ray.get is Ray's own again.
    assert ray.get(ref).nbytes == 300_000
    assert traffic.gets == 2
