"""The Worker base class: what every process of a WorkerGroup knows about itself."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from rlinf.sched import LocalDeviceLock, RankPlacement

from ._address import WorkerAddress

if TYPE_CHECKING:
    from rlinf.sched import DeviceLock

    from ._comm import Communicator

__all__ = ["Worker", "WorkerContext"]


@dataclass(frozen=True)
class WorkerContext:
    """Everything a worker is told at launch.

    Attributes:
        group: Name of its worker group.
        rank: Its rank in the group.
        world_size: Number of ranks in the group.
        placement: Its node and devices.
        device_type: ``"cpu"`` or ``"gpu"``.
        namespace: Ray namespace of the cluster (named helper actors live there).
        lock_name: Name of the device lock when its devices are shared, else None.
        comm_timeout: Default timeout (s) of send/recv/broadcast and their setup.
        in_process: Whether the rank runs in the driver's process (the in-process
            backend: every rank a thread there) rather than as a Ray actor.
        local_lock: On the in-process backend, the device lock itself when its devices
            are shared (the ranks share the object).
    """

    group: str
    rank: int
    world_size: int
    placement: RankPlacement
    device_type: str
    namespace: str | None
    lock_name: str | None
    comm_timeout: float
    in_process: bool = False
    local_lock: LocalDeviceLock | None = None


class Worker:
    """Base class of the processes launched by ``WorkerGroup.launch``.

    Subclasses write ``__init__`` with their own arguments (rank, device and friends are
    already available there) and plain methods that the driver calls. Override ``onload`` /
    ``offload`` to move state on and off the devices when collocated workers take turns.
    """

    _ctx: WorkerContext
    _comm: Communicator | None
    _lock: DeviceLock | LocalDeviceLock | None
    _logger: logging.Logger

    def __init__(self) -> None:
        """Nothing to do: the launcher attaches the context before ``__init__`` runs."""

    @classmethod
    def warm_up(cls) -> None:
        """Run in each rank's process as soon as it starts, before ``__init__`` (whose
        arguments the driver may still be computing, e.g. from another group's replies).

        Override it for work that needs no arguments but would otherwise fall on the
        critical path of ``__init__`` or the first call (e.g. imports a library makes on
        first use). An exception here is reported as the rank's ``__init__`` failure.
        """

    def _attach(self, ctx: WorkerContext) -> None:
        self._ctx = ctx
        self._comm = None
        self._lock = None
        logger = logging.getLogger(f"rlinf.worker.{ctx.group}.{ctx.rank}")
        if not logger.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(
                logging.Formatter(f"%(asctime)s %(levelname)s [{ctx.group} {ctx.rank}] %(message)s")
            )
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False
        self._logger = logger

    @property
    def rank(self) -> int:
        """Rank within the group, 0..world_size-1."""
        return self._ctx.rank

    @property
    def world_size(self) -> int:
        """Number of ranks in the group."""
        return self._ctx.world_size

    @property
    def group_name(self) -> str:
        """Name of the worker group."""
        return self._ctx.group

    @property
    def address(self) -> WorkerAddress:
        """``(group, rank)``, as used by send/recv/broadcast."""
        return WorkerAddress(self._ctx.group, self._ctx.rank)

    @property
    def placement(self) -> RankPlacement:
        """This rank's node and devices."""
        return self._ctx.placement

    @property
    def device(self) -> torch.device:
        """The torch device to put tensors on: ``cuda:0`` (the first visible GPU) or cpu."""
        return torch.device("cuda", 0) if self._ctx.device_type == "gpu" else torch.device("cpu")

    @property
    def logger(self) -> logging.Logger:
        """Logger whose lines carry the group name and rank."""
        return self._logger

    def onload(self) -> None:
        """Move state onto the devices (called when this worker's turn starts)."""

    def offload(self) -> None:
        """Move state off the devices (called when this worker's turn ends)."""

    def process_info(self) -> dict[str, Any]:
        """pid, Ray node id (``"in-process"`` on the in-process backend) and global
        devices of this process."""
        if self._ctx.in_process:
            node_id = "in-process"
        else:
            import ray

            node_id = ray.get_runtime_context().get_node_id()
        return {"pid": os.getpid(), "node_id": node_id, "devices": self._ctx.placement.devices}

    def node_ip(self) -> str:
        """The address other ranks reach this one at: the Ray node's IP, or the loopback
        address on the in-process backend."""
        if self._ctx.in_process:
            return "127.0.0.1"
        import ray

        return ray.util.get_node_ip_address()

    @contextlib.contextmanager
    def device_turn(self, timeout: float | None = None) -> Iterator[None]:
        """Hold this rank's devices for the body, calling ``onload`` then ``offload``.

        Collocated workers (ranks of any group sharing a device) use this to take turns.
        A worker whose devices nobody else uses just runs the body.
        """
        if self._ctx.lock_name is None:
            yield
            return
        if self._lock is None:
            if self._ctx.local_lock is not None:
                self._lock = self._ctx.local_lock
            else:
                from rlinf.sched import DeviceLock

                self._lock = DeviceLock(self._ctx.lock_name, self._ctx.namespace)
        with self._lock.turn(self._ctx.placement.devices, str(self.address), self, timeout):
            yield

    def _communicator(self) -> Communicator:
        if self._ctx.in_process:
            raise RuntimeError(
                f"{self.address}: send / recv / broadcast and torch.distributed need worker "
                "processes; this rank runs in the driver's process (the in-process backend): "
                "use the Ray backend (cluster.backend=ray)"
            )
        if self._comm is None:
            import ray

            from ._comm import Communicator

            self._comm = Communicator(
                self.address,
                ray.util.get_node_ip_address(),
                self._ctx.namespace,
                self._ctx.comm_timeout,
            )
        return self._comm

    def send(self, obj: Any, group: str, rank: int, *, timeout: float | None = None) -> None:
        """Send a tensor or picklable object (dicts/lists/dataclasses of tensors) to the
        worker ``rank`` of ``group``; blocks until it has been received."""
        self._communicator().send(obj, WorkerAddress(group, rank), timeout)

    def recv(self, group: str, rank: int, *, timeout: float | None = None, out: Any = None) -> Any:
        """Receive the next object sent by worker ``rank`` of ``group``.

        ``out``: a preallocated tensor (or one per tensor of the message, in order) to
        receive into, e.g. existing parameters during a weight sync.
        """
        return self._communicator().recv(WorkerAddress(group, rank), timeout, out)

    def broadcast(
        self,
        obj: Any,
        src: tuple[str, int],
        dsts: Sequence[tuple[str, int]],
        *,
        timeout: float | None = None,
        out: Any = None,
    ) -> Any:
        """Broadcast from ``src`` to ``dsts`` (``(group, rank)`` pairs, any groups).

        All participants call it with the same ``src`` and ``dsts``; the source passes the
        object, the others pass None; everyone gets the object back. Receivers may pass
        ``out`` buffers as for ``recv``.
        """
        return self._communicator().broadcast(
            obj, WorkerAddress(*src), [WorkerAddress(*d) for d in dsts], timeout, out
        )

    def init_torch_distributed(self, timeout: float | None = None) -> None:
        """Make this worker's whole group the default ``torch.distributed`` process group
        (gloo on CPU, NCCL on GPU; ranks as in the group), for data-parallel training
        (e.g. FSDP). Every rank of the group must call it (typically in ``__init__``); it
        meets the others through the cluster's rendezvous store. A second call is a no-op.

        Raises:
            RuntimeError: the process already has another default group.
        """
        import datetime

        import torch.distributed as dist

        if dist.is_initialized():
            if (dist.get_rank(), dist.get_world_size()) != (self.rank, self.world_size):
                raise RuntimeError(
                    f"{self.address}: a default process group of rank {dist.get_rank()} / "
                    f"{dist.get_world_size()} already exists, not this group's "
                    f"{self.rank} / {self.world_size}"
                )
            return
        seconds = self._ctx.comm_timeout if timeout is None else timeout
        comm = self._communicator()
        members = [WorkerAddress(self._ctx.group, r) for r in range(self.world_size)]
        scope = comm.scope(members, seconds)
        store = dist.PrefixStore(f"rlinf/default/{scope}/", comm._base_store())
        dist.init_process_group(
            "nccl" if self._ctx.device_type == "gpu" else "gloo",
            store=store,
            rank=self.rank,
            world_size=self.world_size,
            timeout=datetime.timedelta(seconds=seconds),
        )
