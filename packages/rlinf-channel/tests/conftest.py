from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import ray

from rlinf.channel import Channel

_names = itertools.count()


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A small local Ray cluster per test module, reused if one is already running."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=8, num_gpus=0, include_dashboard=False, logging_level="ERROR")
    yield
    if started:
        ray.shutdown()


@pytest.fixture
def make_channel(ray_cluster: None) -> Iterator:
    """Create channels with unique names; kill them all after the test."""
    created: list[Channel] = []

    def make(maxsize: int = 0, **options) -> Channel:
        channel = Channel.create(f"test-channel-{next(_names)}", maxsize=maxsize, **options)
        created.append(channel)
        return channel

    yield make
    for channel in created:
        channel.kill()
