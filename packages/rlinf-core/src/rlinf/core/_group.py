"""WorkerGroup: launch a Worker subclass on a placement and call methods on its ranks."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from rlinf.sched import ComponentPlacement, LocalDeviceLock

from ._address import WorkerAddress
from ._batch import split_batch
from ._future import GroupFuture, _wait
from ._group_start import GroupStart
from ._host import WorkerHost
from ._local import LocalPlacement, LocalRank
from ._worker import Worker, WorkerContext

if TYPE_CHECKING:
    import ray

    from rlinf.sched import DeviceLock, PlacementGroups

__all__ = ["WorkerGroup"]

W = TypeVar("W", bound=Worker)

# How long killing an in-process group waits for the calls its ranks are running.
_LOCAL_JOIN_S = 120.0


class WorkerGroup(Generic[W]):
    """The ranks of one component, each a Ray actor running a ``W`` (or, on the in-process
    backend, a :class:`~rlinf.core._local.LocalRank` of the driver's process; the calls,
    futures and errors are the same).

    Satisfies ``rlinf.sched.PlacedGroup`` (``name`` and ``placement``).

    Example::

        pgs = cluster.allocate({"actor": "0-1"})
        group = WorkerGroup.launch(MyWorker, pgs, "actor", args=(cfg,))
        losses = group.call("train_step", batch_size=8).wait()      # one result per rank
        out = group.scatter("score", prompts).gather()              # split, run, concat
        group.kill()
    """

    def __init__(
        self,
        name: str,
        worker_cls: type[W],
        placement: ComponentPlacement,
        handles: Sequence[ray.actor.ActorHandle | LocalRank],
        lock: DeviceLock | LocalDeviceLock | None,
    ):
        """Use ``WorkerGroup.launch``; this wraps already started actors."""
        self._name = name
        self.worker_cls = worker_cls
        self._placement = placement
        self._handles = list(handles)
        self._lock = lock
        self._rendezvous: ray.actor.ActorHandle | None = None

    @classmethod
    def launch(
        cls,
        worker_cls: type[W],
        placement: PlacementGroups | LocalPlacement,
        component: str,
        *,
        name: str | None = None,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        rank_kwargs: Sequence[Mapping[str, Any]] | None = None,
        max_concurrency: int = 1,
        env_vars: Mapping[str, str] | None = None,
        comm_timeout: float = 600.0,
        startup_timeout: float | None = 300.0,
    ) -> WorkerGroup[W]:
        """Start one ``worker_cls`` per rank of ``component`` and wait until all are built:
        :meth:`spawn`, then :meth:`start` and its wait.

        Args:
            worker_cls: A Worker subclass.
            placement: Reserved placement groups (``Cluster.allocate``).
            component: Which component of the placement to launch.
            name: Group name (default: the component name); unique in the cluster.
            args, kwargs: Passed to every rank's ``__init__``.
            rank_kwargs: Extra per-rank keyword arguments, one mapping per rank.
            max_concurrency: Calls one rank may run at once (threads).
            env_vars: Extra environment variables of the worker processes.
            comm_timeout: Default timeout (s) of the workers' send/recv/broadcast.
            startup_timeout: Seconds to wait for all ranks' ``__init__``.

        Raises:
            WorkerError: a rank's ``__init__`` raised (with its traceback) or it died.
        """
        group = cls.spawn(
            worker_cls,
            placement,
            component,
            name=name,
            max_concurrency=max_concurrency,
            env_vars=env_vars,
            comm_timeout=comm_timeout,
        )
        group.start(args, kwargs, rank_kwargs=rank_kwargs, timeout=startup_timeout).wait()
        return group

    @classmethod
    def spawn(
        cls,
        worker_cls: type[W],
        placement: PlacementGroups | LocalPlacement,
        component: str,
        *,
        name: str | None = None,
        max_concurrency: int = 1,
        env_vars: Mapping[str, str] | None = None,
        comm_timeout: float = 600.0,
    ) -> WorkerGroup[W]:
        """Start the processes of ``component``'s ranks, without building the workers yet.

        Each process imports ``worker_cls``'s module as it starts, so a flow can spawn all
        of its groups at once and let them warm up together while it still computes the
        constructors' arguments (e.g. the env's observation spec), then :meth:`start` each.
        Arguments are as for :meth:`launch`.
        """
        if not (isinstance(worker_cls, type) and issubclass(worker_cls, Worker)):
            raise TypeError(f"{worker_cls!r} is not a subclass of rlinf.core.Worker")
        cp = placement.placement[component]
        name = name or component
        if isinstance(placement, LocalPlacement):
            if env_vars:
                raise ValueError(
                    f"cannot launch group {name!r} in-process with env_vars {sorted(env_vars)}: "
                    "its ranks share the driver's process and environment (use the Ray backend)"
                )
            rank, lock = placement.rank(worker_cls, component, name, max_concurrency)
            return cls(name, worker_cls, cp, [rank], lock)
        import ray

        from rlinf.sched import DeviceLock

        from ._rendezvous import ensure_rendezvous

        namespace = ray.get_runtime_context().namespace
        # Held by the group: an actor whose last handle is dropped is destroyed by Ray.
        rendezvous = ensure_rendezvous(namespace)
        shared = any(placement.placement.is_shared(component, r) for r in range(cp.world_size))
        lock = None
        if shared:
            lock = DeviceLock.create(f"{placement.name}-device-lock", namespace)
        remote_cls = ray.remote(WorkerHost)
        handles = []
        for rp in cp.ranks:
            ctx = WorkerContext(
                group=name,
                rank=rp.rank,
                world_size=cp.world_size,
                placement=rp,
                device_type=placement.placement.topology.device_type,
                namespace=namespace,
                lock_name=lock.name if lock else None,
                comm_timeout=comm_timeout,
            )
            options = placement.actor_options(component, rp.rank)
            if env_vars:
                options["runtime_env"]["env_vars"].update(env_vars)
            try:
                handle = remote_cls.options(
                    name=f"{name}:{rp.rank}",
                    namespace=namespace,
                    max_concurrency=max_concurrency,
                    max_restarts=0,
                    **options,
                ).remote(worker_cls, ctx)
            except ValueError as e:
                for h in handles:
                    ray.kill(h)
                raise ValueError(f"cannot launch group {name!r}: {e}") from e
            handles.append(handle)
        group = cls(name, worker_cls, cp, handles, lock)
        group._rendezvous = rendezvous
        return group

    def start(
        self,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        rank_kwargs: Sequence[Mapping[str, Any]] | None = None,
        timeout: float | None = 300.0,
    ) -> GroupStart:
        """Build every rank's worker as ``worker_cls(*args, **kwargs, **rank_kwargs[rank])``,
        without waiting: the returned future's ``wait()`` raises :class:`WorkerError`
        naming the rank whose ``__init__`` raised or died, after killing the group.
        """
        if rank_kwargs is not None and len(rank_kwargs) != self.world_size:
            raise ValueError(
                f"group {self._name!r}: rank_kwargs has {len(rank_kwargs)} entries for "
                f"{self.world_size} ranks"
            )
        refs = []
        for rank, handle in enumerate(self._handles):
            merged = dict(kwargs or {})
            if rank_kwargs is not None:
                merged.update(rank_kwargs[rank])
            refs.append(handle.start.remote(tuple(args), merged))
        future = GroupFuture(self._name, "__init__", range(len(refs)), refs, timeout)
        return GroupStart(self, future)

    @property
    def name(self) -> str:
        """Group name."""
        return self._name

    @property
    def placement(self) -> ComponentPlacement:
        """Where each rank runs."""
        return self._placement

    @property
    def handles(self) -> list[Any]:
        """The ranks' Ray actor handles, in rank order (picklable, for code that calls
        ranks from other processes, e.g. a rollout worker sending tool calls); each serves
        ``handle.call.remote(method, args, kwargs)``."""
        return list(self._handles)

    @property
    def world_size(self) -> int:
        """Number of ranks."""
        return len(self._handles)

    @property
    def addresses(self) -> list[WorkerAddress]:
        """``(group, rank)`` of every rank, for send/recv/broadcast."""
        return [WorkerAddress(self._name, r) for r in range(self.world_size)]

    def _ranks(self, ranks: Sequence[int] | int | None) -> list[int]:
        if ranks is None:
            return list(range(self.world_size))
        chosen = [ranks] if isinstance(ranks, int) else list(ranks)
        for r in chosen:
            if not 0 <= r < self.world_size:
                raise IndexError(
                    f"group {self._name!r} has ranks 0..{self.world_size - 1}, not {r}"
                )
        return chosen

    def _check_method(self, method: str) -> None:
        if not callable(getattr(self.worker_cls, method, None)) or method.startswith("_"):
            raise AttributeError(
                f"group {self._name!r}: {self.worker_cls.__name__} has no public method {method!r}"
            )

    @property
    def in_process(self) -> bool:
        """Whether the ranks run in this process (the in-process backend)."""
        return isinstance(self._handles[0], LocalRank)

    def _on_died(self, rank: int) -> None:
        holder = str(WorkerAddress(self._name, rank))
        # A dead holder would otherwise keep its devices locked forever.
        if isinstance(self._lock, LocalDeviceLock):
            self._lock.release_all(holder)
        elif self._lock is not None:
            self._lock.server.release_all.remote(holder)

    def call(
        self,
        method: str,
        *args: Any,
        ranks: Sequence[int] | int | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> GroupFuture:
        """Call ``method(*args, **kwargs)`` on all ranks (or on ``ranks``), without waiting.

        ``timeout`` becomes the default of the returned future's ``wait()``.
        """
        self._check_method(method)
        chosen = self._ranks(ranks)
        refs = [self._handles[r].call.remote(method, args, kwargs) for r in chosen]
        return GroupFuture(self._name, method, chosen, refs, timeout, self._on_died)

    def call_per_rank(
        self,
        method: str,
        per_rank_args: Sequence[Sequence[Any]],
        *,
        ranks: Sequence[int] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> GroupFuture:
        """Call ``method(*per_rank_args[i], **kwargs)`` on the i-th chosen rank."""
        self._check_method(method)
        chosen = self._ranks(ranks)
        if len(per_rank_args) != len(chosen):
            raise ValueError(
                f"group {self._name!r}: {len(per_rank_args)} argument tuples for "
                f"{len(chosen)} ranks"
            )
        refs = [
            self._handles[r].call.remote(method, tuple(a), kwargs)
            for r, a in zip(chosen, per_rank_args, strict=False)
        ]
        return GroupFuture(self._name, method, chosen, refs, timeout, self._on_died)

    def scatter(
        self,
        method: str,
        batch: Any,
        *args: Any,
        ranks: Sequence[int] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> GroupFuture:
        """Split ``batch`` (list, tensor ``[N, ...]`` or dict of them) into contiguous
        near-equal pieces, one per chosen rank, and call ``method(piece, *args, **kwargs)``.
        ``future.gather()`` joins the results back in order."""
        chosen = self._ranks(ranks)
        pieces = split_batch(batch, len(chosen))
        return self.call_per_rank(
            method, [(p, *args) for p in pieces], ranks=chosen, timeout=timeout, **kwargs
        )

    def execute(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        """``call(...).wait()``: run on all (or ``ranks=``) ranks and return their results."""
        return self.call(method, *args, **kwargs).wait()

    def dead_ranks(self, timeout: float = 1.0) -> list[int]:
        """Ranks whose process is known dead, probed for up to ``timeout`` s (a busy
        rank that does not answer in time counts as alive)."""
        if self.in_process:
            return [r for r, h in enumerate(self._handles) if not h.alive]
        import ray
        from ray.exceptions import RayActorError

        probes = {h.__ray_ready__.remote(): r for r, h in enumerate(self._handles)}
        ready = _wait(list(probes), len(probes), timeout)
        dead = []
        for ref in ready:
            try:
                ray.get(ref)
            except RayActorError:
                dead.append(probes[ref])
        return sorted(dead)

    def kill(self) -> None:
        """Kill every rank's process (their pending calls fail with WorkerDied); an
        in-process rank stops after the call it runs, which this waits for (up to 120 s)."""
        if self.in_process:
            for rank, handle in enumerate(self._handles):
                handle.kill(f"group {self._name!r} was killed")
                self._on_died(rank)
            # A thread cannot be interrupted: wait for the call it runs (e.g. an update the
            # driver stopped waiting for), so that nothing runs torch code at exit.
            deadline = time.monotonic() + _LOCAL_JOIN_S
            for handle in self._handles:
                handle.join(max(0.0, deadline - time.monotonic()))
            return
        import ray
        from ray.exceptions import RayActorError

        for rank, handle in enumerate(self._handles):
            with contextlib.suppress(RayActorError, ValueError):
                ray.kill(handle, no_restart=True)
            self._on_died(rank)

    def __repr__(self) -> str:
        return (
            f"WorkerGroup({self._name!r}, {self.worker_cls.__name__}, world_size={self.world_size})"
        )
