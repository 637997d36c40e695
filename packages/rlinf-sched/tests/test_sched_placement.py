"""Placement spec parsing, classification, rank mapping and bad specs."""

from __future__ import annotations

import pytest

from rlinf.sched import (
    Node,
    Placement,
    PlacementError,
    PlacementMode,
    Topology,
    classify_groups,
    parse_indices,
)

TOPO = Topology.uniform(2, 4, node_groups={"sim": [1], "train": [0]})


def devices(p: Placement, name: str) -> list[tuple[int, ...]]:
    return [r.devices for r in p[name].ranks]


def test_parse_indices():
    assert parse_indices("0-3,6, 8-9") == [0, 1, 2, 3, 6, 8, 9]
    with pytest.raises(ValueError, match="'x' is not an index"):
        parse_indices("1,x")


def test_ranges_lists_all_and_ints():
    p = Placement.parse({"a": "0-3", "b": [4, "6-7"], "c": "all", "d": 5, "e": "train@all"}, TOPO)
    assert devices(p, "a") == [(0,), (1,), (2,), (3,)]
    assert devices(p, "b") == [(4,), (6,), (7,)]
    assert p["c"].world_size == 8 and p["c"].devices == tuple(range(8))
    assert devices(p, "d") == [(5,)]
    assert p["e"].devices == (0, 1, 2, 3)


def test_rank_to_node_mapping_is_deterministic():
    p = Placement.parse({"a": "2-5"}, TOPO)
    ranks = p["a"].ranks
    assert [(r.node_index, r.local_devices, r.local_rank, r.local_world_size) for r in ranks] == [
        (0, (2,), 0, 2),
        (0, (3,), 1, 2),
        (1, (0,), 0, 2),
        (1, (1,), 1, 2),
    ]
    assert Placement.parse({"a": "2-5"}, TOPO) == p


def test_several_processes_per_device_and_devices_per_process():
    p = Placement.parse(
        {"a": "0-3:0-7", "b": "4-7:0-1", "c": {"devices": "0-1", "processes": 4}}, TOPO
    )
    assert devices(p, "a") == [(0,), (0,), (1,), (1,), (2,), (2,), (3,), (3,)]
    assert devices(p, "b") == [(4, 5), (6, 7)]
    assert devices(p, "c") == [(0,), (0,), (1,), (1,)]


def test_node_groups_number_devices_within_the_group():
    p = Placement.parse(
        {"env": "sim@0-1", "actor": {"devices": "all", "node_group": "train"}}, TOPO
    )
    assert p["env"].devices == (4, 5) and p["env"].nodes == (1,)
    assert p["actor"].devices == (0, 1, 2, 3)


def test_classification():
    assert (
        Placement.parse({"actor": "0-3", "rollout": "0-3"}, TOPO).mode is PlacementMode.COLLOCATED
    )
    assert (
        Placement.parse({"actor": "0-3", "rollout": "4-7"}, TOPO).mode
        is PlacementMode.DISAGGREGATED
    )
    hybrid = Placement.parse({"actor": "0-3", "rollout": "4-7", "env": "0-3"}, TOPO)
    assert hybrid.mode is PlacementMode.HYBRID
    assert hybrid.collocated_with("env") == ("actor",)
    assert hybrid.users(1) == (("actor", 1), ("env", 1))
    assert hybrid.is_shared("actor", 0) and not hybrid.is_shared("rollout", 0)
    assert Placement.parse({"x": "0-3:0-7"}, TOPO).is_shared("x", 0)


def test_classify_groups_accepts_any_placed_group():
    p = Placement.parse({"actor": "0-1", "rollout": "2-3"}, TOPO)

    class Group:
        def __init__(self, name):
            self.name = name
            self.placement = p[name]

    assert classify_groups([Group("actor"), Group("rollout")]) is PlacementMode.DISAGGREGATED


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (
            {"actor": "0-8"},
            r"placement of 'actor' \('0-8'\): device 8 is out of range: the cluster has 8",
        ),
        ({"actor": "3-1"}, r"placement of 'actor' \('3-1'\): range '3-1' is empty"),
        ({"actor": ""}, r"placement of 'actor' \(''\): the spec is empty"),
        ({"actor": []}, r"placement of 'actor' \(\[\]\): no devices selected"),
        ({"actor": "0,1,1"}, r"placement of 'actor' \('0,1,1'\): device 1 is listed twice"),
        ({"actor": "0-2:0-3"}, r"placement of 'actor' \('0-2:0-3'\): 4 processes cannot be spread"),
        (
            {"actor": "0-1:1-2"},
            r"placement of 'actor' \('0-1:1-2'\): process ranks '1-2' must be 0-<n-1>",
        ),
        (
            {"actor": "gpu@0"},
            r"placement of 'actor' \('gpu@0'\): unknown node group 'gpu'; node groups: sim, train",
        ),
        (
            {"actor": "sim@4"},
            r"placement of 'actor' \('sim@4'\): device 4 is out of range: node group 'sim' has 4",
        ),
        ({"actor": "3-4:0"}, r"placement of 'actor' \('3-4:0'\): rank 0 would span nodes \[0, 1\]"),
        ({"actor": {"devs": "0"}}, r"placement of 'actor' .*unknown key\(s\) \['devs'\]"),
        ({"actor": 1.5}, r"placement of 'actor' \(1.5\): cannot read devices"),
    ],
)
def test_bad_specs_name_component_and_spec(specs, message):
    with pytest.raises(PlacementError, match=message):
        Placement.parse(specs, TOPO)


def test_unknown_missing_exclusive_and_required_mode():
    with pytest.raises(
        PlacementError, match=r"unknown component 'actr' \(spec '0-3'\); components: actor, rollout"
    ):
        Placement.parse({"actr": "0-3", "rollout": "4"}, TOPO, components=["actor", "rollout"])
    with pytest.raises(
        PlacementError, match=r"no placement given for component\(s\) \['rollout'\]"
    ):
        Placement.parse({"actor": "0-3"}, TOPO, components=["actor", "rollout"])
    with pytest.raises(
        PlacementError,
        match=r"placement of 'rollout' \('2-5'\) must be exclusive but shares device\(s\) \[2, 3\] with 'actor' \('0-3'\)",
    ):
        Placement.parse({"actor": "0-3", "rollout": "2-5"}, TOPO, exclusive=["rollout"])
    with pytest.raises(PlacementError, match="is hybrid, but collocated was required"):
        Placement.parse({"a": "0-3", "b": "2-5"}, TOPO, require="collocated")
    with pytest.raises(PlacementError, match="node group 'x' names node 5"):
        Topology.uniform(2, 4, node_groups={"x": [5]})


def test_describe_names_nodes_devices_and_groups():
    topo = Topology(
        (Node(0, 2, "a", "10.0.0.1"), Node(1, 0, "b", "10.0.0.2"), Node(2, 1, "c", "10.0.0.3")),
        device_type="gpu",
        node_groups={"trainers": (0,), "sim": (1, 2)},
    )
    assert topo.describe() == (
        "3 node(s) with 3 GPU(s): node 0 (10.0.0.1) 2 (devices 0-1), node 1 (10.0.0.2) 0 "
        "(none), node 2 (10.0.0.3) 1 (devices 2-2); node groups: sim = node(s) [1, 2], "
        "trainers = node(s) [0]"
    )
    assert Topology.uniform(1, 2).describe() == (
        "1 node(s) with 2 CPU slot(s): node 0 2 (devices 0-1); no node groups"
    )
