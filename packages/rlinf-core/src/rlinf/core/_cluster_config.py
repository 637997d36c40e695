"""How an app gets its Ray cluster (or runs in-process): kept apart from
:mod:`rlinf.core._cluster` so that loading a config imports neither Ray nor torch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["ClusterConfig"]


@dataclass(frozen=True)
class ClusterConfig:
    """How to get a Ray cluster and how to count its devices.

    Attributes:
        address: None starts a local Ray; ``"auto"`` or ``"host:port"`` joins a running one.
        num_cpus: CPUs of a locally started Ray (None: all of the machine's).
        num_gpus: GPUs of a locally started Ray (None: all visible).
        object_store_memory: Bytes of object store for a locally started Ray (None: Ray's default).
        namespace: Ray namespace for named actors (groups, device locks, rendezvous).
        devices_per_node: CPU slots per node on clusters without GPUs (None: one slot per
            ``cpus_per_device`` CPUs).
        cpus_per_device: Ray CPUs reserved with each device slot.
        node_groups: Named node subsets: name -> node indices, or name -> a Ray resource
            that the group's nodes have.
        reap_processes: For a locally started Ray: run a watchdog process
            (:mod:`rlinf.core._reaper`) that ends every process Ray started once this
            driver shuts Ray down or dies (even by SIGKILL); without it Ray's dashboard and
            runtime-env agents outlive a killed driver by about a minute.
        backend: ``"ray"``: every rank is a Ray actor (its own process); ``"inprocess"``:
            every rank is a thread of this process and Ray is never started
            (:mod:`rlinf.core._local`), for placements of one CPU slot with one rank per
            component.
    """

    address: str | None = None
    num_cpus: int | None = None
    num_gpus: int | None = None
    object_store_memory: int | None = None
    namespace: str = "rlinf"
    devices_per_node: int | None = None
    cpus_per_device: float = 1.0
    node_groups: Mapping[str, Sequence[int] | str] = field(default_factory=dict)
    reap_processes: bool = True
    backend: Literal["ray", "inprocess"] = "ray"

    def __post_init__(self) -> None:
        if self.backend not in ("ray", "inprocess"):
            raise ValueError(f"backend must be 'ray' or 'inprocess', got {self.backend!r}")
        if self.backend == "inprocess" and self.address is not None:
            raise ValueError(
                f"the in-process backend starts no cluster; it cannot join address {self.address!r}"
            )
