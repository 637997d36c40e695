"""Which rollout rank serves each (env rank, stage) link, and what each rank expects."""

from __future__ import annotations

from rlinf.models.embodied._link_plan import plan_links


def test_round_robin_over_rollout_ranks_counts_requests_and_peers():
    plan = plan_links(["r0", "r1"], env_ranks=3, stages=2, horizon=4)
    # Links in (env, stage) order: 0 1 0 1 0 1 -> every stage s goes to rank s.
    assert plan.endpoints == [["r0", "r1"], ["r0", "r1"], ["r0", "r1"]]
    assert plan.peers == [3, 3]
    assert plan.requests == [3 * 5, 3 * 5]  # horizon + 1 per link


def test_one_rollout_rank_serves_every_stage_of_every_env_worker():
    plan = plan_links(["only"], env_ranks=2, stages=3, horizon=7)
    assert plan.endpoints == [["only"] * 3, ["only"] * 3]
    assert (plan.peers, plan.requests) == ([6], [6 * 8])


def test_more_rollout_ranks_than_links_leaves_some_idle():
    plan = plan_links(["a", "b", "c"], env_ranks=1, stages=2, horizon=1)
    assert plan.endpoints == [["a", "b"]]
    assert (plan.peers, plan.requests) == ([1, 1, 0], [2, 2, 0])
