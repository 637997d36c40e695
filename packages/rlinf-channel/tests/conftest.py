from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from rlinf.channel import Channel

_names = itertools.count()


@pytest.fixture(scope="module")
def ray_init_kwargs() -> dict:
    # The channel tests' Ray (`ray_cluster`, root conftest.py): room for many actors.
    return {"num_cpus": 8, "logging_level": "ERROR"}


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
