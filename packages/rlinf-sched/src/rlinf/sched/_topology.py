"""The device model: nodes with a number of devices each, numbered globally."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["Node", "PlacementError", "Topology"]


class PlacementError(ValueError):
    """A placement spec or topology that cannot be realized; the message names the culprit."""


@dataclass(frozen=True)
class Node:
    """One machine of the cluster.

    Attributes:
        index: Position of the node in the topology (0 = first node).
        num_devices: Devices on this node (accelerators, or CPU slots on a CPU-only node).
        node_id: Ray node id (hex) the node corresponds to; None for a layout not bound to Ray.
        ip: Address of the node, when known.
        resources: The node's Ray resources (used to define node groups by resource).
    """

    index: int
    num_devices: int
    node_id: str | None = None
    ip: str | None = None
    resources: Mapping[str, float] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Topology:
    """Nodes and their devices; devices are numbered globally, node by node.

    Device ``d`` of the cluster is local device ``d - first(node)`` of the node it falls on,
    where nodes are taken in ``index`` order. On machines without accelerators devices are
    CPU slots, each reserving ``cpus_per_device`` Ray CPUs.

    Attributes:
        nodes: The nodes, in index order.
        device_type: ``"cpu"`` (CPU slots) or ``"gpu"`` (CUDA devices).
        cpus_per_device: Ray CPUs reserved with each device slot in placement groups.
        node_groups: Named subsets of nodes (name -> node indices); a placement spec
            ``"<group>@<devices>"`` numbers devices within the group.
    """

    nodes: tuple[Node, ...]
    device_type: str = "cpu"
    cpus_per_device: float = 1.0
    node_groups: Mapping[str, tuple[int, ...]] = field(
        default_factory=dict, hash=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.device_type not in ("cpu", "gpu"):
            raise PlacementError(f"device_type must be 'cpu' or 'gpu', got {self.device_type!r}")
        if not self.nodes:
            raise PlacementError("a topology needs at least one node")
        for i, node in enumerate(self.nodes):
            if node.index != i:
                raise PlacementError(f"node {i} has index {node.index}; indices must be 0..n-1")
        for name, members in self.node_groups.items():
            if not members:
                raise PlacementError(f"node group {name!r} has no nodes")
            for m in members:
                if not 0 <= m < len(self.nodes):
                    raise PlacementError(
                        f"node group {name!r} names node {m}, but the cluster has "
                        f"{len(self.nodes)} node(s)"
                    )

    @classmethod
    def uniform(
        cls,
        num_nodes: int,
        devices_per_node: int,
        *,
        device_type: str = "cpu",
        cpus_per_device: float = 1.0,
        node_groups: Mapping[str, Sequence[int]] | None = None,
    ) -> Topology:
        """A layout of ``num_nodes`` identical nodes, not bound to a running Ray cluster."""
        nodes = tuple(Node(index=i, num_devices=devices_per_node) for i in range(num_nodes))
        groups = {k: tuple(v) for k, v in (node_groups or {}).items()}
        return cls(nodes, device_type, cpus_per_device, groups)

    @classmethod
    def from_ray(
        cls,
        *,
        devices_per_node: int | None = None,
        cpus_per_device: float = 1.0,
        node_groups: Mapping[str, Sequence[int] | str] | None = None,
    ) -> Topology:
        """Describe the alive nodes of the Ray cluster this process is connected to.

        Nodes are ordered head first, then by address and node id, so a cluster started the
        same way always yields the same numbering. If any node has GPUs, devices are GPUs
        (CPU-only nodes then have none); otherwise each node has ``devices_per_node`` CPU
        slots, by default ``floor(node CPUs / cpus_per_device)``.

        Args:
            devices_per_node: CPU slots per node on CPU-only clusters (ignored with GPUs).
            cpus_per_device: Ray CPUs reserved per device slot.
            node_groups: name -> node indices, or name -> a Ray resource name: the group then
                holds every node that has that resource (e.g. one given by
                ``ray start --resources``).
        """
        import ray  # here, so that parsing placements needs no Ray import

        alive = [n for n in ray.nodes() if n["Alive"]]
        alive.sort(
            key=lambda n: (
                "node:__internal_head__" not in n["Resources"],
                n["NodeManagerAddress"],
                n["NodeID"],
            )
        )
        has_gpu = any(n["Resources"].get("GPU", 0) > 0 for n in alive)
        nodes = []
        for i, n in enumerate(alive):
            res = dict(n["Resources"])
            if has_gpu:
                count = int(res.get("GPU", 0))
            elif devices_per_node is not None:
                count = devices_per_node
            else:
                count = int(res.get("CPU", 0) // cpus_per_device)
            nodes.append(Node(i, count, n["NodeID"], n["NodeManagerAddress"], res))
        groups: dict[str, tuple[int, ...]] = {}
        for name, sel in (node_groups or {}).items():
            if isinstance(sel, str):
                groups[name] = tuple(nd.index for nd in nodes if nd.resources.get(sel, 0) > 0)
                if not groups[name]:
                    raise PlacementError(f"node group {name!r}: no alive node has resource {sel!r}")
            else:
                groups[name] = tuple(sel)
        return cls(tuple(nodes), "gpu" if has_gpu else "cpu", cpus_per_device, groups)

    @property
    def num_nodes(self) -> int:
        """Number of nodes."""
        return len(self.nodes)

    @property
    def num_devices(self) -> int:
        """Number of devices over all nodes."""
        return sum(n.num_devices for n in self.nodes)

    def describe(self) -> str:
        """What the topology holds, for error messages: nodes with their device counts
        (and Ray-bound nodes' addresses) and node groups, e.g.
        ``"2 node(s) with 3 CPU slot(s): node 0 (192.0.2.2) 1 (devices 0-0), node 1
        (192.0.2.2) 2 (devices 1-2); node groups: workers = node(s) [1]"``."""
        kind = "GPU(s)" if self.device_type == "gpu" else "CPU slot(s)"
        parts = []
        for node in self.nodes:
            first = self.node_first_device(node.index)
            where = f" ({node.ip})" if node.ip else ""
            span = f"devices {first}-{first + node.num_devices - 1}" if node.num_devices else "none"
            parts.append(f"node {node.index}{where} {node.num_devices} ({span})")
        text = f"{self.num_nodes} node(s) with {self.num_devices} {kind}: " + ", ".join(parts)
        if self.node_groups:
            groups = ", ".join(
                f"{k} = node(s) {list(v)}" for k, v in sorted(self.node_groups.items())
            )
            return f"{text}; node groups: {groups}"
        return f"{text}; no node groups"

    def node_first_device(self, node_index: int) -> int:
        """Global index of the first device of node ``node_index``."""
        return sum(n.num_devices for n in self.nodes[:node_index])

    def locate(self, device: int) -> tuple[int, int]:
        """Map a global device index to ``(node index, local device index)``."""
        if not 0 <= device < self.num_devices:
            raise PlacementError(
                f"device {device} is out of range: the cluster has {self.num_devices} device(s)"
            )
        for node in self.nodes:
            if device < node.num_devices:
                return node.index, device
            device -= node.num_devices
        raise AssertionError("unreachable: device index checked above")

    def group_devices(self, group: str | None) -> tuple[int, ...]:
        """Global device indices of a node group (all devices when ``group`` is None)."""
        if group is None:
            return tuple(range(self.num_devices))
        if group not in self.node_groups:
            valid = ", ".join(sorted(self.node_groups)) or "(none defined)"
            raise PlacementError(f"unknown node group {group!r}; node groups: {valid}")
        out: list[int] = []
        for idx in sorted(self.node_groups[group]):
            first = self.node_first_device(idx)
            out.extend(range(first, first + self.nodes[idx].num_devices))
        return tuple(out)
