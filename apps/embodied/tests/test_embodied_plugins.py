"""A user's advantage estimator, registered in a module of theirs, selected from the embodied
config through ``algo.plugins`` and used by the updater."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
import torch

from rlinf.algos import ADVANTAGE_ESTIMATORS
from rlinf.apps.embodied import load_embodied_config
from rlinf.core import ConfigError
from rlinf.models import PolicyConfig, build_policy
from rlinf.models.embodied import PolicyUpdater

MODULE = "rlinf_test_user_embodied_algos"
PLUGIN = textwrap.dedent(
    """
    from rlinf.algos import advantage_estimator

    @advantage_estimator("user_reward_minus_value", needs_values=True)
    def reward_minus_value(inp):
        return inp.rewards - inp.values, inp.rewards
    """
)


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / f"{MODULE}.py").write_text(PLUGIN)
    try:
        yield tmp_path
    finally:
        # The registry is process-wide: undo the plugin's registration for later tests.
        if sys.modules.pop(MODULE, None) is not None:
            ADVANTAGE_ESTIMATORS.unregister("user_reward_minus_value")


class _Spec:
    def __init__(self, shape):
        self.shape, self.dtype, self.is_image = shape, np.float32, False


class _Action:
    kind, shape, n, low, high = "discrete", (), 2, None, None


def test_plugin_estimator_selected_from_config(plugin_dir):
    with pytest.raises(ConfigError, match=r"algo: name: unknown advantage estimator"):
        load_embodied_config("cartpole", ["algo.name=user_reward_minus_value"])
    cfg = load_embodied_config(
        "cartpole", [f"algo.plugins=[{MODULE}]", "algo.name=user_reward_minus_value"]
    )
    policy = build_policy(PolicyConfig(hidden_sizes=(8,)), {"state": _Spec((3,))}, _Action())
    up = PolicyUpdater(policy, cfg.algo, total_updates=1)
    rewards = torch.tensor([[1.0, 2.0], [0.5, -1.0]])
    values = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    flags = torch.zeros(2, 2, dtype=torch.bool)
    batch = {
        "rewards": rewards,
        "values": values,
        "next_values": values,
        "terminated": flags,
        "truncated": flags,
    }
    adv, ret = up.advantages(batch)
    torch.testing.assert_close(adv, torch.tensor([[0.5, 1.5], [-0.5, -1.0]]))
    torch.testing.assert_close(ret, rewards)
