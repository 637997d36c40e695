"""Ray placement groups that reserve a Placement's devices, node by node."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import ray
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from ._placement import Placement
from ._topology import PlacementError

__all__ = ["PlacementGroups"]


class PlacementGroups:
    """Reserve a placement's devices with Ray placement groups and schedule ranks into them.

    One STRICT_PACK placement group per node, pinned to that node by its ``ray.io/node-id``
    label, holds one bundle per used device: ``{"CPU": cpus_per_device}`` for CPU slots and
    ``{"GPU": 1, "CPU": cpus_per_device}`` for GPUs. A rank is scheduled into the bundle of its
    first device and takes an equal share of that bundle's CPUs, so collocated ranks fit
    together. On GPUs the rank's devices are made visible through ``CUDA_VISIBLE_DEVICES``
    (local ordinals), which makes the rank -> device mapping deterministic.

    Example::

        topo = Topology.from_ray(devices_per_node=4)
        pgs = PlacementGroups(Placement.parse({"a": "0-1", "b": "2-3"}, topo))
        actor = MyActor.options(**pgs.actor_options("a", 0)).remote()
        ...
        pgs.remove()
    """

    def __init__(self, placement: Placement, *, name: str | None = None, timeout_s: float = 60.0):
        """Create and wait for the placement groups.

        Raises:
            PlacementError: the topology is not bound to Ray, or the groups could not be
                reserved within ``timeout_s`` (the message names node and bundles).
        """
        self.placement = placement
        self.name = name or f"rlinf-{uuid.uuid4().hex[:8]}"
        topo = placement.topology
        self._bundle_of: dict[int, tuple[PlacementGroup, int]] = {}
        self._groups: list[PlacementGroup] = []
        by_node: dict[int, list[int]] = {}
        for d in placement.devices:
            node_idx, _ = topo.locate(d)
            by_node.setdefault(node_idx, []).append(d)
        pending = []
        for node_idx, devs in sorted(by_node.items()):
            node = topo.nodes[node_idx]
            if node.node_id is None:
                raise PlacementError(
                    "placement groups need a topology from Topology.from_ray(), "
                    f"but node {node_idx} has no Ray node id"
                )
            bundle: dict[str, float] = {"CPU": topo.cpus_per_device}
            if topo.device_type == "gpu":
                bundle["GPU"] = 1.0
            bundles = [dict(bundle) for _ in devs]
            pg = placement_group(
                bundles,
                strategy="STRICT_PACK",
                name=f"{self.name}-node{node_idx}",
                bundle_label_selector=[{"ray.io/node-id": node.node_id} for _ in devs],
            )
            self._groups.append(pg)
            pending.append((node_idx, bundles, pg))
            for i, d in enumerate(devs):
                self._bundle_of[d] = (pg, i)
        for node_idx, bundles, pg in pending:
            ready, _ = ray.wait([pg.ready()], timeout=timeout_s)
            if not ready:
                self.remove()
                raise PlacementError(
                    f"could not reserve {len(bundles)} bundle(s) of {bundles[0]} on node "
                    f"{node_idx} within {timeout_s:.0f} s (available: "
                    f"{ray.available_resources()})"
                )

    def actor_options(self, component: str, rank: int) -> dict[str, Any]:
        """Keyword arguments for ``ActorClass.options(...)`` that put ``rank`` of ``component``
        on its devices."""
        rp = self.placement[component].ranks[rank]
        pg, index = self._bundle_of[rp.devices[0]]
        sharers = sum(
            1
            for c in self.placement.components.values()
            for r in c.ranks
            if r.devices[0] == rp.devices[0]
        )
        cpus = int(self.placement.topology.cpus_per_device / sharers * 10_000) / 10_000
        env = {"RLINF_DEVICES": ",".join(map(str, rp.local_devices))}
        if self.placement.topology.device_type == "gpu":
            env["CUDA_VISIBLE_DEVICES"] = env["RLINF_DEVICES"]
            # Ray would otherwise overwrite CUDA_VISIBLE_DEVICES for an actor with num_gpus=0.
            env["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"] = "1"
        return {
            "num_cpus": cpus,
            "num_gpus": 0,
            "scheduling_strategy": PlacementGroupSchedulingStrategy(
                placement_group=pg, placement_group_bundle_index=index
            ),
            "runtime_env": {"env_vars": env},
        }

    def remove(self) -> None:
        """Release every placement group (actors inside them are killed by Ray)."""
        for pg in self._groups:
            with contextlib.suppress(Exception):
                remove_placement_group(pg)
        self._groups.clear()
