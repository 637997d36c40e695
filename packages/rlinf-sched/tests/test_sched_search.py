"""The placement search: candidate enumeration, ranking, rendering, bounds on 64 devices."""

from __future__ import annotations

import math
from math import comb

import pytest

from rlinf.sched import (
    ComponentProfile,
    FlowProfile,
    Node,
    PlacementError,
    PlacementMode,
    SearchConfig,
    Topology,
    format_ranking,
    search,
    split_points,
)

GiB = 2**30


def embodied(actor_gib: int = 8) -> FlowProfile:
    # env t = 0.2 + 1.8/D, rollout t = 1/D, actor t = 0.2 + 2.8/D (see test_sched_profile).
    return FlowProfile(
        components=(
            ComponentProfile("env", {1: 2.0, 2: 1.1}, GiB),
            ComponentProfile("rollout", {1: 1.0}, 4 * GiB),
            ComponentProfile("actor", {1: 3.0, 2: 1.6}, actor_gib * GiB),
        ),
        update="actor",
        device_memory_bytes=16 * GiB,
        weight_sync_s=0.1,
        micro_batches=(1, 2, 4),
        overlap_update=True,
    )


def layouts(ranked) -> set[tuple[str, ...]]:
    return {tuple(r.specs.values()) for r in ranked}


def test_small_topology_enumerates_every_grouping_and_split():
    topo = Topology.uniform(1, 4)
    ranked = search(embodied(), topo)
    # Groupings of 3 components: 1 collocated, 3 hybrid pairs, 1 disaggregated; cuts at
    # 1, 2 or 3: 1 + 3 * 3 + C(3, 2) = 13 layouts.
    assert len(layouts(ranked)) == 13
    seconds = [r.seconds for r in ranked]
    assert seconds == sorted(seconds)
    assert {r.to_placement(topo).mode for r in ranked} == set(PlacementMode)
    # Every layout has its plain variant; other variants only where they are faster than
    # every simpler one on the same layout.
    by_layout: dict[tuple[str, ...], list] = {}
    for r in ranked:
        by_layout.setdefault(tuple(r.specs.values()), []).append(r)
    for variants in by_layout.values():
        plain = [v for v in variants if (v.micro_batches, v.overlap_update) == (1, False)]
        assert len(plain) == 1
        for v in variants:
            simpler = [
                w
                for w in variants
                if w is not v
                and w.micro_batches <= v.micro_batches
                and w.overlap_update <= v.overlap_update
            ]
            assert all(w.seconds > v.seconds for w in simpler)
    # Collocated: pipelining and overlap change nothing (no overhead, one device group).
    assert len(by_layout[("0-3", "0-3", "0-3")]) == 1
    # env 0-1 | rollout 2 | actor 3 (test_sched_cost): no overlap 5.2, 4.7, 4.45 s for 1, 2,
    # 4 micro-batches; overlap 3.1 s whatever the count (bound by the actor's 3.0 s).
    kept = {(v.micro_batches, v.overlap_update): v.seconds for v in by_layout[("0-1", "2", "3")]}
    assert kept == pytest.approx(
        {(1, False): 5.2, (2, False): 4.7, (4, False): 4.45, (1, True): 3.1}
    )


def test_ranking_picks_the_hand_computed_best():
    topo = Topology.uniform(1, 4)
    ranked = search(embodied(), topo)
    best = ranked[0]
    # env+rollout on 0-1: 1.1 + 0.5 = 1.6; actor on 2-3: 1.6, overlapped: max + 0.1 sync.
    assert dict(best.specs) == {"env": "0-1", "rollout": "0-1", "actor": "2-3"}
    assert best.seconds == pytest.approx(1.7)
    assert (best.micro_batches, best.overlap_update) == (1, True)  # ties: fewest, no overlap
    assert best.prediction.reason == (
        "env+rollout 0-1 | actor 2-3: env+rollout take turns 1.6 s; "
        "update 1.6 s overlapped, bound by chain; sync 0.1 s"
    )
    # Runner-up: all collocated, 0.65 + 0.25 + 0.9 + 0.1, without overlap (it gains nothing).
    second = ranked[1]
    assert dict(second.specs) == {"env": "0-3", "rollout": "0-3", "actor": "0-3"}
    assert second.seconds == pytest.approx(1.9) and not second.overlap_update
    placement = best.to_placement(topo)
    assert placement.mode == PlacementMode.HYBRID
    assert [r.devices for r in placement["actor"].ranks] == [(2,), (3,)]
    assert best.to_config() == {
        "placement": {"env": "0-1", "rollout": "0-1", "actor": "2-3"},
        "micro_batches": 1,
        "overlap_update": True,
        "lending": False,
        "wide": False,
    }


def test_infeasible_candidates_are_dropped_or_ranked_last():
    topo = Topology.uniform(1, 4)
    tight = embodied(actor_gib=13)  # actor 13 + rollout 4 > 16 wherever both sit
    ranked = search(tight, topo)
    assert ranked and all(r.prediction.feasible for r in ranked)
    assert all(
        not set(r.to_placement(topo)["actor"].devices)
        & set(r.to_placement(topo)["rollout"].devices)
        for r in ranked
    )
    every = search(tight, topo, SearchConfig(include_infeasible=True))
    assert len(layouts(every)) == 13
    bad = [r for r in every if not r.prediction.feasible]
    assert bad and every[-len(bad) :] == tuple(bad)
    assert all(math.isinf(r.seconds) and "out of memory" in r.prediction.reason for r in bad)
    assert len(layouts(bad)) == len(bad)  # an infeasible layout is listed once


def test_max_devices_caps_a_group_and_skips_wasted_splits():
    prof = FlowProfile(
        (
            ComponentProfile("rollout", {1: 4.0}, GiB),
            ComponentProfile("reward", {1: 0.5}, GiB, max_devices=1),
            ComponentProfile("actor", {1: 4.0}, GiB),
        ),
        update="actor",
        device_memory_bytes=4 * GiB,
    )
    ranked = search(prof, Topology.uniform(1, 4), SearchConfig(include_infeasible=True))
    assert all(r.prediction.feasible for r in ranked)
    # reward alone gets exactly one device; collocated it uses the group's first device.
    for r in ranked:
        assert len(r.to_placement(Topology.uniform(1, 4))["reward"].devices) == 1
    best = ranked[0]
    # rollout+actor on 0-3 (1.0 + 1.0) with reward on 0: rollout 1 + reward 0.5 + actor 1.
    assert best.seconds == pytest.approx(2.5)
    assert dict(best.specs) == {"rollout": "0-3", "reward": "0", "actor": "0-3"}


def test_split_points_bound_large_topologies():
    assert split_points(4, 16) == (1, 2, 3)
    assert split_points(64, 16) == (
        *(1, 2, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60, 62, 63),
    )
    with pytest.raises(ValueError, match="max_split_points must be >= 2"):
        SearchConfig(max_split_points=1)
    with pytest.raises(PlacementError, match="cannot plan on a topology without devices"):
        search(embodied(), Topology((Node(0, 0),)))


def test_fewer_devices_than_components_still_collocates():
    ranked = search(embodied(), Topology.uniform(1, 1))
    # One device: only the collocated layout, 2.0 + 1.0 then 3.0, sync 0.1.
    assert [dict(r.specs) for r in ranked] == [{"env": "0", "rollout": "0", "actor": "0"}]
    assert ranked[0].seconds == pytest.approx(6.1)


def test_search_on_64_devices_is_bounded_and_parses_back():
    prof = FlowProfile(
        (
            ComponentProfile("rollout", {8: 4.0, 16: 2.2}, 30 * GiB, idle_bytes=2 * GiB),
            ComponentProfile("reward", {1: 0.5}, GiB, max_devices=1),
            ComponentProfile("env", {1: 6.0}, GiB),
            ComponentProfile("actor", {8: 6.0, 16: 3.5}, 50 * GiB, idle_bytes=4 * GiB),
        ),
        update="actor",
        device_memory_bytes=80 * GiB,
        weight_sync_s=0.5,
        micro_batches=(1, 2, 4),
        overlap_update=True,
    )
    topo = Topology.uniform(8, 8, device_type="gpu")
    ranked = search(prof, topo, SearchConfig(include_infeasible=True))
    cuts = len(split_points(64, 16))  # 19
    # 4 components: 1 + 7 + 6 + 1 groupings into 1..4 groups, each with C(19, k-1) cuts,
    # each layout x 3 micro-batch counts x 2 overlap flags (wasted splits pruned).
    layouts = 1 + 7 * cuts + 6 * comb(cuts, 2) + comb(cuts, 3)
    assert 0 < len(ranked) <= layouts * 6
    best = ranked[0]
    assert best.prediction.feasible
    placement = best.to_placement(topo)
    assert set(placement.components) == {"rollout", "reward", "env", "actor"}
    assert placement.devices == tuple(range(64))


def test_format_ranking_table():
    ranked = search(embodied(), Topology.uniform(1, 4))
    text = format_ranking(ranked, top=2)
    lines = text.splitlines()
    assert lines[0].split() == ["#", "s/iter", "mb", "overlap", "sched", "reason"]
    assert lines[1].startswith("  1     1.700    1  yes      static  env+rollout 0-1 | actor 2-3:")
    assert lines[3] == f"... {len(ranked) - 2} more candidate(s)"
    with pytest.raises(ValueError, match="top must be >= 1"):
        format_ranking(ranked, top=0)
