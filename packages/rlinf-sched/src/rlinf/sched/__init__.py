"""rlinf.sched: devices and placement for Ray systems.

Parse per-component placement specs (``{"actor": "0-3", "rollout": "4-7"}``), classify them
as collocated, disaggregated or hybrid, map every rank to its node and devices
deterministically, reserve the devices with Ray placement groups, and let collocated
processes take turns through a device lock. Depends on Ray only.
"""

from ._device_lock import DeviceLock, DeviceLockTimeout
from ._placement import Placement, PlacementMode, classify, classify_groups
from ._protocols import Offloadable, PlacedGroup
from ._ray_placement import PlacementGroups
from ._spec import ComponentPlacement, RankPlacement, SpecLike, parse_component, parse_indices
from ._topology import Node, PlacementError, Topology

__all__ = [
    "ComponentPlacement",
    "DeviceLock",
    "DeviceLockTimeout",
    "Node",
    "Offloadable",
    "PlacedGroup",
    "Placement",
    "PlacementError",
    "PlacementGroups",
    "PlacementMode",
    "RankPlacement",
    "SpecLike",
    "Topology",
    "classify",
    "classify_groups",
    "parse_component",
    "parse_indices",
]
