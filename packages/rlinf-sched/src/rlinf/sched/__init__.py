"""rlinf.sched: devices and placement for Ray systems.

Parse per-component placement specs (``{"actor": "0-3", "rollout": "4-7"}``), classify them
as collocated, disaggregated or hybrid, map every rank to its node and devices
deterministically, reserve the devices with Ray placement groups, and let collocated
processes take turns through a device lock. Depends on Ray only, and imports it only with
what needs it (the device lock, placement groups, ``Topology.from_ray``): parsing and
classifying placements stays cheap.

The static planner is pure Python: a ``FlowProfile`` of measured component costs, a cost
model (``predict``; ``evaluate_lending`` and ``predict_wide`` for an update given more
compute than its own devices, from a measured point) and a ``search`` that ranks
placements on a ``Topology``. The dynamic
scheduler's ``SlotLender`` lends idle slots to running components within a step.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ComponentPlacement",
    "ComponentProfile",
    "DeviceLock",
    "DeviceLockTimeout",
    "FlowProfile",
    "LendDecision",
    "LendError",
    "LocalDeviceLock",
    "Node",
    "Offloadable",
    "PlacedGroup",
    "Placement",
    "PlacementError",
    "PlacementGroups",
    "PlacementLayout",
    "PlacementMode",
    "Prediction",
    "ProfileError",
    "RankPlacement",
    "RankedPlacement",
    "ScalingFit",
    "SchedulerSection",
    "SearchConfig",
    "SlotBorrower",
    "SlotLender",
    "SpecLike",
    "Stage",
    "Topology",
    "analyze",
    "classify",
    "classify_groups",
    "evaluate",
    "evaluate_lending",
    "fit_scaling",
    "format_devices",
    "format_ranking",
    "lending_speedup",
    "overlap_slowdown_from",
    "parse_component",
    "parse_indices",
    "predict",
    "predict_placement",
    "predict_wide",
    "search",
    "split_points",
]

# Each export's home module, imported on first access.
_HOMES = {
    "DeviceLock": "._device_lock",
    "DeviceLockTimeout": "._device_lock_errors",
    "LocalDeviceLock": "._local_lock",
    "Placement": "._placement",
    "PlacementMode": "._placement",
    "classify": "._placement",
    "classify_groups": "._placement",
    "LendDecision": "._lending",
    "LendError": "._lending",
    "Offloadable": "._protocols",
    "SchedulerSection": "._lending",
    "SlotBorrower": "._protocols",
    "SlotLender": "._lending",
    "PlacedGroup": "._protocols",
    "PlacementGroups": "._ray_placement",
    "ComponentPlacement": "._spec",
    "RankPlacement": "._spec",
    "SpecLike": "._spec",
    "parse_component": "._spec",
    "parse_indices": "._spec",
    "PlacementLayout": "._cost",
    "Prediction": "._cost",
    "Stage": "._cost",
    "analyze": "._cost",
    "evaluate": "._cost",
    "evaluate_lending": "._lend_cost",
    "lending_speedup": "._lend_cost",
    "predict_wide": "._lend_cost",
    "format_devices": "._cost",
    "overlap_slowdown_from": "._cost",
    "predict": "._cost",
    "predict_placement": "._cost",
    "ComponentProfile": "._profile",
    "FlowProfile": "._profile",
    "ProfileError": "._profile",
    "ScalingFit": "._scaling",
    "fit_scaling": "._scaling",
    "RankedPlacement": "._search",
    "SearchConfig": "._search",
    "format_ranking": "._search",
    "search": "._search",
    "split_points": "._search",
    "Node": "._topology",
    "PlacementError": "._topology",
    "Topology": "._topology",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
