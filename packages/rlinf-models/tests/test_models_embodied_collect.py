"""The embodied flow's env metrics, from the env workers' counters (no arrays reach the
driver): episode means over all workers and the clipped-action fraction."""

from __future__ import annotations

import pytest

from rlinf.models.embodied._collect import episode_metrics


def _result(count, ret, length, succ_n, succ, outside, components):
    return {
        "episodes": {
            "count": count,
            "return_sum": ret,
            "length_sum": length,
            "success_count": succ_n,
            "success_sum": succ,
        },
        "actions_out_of_bounds": outside,
        "action_components": components,
    }


def test_episode_means_pool_workers_and_clipped_fraction_is_reported():
    out = episode_metrics(
        [_result(2, 30.0, 20.0, 2, 1.0, 3, 40), _result(1, 6.0, 10.0, 0, 0.0, 1, 40)]
    )
    # Means over the 3 episodes, not of the two workers' means.
    assert out["env/episodes"] == 3.0
    assert out["env/return_mean"] == pytest.approx(12.0)
    assert out["env/length_mean"] == pytest.approx(10.0)
    assert out["env/success_rate"] == pytest.approx(0.5)  # only episodes that report success
    assert out["env/clipped_action_fraction"] == pytest.approx(4 / 80)


def test_no_episodes_and_discrete_actions_report_only_what_exists():
    out = episode_metrics([_result(0, 0.0, 0.0, 0, 0.0, 0, 0)])
    assert out == {"env/episodes": 0.0}
