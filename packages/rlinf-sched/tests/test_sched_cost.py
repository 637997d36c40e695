"""The planner's cost model against hand-computed iterations, one formula and mode at a time.

Profile used throughout (fits hand-derived in test_sched_profile):
env t(D) = 0.2 + 1.8/D, rollout t(D) = 1/D, actor t(D) = 0.2 + 2.8/D, weight sync 0.1 s.
"""

from __future__ import annotations

import math

import pytest

from rlinf.sched import (
    ComponentProfile,
    FlowProfile,
    Placement,
    PlacementError,
    ProfileError,
    Topology,
    format_devices,
    parse_indices,
    predict,
    predict_placement,
)

GiB = 2**30


def profile(
    *, actor_gib: int = 8, actor_idle: int | None = None, rollout_overhead: float = 0.0
) -> FlowProfile:
    return FlowProfile(
        components=(
            ComponentProfile("env", {1: 2.0, 2: 1.1}, GiB),
            ComponentProfile(
                "rollout", {1: 1.0}, 4 * GiB, idle_bytes=GiB, overhead_s=rollout_overhead
            ),
            ComponentProfile(
                "actor",
                {1: 3.0, 2: 1.6},
                actor_gib * GiB,
                idle_bytes=None if actor_idle is None else actor_idle * GiB,
            ),
        ),
        update="actor",
        device_memory_bytes=16 * GiB,
        weight_sync_s=0.1,
        micro_batches=(1, 2, 4),
        overlap_update=True,
    )


ALL = range(4)


def test_collocated_times_add():
    # env 0.65 + rollout 0.25 on 4 devices, then actor 0.9, then sync 0.1.
    p = predict(profile(), {"env": ALL, "rollout": ALL, "actor": ALL})
    assert p.feasible and p.chain_s == pytest.approx(0.9) and p.update_s == pytest.approx(0.9)
    assert p.seconds == pytest.approx(1.9)
    assert [s.names for s in p.stages] == [("env", "rollout")]
    assert "env+rollout 0-3 (actor with env+rollout)" in p.reason


def test_collocated_micro_batches_cost_only_their_overhead():
    # One stage: M micro-batches of (0.9/M + 0.01) each = 0.9 + M * 0.01.
    p = predict(
        profile(rollout_overhead=0.01), {"env": ALL, "rollout": ALL, "actor": ALL}, micro_batches=2
    )
    assert p.chain_s == pytest.approx(0.92) and p.seconds == pytest.approx(1.92)


def test_collocated_overlap_gains_nothing():
    # The actor takes turns with env+rollout on the same devices: busy = 0.9 + 0.9.
    p = predict(profile(), {"env": ALL, "rollout": ALL, "actor": ALL}, overlap_update=True)
    assert p.seconds == pytest.approx(1.9)
    assert "bound by actor's devices busy 1.8 s" in p.reason


@pytest.mark.parametrize(
    ("m", "overlap", "chain", "total"),
    [
        # env on 2 devices 1.1 s, rollout on 1 device 1.0 s, actor on 1 device 3.0 s.
        (1, False, 2.1, 2.1 + 3.0 + 0.1),
        # stages 0.55 and 0.5 per micro-batch: warm-up 1.05, then 1 x 0.55.
        (2, False, 1.6, 1.6 + 3.0 + 0.1),
        # stages 0.275 and 0.25: 0.525 + 3 x 0.275.
        (4, False, 1.35, 1.35 + 3.0 + 0.1),
        # the update on its own device overlaps the chain: max(1.6, 3.0).
        (2, True, 1.6, 3.0 + 0.1),
    ],
)
def test_disaggregated_pipeline(m, overlap, chain, total):
    devices = {"env": [0, 1], "rollout": [2], "actor": [3]}
    p = predict(profile(), devices, micro_batches=m, overlap_update=overlap)
    assert p.chain_s == pytest.approx(chain) and p.seconds == pytest.approx(total)
    assert [s.names for s in p.stages] == [("env",), ("rollout",)]
    assert p.stages[0].seconds == pytest.approx(1.1 / m)


def test_disaggregated_reason_names_the_bound():
    devices = {"env": [0, 1], "rollout": [2], "actor": [3]}
    p = predict(profile(), devices, micro_batches=2)
    assert p.reason.startswith("env 0-1 | rollout 2 | actor 3: 2 micro-batch(es) pipelined")
    assert "bound by env 0.55 s each" in p.reason
    q = predict(profile(), devices)
    assert q.reason == (
        "env 0-1 | rollout 2 | actor 3: env then rollout, not pipelined (chain 2.1 s); "
        "then update 3 s; sync 0.1 s"
    )


def test_hybrid_groups_collocate_inside_and_pipeline_between():
    # env 0-1: 1.1 s; rollout + actor on 2-3: 0.5 s and 1.6 s, taking turns.
    devices = {"env": [0, 1], "rollout": [2, 3], "actor": [2, 3]}
    p = predict(profile(), devices, micro_batches=2)
    # stages 0.55 and 0.25: chain 0.8 + 0.55.
    assert p.chain_s == pytest.approx(1.35) and p.seconds == pytest.approx(1.35 + 1.6 + 0.1)
    q = predict(profile(), devices, micro_batches=2, overlap_update=True)
    # overlap: the actor's devices also serve rollout: busy = 1.6 + 0.5 > chain 1.35.
    assert q.seconds == pytest.approx(2.1 + 0.1)


def test_partially_shared_devices_form_one_group():
    # env spans the devices of rollout and of actor: all three take turns.
    placement = Placement.parse(
        {"env": "0-3", "rollout": "0-1", "actor": "2-3"}, Topology.uniform(1, 4)
    )
    p = predict_placement(profile(), placement)
    # env 0.65 + rollout 0.5, then actor 1.6, sync 0.1.
    assert p.seconds == pytest.approx(2.85)
    assert [s.names for s in p.stages] == [("env", "rollout")]


def test_memory_of_collocated_components_must_fit():
    devices = {"env": ALL, "rollout": ALL, "actor": ALL}
    p = predict(profile(actor_gib=12), devices)
    assert not p.feasible and math.isinf(p.seconds)
    # Turns: env 1+1+12, rollout 4+1+12, actor 12+1+1: rollout's turn is the worst.
    assert p.reason == (
        "env+rollout 0-3 (actor with env+rollout): infeasible: device 0 out of memory: "
        "rollout 4.0 + env idle 1.0 + actor idle 12.0 = 17.0 GiB > 16.0 GiB"
    )


def test_memory_check_counts_idle_bytes_while_another_runs():
    devices = {"env": ALL, "rollout": ALL, "actor": ALL}
    # The actor offloads to 2 GiB between turns, so only its own turn is tight:
    # actor peak 15 while env (1) and rollout (idle 1) stay = 17 > 16.
    p = predict(profile(actor_gib=15, actor_idle=2), devices)
    assert not p.feasible
    assert p.reason.endswith(
        "device 0 out of memory: actor 15.0 + env idle 1.0 + rollout idle 1.0 = 17.0 GiB > 16.0 GiB"
    )
    # 14 + 1 + 1 = 16 fits exactly; the other turns need 1+1+2 and 4+1+2.
    q = predict(profile(actor_gib=14, actor_idle=2), devices)
    assert q.feasible and q.seconds == pytest.approx(1.9)
    # Without offloading, rollout's turn (4 + 1 + 14) is over.
    assert not predict(profile(actor_gib=14), devices).feasible
    # Disaggregated, each fits alone.
    r = predict(profile(actor_gib=15), {"env": [0, 1], "rollout": [2], "actor": [3]})
    assert r.feasible


def test_max_devices_is_enforced():
    prof = FlowProfile(
        (
            ComponentProfile("rollout", {1: 1.0}, GiB),
            ComponentProfile("reward", {1: 0.3}, GiB, max_devices=1),
            ComponentProfile("actor", {1: 1.0}, GiB),
        ),
        update="actor",
        device_memory_bytes=4 * GiB,
    )
    p = predict(prof, {"rollout": [0], "reward": [1, 2], "actor": [3]})
    assert not p.feasible and "reward on 2 devices > max_devices 1" in p.reason


def test_bad_requests_raise():
    with pytest.raises(PlacementError, match=r"unknown \['critic'\], missing \['actor'\]"):
        predict(profile(), {"env": [0], "rollout": [1], "critic": [2]})
    with pytest.raises(PlacementError, match="'rollout' is placed on no devices"):
        predict(profile(), {"env": [0], "rollout": [], "actor": [2]})
    devices = {"env": [0], "rollout": [1], "actor": [2]}
    with pytest.raises(ProfileError, match=r"micro_batches=3 is not one the profile allows"):
        predict(profile(), devices, micro_batches=3)
    strict = FlowProfile(profile().components, "actor", 16 * GiB)
    with pytest.raises(ProfileError, match="profile does not allow overlapping"):
        predict(strict, devices, overlap_update=True)


def test_format_devices_round_trips_through_parse_indices():
    assert format_devices([8, 0, 1, 2, 5, 7]) == "0-2,5,7-8"
    assert format_devices([3]) == "3"
    assert parse_indices(format_devices([0, 1, 2, 5, 7, 8])) == [0, 1, 2, 5, 7, 8]
