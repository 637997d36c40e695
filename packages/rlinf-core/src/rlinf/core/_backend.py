"""Which backend runs a flow's ranks: Ray actors, or threads of the driver's process.

Kept free of Ray and torch imports: apps choose before anything starts.
"""

from __future__ import annotations

import sys
from typing import Literal

from rlinf.sched import Placement, PlacementError

__all__ = ["Backend", "check_single_slot", "choose_backend", "ray_running"]

Backend = Literal["ray", "inprocess"]


def ray_running() -> bool:
    """Whether this process is connected to a Ray cluster (looked up, not imported: a
    process that never imported Ray is not)."""
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def check_single_slot(placement: Placement) -> None:
    """Raise unless ``placement`` fits the in-process backend: one rank per component,
    every component on the same single CPU slot.

    Raises:
        PlacementError: naming the component or the devices that do not fit.
    """
    if placement.topology.device_type != "cpu":
        raise PlacementError("the in-process backend runs on CPU slots only")
    devices: set[int] = set()
    for name, component in placement.components.items():
        if component.world_size != 1 or len(component.ranks[0].devices) != 1:
            raise PlacementError(
                f"the in-process backend runs one rank per component on one device; "
                f"{name!r} has {component.world_size} rank(s) on devices "
                f"{[list(r.devices) for r in component.ranks]}"
            )
        devices.update(component.ranks[0].devices)
    if len(devices) > 1:
        raise PlacementError(
            "the in-process backend runs every component on one device (they take turns "
            f"on it); this placement uses devices {sorted(devices)}"
        )


def choose_backend(
    requested: Literal["auto", "ray", "inprocess"],
    placement: Placement,
    *,
    address: str | None,
    gpu_visible: bool,
    unsupported: str | None = None,
) -> Backend:
    """The backend a flow runs on.

    ``auto`` picks ``inprocess`` where it is known to be faster to start and equal in
    results: no cluster to join (``address`` None), no Ray already running in this
    process (a notebook or test that started one keeps its flows there), no GPU visible,
    a one-slot placement (:func:`check_single_slot`) and a flow that supports it
    (``unsupported`` None); otherwise ``ray``.

    Args:
        requested: ``cluster.backend``.
        placement: the parsed placement.
        address: ``cluster.address``.
        gpu_visible: whether a CUDA device is visible to this process.
        unsupported: why this flow cannot run in-process (None: it can).

    Raises:
        ValueError: ``inprocess`` was asked for where it cannot run (the message says why).
    """
    if requested == "ray":
        return "ray"
    if requested == "inprocess":
        if address is not None:
            raise ValueError(f"in-process runs start no cluster; it cannot join {address!r}")
        if unsupported is not None:
            raise ValueError(unsupported)
        if gpu_visible:
            raise ValueError("the in-process backend runs on CPU slots only; a GPU is visible")
        try:
            check_single_slot(placement)
        except PlacementError as e:
            raise ValueError(str(e)) from None
        return "inprocess"
    if requested != "auto":
        raise ValueError(f"backend must be 'auto', 'ray' or 'inprocess', got {requested!r}")
    if address is not None or unsupported is not None or gpu_visible or ray_running():
        return "ray"
    try:
        check_single_slot(placement)
    except PlacementError:
        return "ray"
    return "inprocess"
