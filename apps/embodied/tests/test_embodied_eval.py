"""Evaluation episode accounting."""

import numpy as np
import pytest

from rlinf.apps.embodied._eval import episode_quota


def test_quota_splits_episodes_evenly_over_envs():
    assert episode_quota(10, 4).tolist() == [3, 3, 2, 2]
    assert episode_quota(3, 4).tolist() == [1, 1, 1, 0]
    assert episode_quota(8, 1).tolist() == [8]
    assert int(np.sum(episode_quota(50, 7))) == 50


def test_quota_rejects_no_episodes():
    with pytest.raises(ValueError, match="episodes must be >= 1"):
        episode_quota(0, 4)
