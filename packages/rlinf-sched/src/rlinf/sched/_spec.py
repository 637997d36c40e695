"""Parsing of per-component placement specs into a deterministic rank -> device map."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._topology import PlacementError, Topology

__all__ = ["ComponentPlacement", "RankPlacement", "SpecLike", "parse_component", "parse_indices"]

SpecLike = str | int | Sequence[int | str] | Mapping[str, object]
"""A component spec: ``"0-3"``, ``"all"``, ``"0,2,4-5"``, ``"0-3:0-7"``, ``"grp@0-1"``, an int,
a list of ints/ranges, or ``{"devices": ..., "processes": n, "node_group": name}``."""

_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


@dataclass(frozen=True)
class RankPlacement:
    """Where one process (rank) of a component runs.

    Attributes:
        rank: The process's rank within its component, 0..world_size-1.
        node_index: Index of the node in the topology.
        node_id: Ray node id of that node (None for a layout not bound to Ray).
        devices: Global indices of the devices the process uses (usually one).
        local_devices: The same devices numbered within the node (CUDA ordinal on GPUs).
        local_rank: Position of this rank among the component's ranks on the same node.
        local_world_size: Number of the component's ranks on the same node.
    """

    rank: int
    node_index: int
    node_id: str | None
    devices: tuple[int, ...]
    local_devices: tuple[int, ...]
    local_rank: int
    local_world_size: int


@dataclass(frozen=True)
class ComponentPlacement:
    """The processes of one component and the devices each uses.

    Attributes:
        name: Component name (e.g. ``"actor"``).
        spec: The spec it was parsed from, kept for error messages.
        ranks: One entry per process, in rank order.
    """

    name: str
    spec: str
    ranks: tuple[RankPlacement, ...]

    @property
    def world_size(self) -> int:
        """Number of processes."""
        return len(self.ranks)

    @property
    def devices(self) -> tuple[int, ...]:
        """Sorted global indices of all devices the component uses."""
        return tuple(sorted({d for r in self.ranks for d in r.devices}))

    @property
    def nodes(self) -> tuple[int, ...]:
        """Sorted indices of the nodes the component spans."""
        return tuple(sorted({r.node_index for r in self.ranks}))


def parse_indices(text: str) -> list[int]:
    """Parse ``"0-3,6,8-9"`` into ``[0, 1, 2, 3, 6, 8, 9]``; raises ValueError when malformed."""
    out: list[int] = []
    for part in text.split(","):
        m = _RANGE.match(part)
        if not m:
            raise ValueError(f"{part.strip()!r} is not an index or an 'a-b' range")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"range {part.strip()!r} is empty (end before start)")
        out.extend(range(lo, hi + 1))
    return out


def _items_to_indices(items: Sequence[int | str]) -> list[int]:
    out: list[int] = []
    for item in items:
        if isinstance(item, bool):
            raise ValueError(f"{item!r} is not a device index")
        if isinstance(item, int):
            out.append(item)
        elif isinstance(item, str):
            out.extend(parse_indices(item))
        else:
            raise ValueError(f"{item!r} is not a device index or range")
    return out


def _split_spec(spec: SpecLike) -> tuple[str | None, object, int | None]:
    """Normalize any spec form into (node group, device part, process count or None)."""
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"devices", "processes", "node_group"}
        if unknown:
            raise ValueError(f"unknown key(s) {sorted(unknown)}; use devices/processes/node_group")
        if "devices" not in spec:
            raise ValueError("a spec mapping needs 'devices'")
        procs = spec.get("processes")
        if procs is not None and (not isinstance(procs, int) or isinstance(procs, bool)):
            raise ValueError(f"'processes' must be an int, got {procs!r}")
        group = spec.get("node_group")
        if group is not None and not isinstance(group, str):
            raise ValueError(f"'node_group' must be a string, got {group!r}")
        return group, spec["devices"], procs
    if isinstance(spec, str):
        group = None
        text = spec.strip()
        if "@" in text:
            group, text = (s.strip() for s in text.split("@", 1))
        procs = None
        if ":" in text:
            text, ptext = (s.strip() for s in text.split(":", 1))
            pranks = parse_indices(ptext)
            if pranks != list(range(len(pranks))):
                raise ValueError(f"process ranks {ptext!r} must be 0-<n-1> with no gaps")
            procs = len(pranks)
        return group, text, procs
    return None, spec, None


def parse_component(name: str, spec: SpecLike, topology: Topology) -> ComponentPlacement:
    """Resolve one component's spec against a topology.

    With P processes on D devices, P a multiple of D puts ``P/D`` consecutive ranks on each
    device; D a multiple of P gives each rank ``D/P`` consecutive devices of one node.
    Raises PlacementError naming the component and the spec on any problem.
    """
    shown = repr(spec)
    try:
        group, dev_part, procs = _split_spec(spec)
        if isinstance(dev_part, str) and not dev_part.strip():
            raise ValueError("the spec is empty: it selects no devices")
        pool = topology.group_devices(group)
        if isinstance(dev_part, str) and dev_part.strip().lower() == "all":
            picked = list(range(len(pool)))
        elif isinstance(dev_part, bool):
            raise ValueError(f"{dev_part!r} is not a device index")
        elif isinstance(dev_part, int):
            picked = [dev_part]
        elif isinstance(dev_part, str):
            picked = parse_indices(dev_part)
        elif isinstance(dev_part, Sequence):
            picked = _items_to_indices(dev_part)
        else:
            raise ValueError(f"cannot read devices from {dev_part!r}")
        if not picked:
            raise ValueError("no devices selected")
        seen: set[int] = set()
        for d in picked:
            if d in seen:
                raise ValueError(f"device {d} is listed twice")
            seen.add(d)
            if not 0 <= d < len(pool):
                where = f"node group {group!r}" if group else "the cluster"
                raise ValueError(f"device {d} is out of range: {where} has {len(pool)} device(s)")
        devices = [pool[d] for d in picked]
        return _assign(name, shown, devices, procs if procs is not None else len(devices), topology)
    except PlacementError as e:
        raise PlacementError(f"placement of {name!r} ({shown}): {e}") from None
    except ValueError as e:
        raise PlacementError(f"placement of {name!r} ({shown}): {e}") from None


def _assign(
    name: str, shown: str, devices: list[int], procs: int, topology: Topology
) -> ComponentPlacement:
    n_dev = len(devices)
    if procs <= 0:
        raise ValueError("a component needs at least one process")
    if procs % n_dev == 0:
        per = procs // n_dev
        groups = [(devices[r // per],) for r in range(procs)]
    elif n_dev % procs == 0:
        per = n_dev // procs
        groups = [tuple(devices[r * per : (r + 1) * per]) for r in range(procs)]
    else:
        raise ValueError(f"{procs} processes cannot be spread evenly over {n_dev} devices")
    located: list[tuple[int, tuple[int, ...]]] = []
    for r, devs in enumerate(groups):
        where = [topology.locate(d) for d in devs]
        node_ids = {nd for nd, _ in where}
        if len(node_ids) != 1:
            raise ValueError(f"rank {r} would span nodes {sorted(node_ids)} (devices {devs})")
        located.append((where[0][0], tuple(loc for _, loc in where)))
    per_node: dict[int, int] = {}
    for node_idx, _ in located:
        per_node[node_idx] = per_node.get(node_idx, 0) + 1
    seen_on_node: dict[int, int] = {}
    ranks = []
    for r, ((node_idx, local), devs) in enumerate(zip(located, groups, strict=False)):
        lr = seen_on_node.get(node_idx, 0)
        seen_on_node[node_idx] = lr + 1
        node = topology.nodes[node_idx]
        ranks.append(RankPlacement(r, node_idx, node.node_id, devs, local, lr, per_node[node_idx]))
    return ComponentPlacement(name, shown, tuple(ranks))
