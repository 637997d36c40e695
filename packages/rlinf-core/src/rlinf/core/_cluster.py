"""Cluster: start or join Ray, describe its devices, reserve placements, shut down cleanly."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from rlinf.sched import (
    Placement,
    PlacementError,
    PlacementMode,
    SpecLike,
    Topology,
)

from ._cause import death_rank, failures_seen, record_failure, root_cause
from ._cluster_config import ClusterConfig
from ._errors import WorkerDied
from ._group import WorkerGroup
from ._local import LocalPlacement
from ._reaper import ProcessReaper
from ._worker import Worker

if TYPE_CHECKING:
    from rlinf.sched import PlacementGroups

__all__ = ["Cluster"]

W = TypeVar("W", bound=Worker)


class Cluster:
    """A Ray cluster as rlinf sees it: nodes, devices, placements and groups launched on them.

    If Ray is already initialized in this process the cluster uses it as it is and leaves
    it running on ``shutdown()``; otherwise it starts (or joins) Ray and shuts it down.

    With ``config.backend == "inprocess"`` there is no Ray at all: the topology is one
    node of ``devices_per_node`` CPU slots, ``allocate`` accepts placements of one slot
    with one rank per component, and every rank is a thread of this process
    (:mod:`rlinf.core._local`).

    Example::

        with Cluster(ClusterConfig(num_cpus=4, devices_per_node=4)) as cluster:
            pgs = cluster.allocate({"actor": "0-1", "rollout": "2-3"})
            actor = cluster.launch(MyWorker, pgs, "actor")
    """

    def __init__(self, config: ClusterConfig | None = None):
        """Start or join Ray as ``config`` says."""
        self.config = config or ClusterConfig()
        self.in_process = self.config.backend == "inprocess"
        self._reaper: ProcessReaper | None = None
        self._placements: list[PlacementGroups | LocalPlacement] = []
        self._groups: list[WorkerGroup[Any]] = []
        if self.in_process:
            self._owns_ray = False
            return
        import ray

        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            self._start_ray()

    def _start_ray(self) -> None:
        import ray

        from ._cluster_probe import check_reachable
        from ._signals import keep_signal_handlers

        init_kwargs: dict[str, Any] = {
            "namespace": self.config.namespace,
            "include_dashboard": False,
            "logging_level": "WARNING",
        }
        local = self.config.address is None
        if local:
            init_kwargs["num_cpus"] = self.config.num_cpus
            init_kwargs["num_gpus"] = self.config.num_gpus
            init_kwargs["object_store_memory"] = self.config.object_store_memory
        else:
            check_reachable(self.config.address)  # Ray itself retries for minutes
            init_kwargs["address"] = self.config.address
        if local and self.config.reap_processes:
            # Started first, so that a driver killed during ray.init() leaves nothing.
            self._reaper = ProcessReaper.start()
            before = ProcessReaper.children()
        try:
            # ray.init() replaces the SIGTERM handler; keep the CLI's (rlinf.core._signals).
            with keep_signal_handlers():
                ray.init(**init_kwargs)
            if self._reaper is not None:
                self._reaper.watch(ProcessReaper.children() - before)
        except BaseException:
            # Also after an interrupt in the middle of ray.init(): stop what it started.
            self._stop_ray()
            raise

    def _stop_ray(self) -> None:
        import ray

        ray.shutdown()
        if self._reaper is not None:
            self._reaper.reap()
            self._reaper = None

    @property
    def topology(self) -> Topology:
        """The alive nodes and their devices, as of now (in-process: one node of
        ``devices_per_node`` CPU slots)."""
        if self.in_process:
            return Topology.uniform(
                1,
                self.config.devices_per_node or 1,
                cpus_per_device=self.config.cpus_per_device,
                node_groups={
                    k: v for k, v in self.config.node_groups.items() if not isinstance(v, str)
                },
            )
        return Topology.from_ray(
            devices_per_node=self.config.devices_per_node,
            cpus_per_device=self.config.cpus_per_device,
            node_groups=self.config.node_groups,
        )

    @property
    def num_nodes(self) -> int:
        """Number of alive nodes."""
        return self.topology.num_nodes

    @property
    def num_devices(self) -> int:
        """Number of devices (GPUs, or CPU slots) over all nodes."""
        return self.topology.num_devices

    def placement(
        self,
        specs: Mapping[str, SpecLike],
        *,
        components: Collection[str] | None = None,
        exclusive: Collection[str] = (),
        require: PlacementMode | str | None = None,
    ) -> Placement:
        """Parse and validate specs against this cluster's nodes as they are now (see
        ``Placement.parse``).

        Raises:
            PlacementError: naming the component and its spec, and what the cluster has.
        """
        topology = self.topology
        try:
            return Placement.parse(
                specs, topology, components=components, exclusive=exclusive, require=require
            )
        except PlacementError as e:
            raise PlacementError(f"{e}; cluster: {topology.describe()}") from e

    def allocate(
        self,
        specs: Mapping[str, SpecLike] | Placement,
        *,
        timeout_s: float = 60.0,
        **parse_kwargs: Any,
    ) -> PlacementGroups | LocalPlacement:
        """Reserve the devices of a placement (specs are parsed first); released on shutdown.

        Raises:
            PlacementError: on the in-process backend, a placement of more than one slot
                or rank per component.
        """
        placement = specs if isinstance(specs, Placement) else self.placement(specs, **parse_kwargs)
        if self.in_process:
            local = LocalPlacement(placement)
            self._placements.append(local)
            return local
        from rlinf.sched import PlacementGroups

        pgs = PlacementGroups(placement, timeout_s=timeout_s)
        self._placements.append(pgs)
        return pgs

    def launch(
        self,
        worker_cls: type[W],
        placement: PlacementGroups | LocalPlacement,
        component: str,
        **kwargs: Any,
    ) -> WorkerGroup[W]:
        """``WorkerGroup.launch``, with the group killed on ``shutdown()``."""
        group = WorkerGroup.launch(worker_cls, placement, component, **kwargs)
        self._groups.append(group)
        return group

    def spawn(
        self,
        worker_cls: type[W],
        placement: PlacementGroups | LocalPlacement,
        component: str,
        **kwargs: Any,
    ) -> WorkerGroup[W]:
        """``WorkerGroup.spawn`` (processes started, workers not built until ``start``),
        with the group killed on ``shutdown()``."""
        group = WorkerGroup.spawn(worker_cls, placement, component, **kwargs)
        self._groups.append(group)
        return group

    def shutdown(self) -> None:
        """Kill launched groups, release placements, and stop Ray if this cluster started
        it (then end whatever Ray's shutdown left running, see ``reap_processes``).

        Called while an error propagates that names no dead worker, it first looks for
        ranks that died (up to 1 s) and records them as failures
        (:func:`rlinf.core._cause.record_failure`): a run that failed on a follow-up
        error (a peer's closed connection) then still reports the death that caused it.
        """
        failing = sys.exc_info()[1]
        if isinstance(failing, Exception) and death_rank(root_cause(failing, failures_seen())):
            self._record_deaths()
        for group in self._groups:
            group.kill()
        self._groups.clear()
        for pgs in self._placements:
            pgs.remove()
        self._placements.clear()
        if self._owns_ray:
            self._stop_ray()

    def _record_deaths(self, timeout: float = 1.0) -> None:
        with contextlib.suppress(Exception):
            for group in self._groups:
                for rank in group.dead_ranks(timeout):
                    record_failure(WorkerDied(group.name, rank, None, "found dead at shutdown"))

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
