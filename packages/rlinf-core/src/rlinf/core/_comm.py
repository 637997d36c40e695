"""Point-to-point and broadcast between workers over lazily created process groups."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import threading
import time
from collections.abc import Sequence
from typing import Any

import ray
import torch
import torch.distributed as dist

from ._address import WorkerAddress
from ._errors import CommError
from ._rendezvous import rendezvous_address
from ._wire import TensorMeta, decode_skeleton, encode, rebuild

__all__ = ["Communicator", "WorkerAddress"]


def _as_bytes(tensor: torch.Tensor) -> torch.Tensor:
    """A flat uint8 view, so any dtype (bf16, bool, complex) travels over any backend."""
    return tensor.reshape(-1).view(torch.uint8)


def _empty(meta: TensorMeta) -> torch.Tensor:
    device = torch.device("cuda", torch.cuda.current_device()) if meta.cuda else "cpu"
    return torch.empty(meta.shape, dtype=getattr(torch, meta.dtype), device=device)


def _targets(metas: Sequence[TensorMeta], out: Any, who: str) -> list[torch.Tensor]:
    """Tensors to receive into: fresh ones, or the caller's ``out`` buffers after checks."""
    if out is None:
        return [_empty(m) for m in metas]
    bufs = [out] if isinstance(out, torch.Tensor) else list(out)
    if len(bufs) != len(metas):
        raise CommError(f"{who}: message has {len(metas)} tensor(s), out has {len(bufs)}")
    for i, (buf, m) in enumerate(zip(bufs, metas, strict=False)):
        want = (m.shape, m.dtype, m.cuda)
        have = (tuple(buf.shape), str(buf.dtype).removeprefix("torch."), buf.is_cuda)
        if want != have or not buf.is_contiguous():
            raise CommError(
                f"{who}: out[{i}] is {have} (contiguous={buf.is_contiguous()}), "
                f"message tensor is {want}"
            )
    return bufs


def _td(seconds: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=seconds)


class Communicator:
    """One per worker process. Builds a process group per peer set on first use.

    A pair's group has the two workers as ranks 0 and 1 in sorted address order; its store
    keys live under a prefix named after the pair and the Ray actor ids of its members, so a
    group relaunched under the same name never meets the keys its dead predecessor left in
    the (session-long) store. Whichever side calls first simply waits
    in the group constructor until the other side's first send/recv/broadcast with it, so no
    matched setup call is needed and unrelated pairs never wait on each other.
    """

    def __init__(self, me: WorkerAddress, host_ip: str, namespace: str | None, timeout: float):
        """``timeout`` (seconds) is the default for group creation and for each transfer."""
        self.me = me
        self.timeout = timeout
        self._ip = host_ip
        self._namespace = namespace
        self._store: dist.Store | None = None
        self._groups: dict[tuple[str, str], dist.ProcessGroup] = {}
        self._lock = threading.Lock()

    def _base_store(self) -> dist.Store:
        if self._store is None:
            host, port = rendezvous_address(self._namespace)
            self._store = dist.TCPStore(
                host, port, is_master=False, wait_for_workers=False, timeout=_td(self.timeout)
            )
        return self._store

    def _incarnation(self, member: WorkerAddress, timeout: float) -> str:
        """The Ray actor id of the process now serving ``member`` (retried while a peer is
        still being created, up to ``timeout`` seconds)."""
        if member == self.me:
            return ray.get_runtime_context().get_actor_id() or ""
        deadline = time.monotonic() + timeout
        while True:
            try:
                handle = ray.get_actor(f"{member.group}:{member.rank}", namespace=self._namespace)
            except ValueError as e:
                if time.monotonic() >= deadline:
                    raise CommError(
                        f"{self.me}: no worker {member} is alive to connect to within {timeout:g} s"
                    ) from e
                time.sleep(0.05)
                continue
            # ActorHandle has no public id accessor; _actor_id is what Ray's own state API reads.
            return handle._actor_id.hex()

    def scope(self, members: Sequence[WorkerAddress], timeout: float) -> str:
        """A store prefix unique to this incarnation of ``members``: their names and the
        actor ids of the processes serving them, hashed."""
        names = ",".join(map(str, members))
        ids = ",".join(self._incarnation(m, timeout) for m in members)
        return hashlib.sha1(f"{names}|{ids}".encode()).hexdigest()[:16]

    def _group(self, members: Sequence[WorkerAddress], backend: str, timeout: float) -> Any:
        names = ",".join(map(str, members))
        key = (names, backend)
        pg = self._groups.get(key)
        if pg is not None:
            return pg
        rank = list(members).index(self.me)
        digest = self.scope(members, timeout)
        base = self._base_store()
        base.set_timeout(_td(timeout))
        store = dist.PrefixStore(f"rlinf/{backend}/{digest}/", base)
        try:
            if backend == "gloo":
                opts = dist.ProcessGroupGloo._Options()
                opts._timeout = _td(timeout)
                opts._devices = [dist.ProcessGroupGloo.create_device(hostname=self._ip)]
                pg = dist.ProcessGroupGloo(store, rank, len(members), opts)
            else:
                opts = dist.ProcessGroupNCCL.Options()
                opts._timeout = _td(timeout)
                pg = dist.ProcessGroupNCCL(store, rank, len(members), opts)
        except Exception as e:
            others = [str(m) for m in members if m != self.me]
            raise CommError(
                f"{self.me}: could not connect to {others} within {timeout:g} s "
                f"(each must call the matching send/recv/broadcast): {e}"
            ) from e
        self._groups[key] = pg
        return pg

    def _wait(self, work: Any, timeout: float, what: str) -> None:
        try:
            work.wait(_td(timeout))
        except Exception as e:
            raise CommError(f"{self.me}: {what} failed: {e}") from e

    def send(self, obj: Any, dst: WorkerAddress, timeout: float | None = None) -> None:
        """Send ``obj`` (a tensor, or any picklable object holding tensors) to ``dst``.

        Blocks until ``dst`` has received it. CPU tensors travel over gloo, CUDA tensors
        over NCCL; the small header (skeleton and tensor shapes) always over gloo.
        """
        if dst == self.me:
            raise CommError(f"{self.me}: cannot send to itself")
        t = self.timeout if timeout is None else timeout
        pair = sorted([self.me, dst])
        peer = pair.index(dst)
        header, tensors = encode(obj)
        with self._lock:
            pg = self._group(pair, "gloo", t)
            head = torch.frombuffer(bytearray(header), dtype=torch.uint8)
            self._wait(pg.send([torch.tensor([head.numel()])], peer, 0), t, f"send to {dst}")
            self._wait(pg.send([head], peer, 0), t, f"send to {dst}")
            for tensor in tensors:
                if tensor.numel() == 0:
                    continue
                group = self._group(pair, "nccl", t) if tensor.is_cuda else pg
                self._wait(group.send([_as_bytes(tensor)], peer, 0), t, f"send to {dst}")

    def recv(self, src: WorkerAddress, timeout: float | None = None, out: Any = None) -> Any:
        """Receive the next object ``src`` sent to this worker.

        ``out`` (a tensor, or a sequence with one tensor per tensor of the message, in order)
        receives in place instead of allocating; shapes and dtypes must match.
        """
        if src == self.me:
            raise CommError(f"{self.me}: cannot receive from itself")
        t = self.timeout if timeout is None else timeout
        pair = sorted([self.me, src])
        peer = pair.index(src)
        with self._lock:
            pg = self._group(pair, "gloo", t)
            size = torch.empty(1, dtype=torch.int64)
            self._wait(pg.recv([size], peer, 0), t, f"recv from {src}")
            head = torch.empty(int(size.item()), dtype=torch.uint8)
            self._wait(pg.recv([head], peer, 0), t, f"recv from {src}")
            skeleton, metas = decode_skeleton(head.numpy().tobytes())
            tensors = _targets(metas, out, f"{self.me}: recv from {src}")
            for tensor in tensors:
                if tensor.numel():
                    group = self._group(pair, "nccl", t) if tensor.is_cuda else pg
                    self._wait(group.recv([_as_bytes(tensor)], peer, 0), t, f"recv from {src}")
        return rebuild(skeleton, tensors)

    def broadcast(
        self,
        obj: Any,
        src: WorkerAddress,
        dsts: Sequence[WorkerAddress],
        timeout: float | None = None,
        out: Any = None,
    ) -> Any:
        """Broadcast ``obj`` from ``src`` to every worker in ``dsts``.

        Every participant calls this with the same ``src`` and ``dsts``; the source passes the
        object, receivers pass None and get the object back (the source gets ``obj``).
        Receivers may pass ``out`` buffers as for ``recv``.
        """
        members = sorted({src, *dsts})
        if self.me not in members:
            raise CommError(f"{self.me}: not part of the broadcast from {src} to {list(dsts)}")
        t = self.timeout if timeout is None else timeout
        root = members.index(src)
        what = f"broadcast from {src}"
        with self._lock:
            pg = self._group(members, "gloo", t)
            opts = dist.BroadcastOptions()
            opts.rootRank = root
            if self.me == src:
                header, tensors = encode(obj)
                head = torch.frombuffer(bytearray(header), dtype=torch.uint8)
                self._wait(pg.broadcast([torch.tensor([head.numel()])], opts), t, what)
                self._wait(pg.broadcast([head], opts), t, what)
            else:
                size = torch.empty(1, dtype=torch.int64)
                self._wait(pg.broadcast([size], opts), t, what)
                head = torch.empty(int(size.item()), dtype=torch.uint8)
                self._wait(pg.broadcast([head], opts), t, what)
                skeleton, metas = decode_skeleton(head.numpy().tobytes())
                tensors = []
                tensors = _targets(metas, out, f"{self.me}: {what}")
            for tensor in tensors:
                if tensor.numel():
                    group = self._group(members, "nccl", t) if tensor.is_cuda else pg
                    self._wait(group.broadcast([_as_bytes(tensor)], opts), t, what)
        return obj if self.me == src else rebuild(skeleton, tensors)

    def close(self) -> None:
        """Drop every process group (peers see their connections close)."""
        for pg in self._groups.values():
            with contextlib.suppress(Exception):
                pg.shutdown()
        self._groups.clear()
