"""Placement groups and the device lock on a real (local) Ray instance."""

from __future__ import annotations

import threading
import time

import pytest

from rlinf.sched import (
    DeviceLock,
    DeviceLockTimeout,
    Placement,
    PlacementError,
    PlacementGroups,
    Topology,
)


def test_topology_from_ray_counts_cpu_slots(ray_cpu4):
    topo = Topology.from_ray(devices_per_node=3)
    assert topo.device_type == "cpu" and topo.num_nodes >= 1
    assert topo.nodes[0].num_devices == 3 and topo.nodes[0].node_id is not None
    assert Topology.from_ray(cpus_per_device=0.5).nodes[0].num_devices == int(
        topo.nodes[0].resources["CPU"] / 0.5
    )


def test_placement_groups_put_ranks_on_their_node_and_share_bundles(ray_cpu4):
    ray = ray_cpu4
    topo = Topology.from_ray(devices_per_node=2, cpus_per_device=0.5)
    placement = Placement.parse({"a": "0-1", "b": "0-1:0-3"}, topo)
    pgs = PlacementGroups(placement)
    try:

        @ray.remote
        class Probe:
            def where(self):
                import os

                return ray.get_runtime_context().get_node_id(), os.environ["RLINF_DEVICES"]

        actors = [
            Probe.options(**pgs.actor_options(name, r)).remote()
            for name in ("a", "b")
            for r in range(placement[name].world_size)
        ]
        got = ray.get([a.where.remote() for a in actors], timeout=120)
        assert {node for node, _ in got} == {topo.nodes[0].node_id}
        assert [dev for _, dev in got] == ["0", "1", "0", "0", "1", "1"]
        # three processes share each 0.5-CPU bundle
        assert pgs.actor_options("b", 0)["num_cpus"] == pytest.approx(0.1666, abs=1e-4)
        for a in actors:
            ray.kill(a)
    finally:
        pgs.remove()


def test_unsatisfiable_placement_fails_with_a_clear_error(ray_cpu4):
    topo = Topology.from_ray(devices_per_node=64, cpus_per_device=1.0)
    with pytest.raises(
        PlacementError, match=r"could not reserve 64 bundle\(s\) of \{'CPU': 1.0\} on node 0"
    ):
        PlacementGroups(Placement.parse({"a": "all"}, topo), timeout_s=2)


def test_device_lock_grants_all_devices_atomically_and_times_out(ray_cpu4):
    lock = DeviceLock.create("sched-test-lock")
    lock.acquire([0, 1], "w0")
    assert lock.holders() == {0: "w0", 1: "w0"}
    with pytest.raises(
        DeviceLockTimeout,
        match=r"w1 could not lock devices \[1, 2\]: timed out .* held: \{1: 'w0'\}",
    ):
        lock.acquire([1, 2], "w1", timeout=0.3)
    got = []
    t = threading.Thread(
        target=lambda: (lock.acquire([1, 2], "w1", timeout=30), got.append(time.time()))
    )
    t.start()
    time.sleep(0.5)
    released = time.time()
    lock.release([0, 1], "w0")
    t.join(30)
    assert got and got[0] >= released
    assert lock.release_all("w1") == [1, 2]
    ray_cpu4.kill(lock.server)
