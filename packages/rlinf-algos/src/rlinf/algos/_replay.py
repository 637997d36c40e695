"""A ring replay buffer of dict-of-tensors with uniform sampling, mixing and save/load."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from ._checks import check_finite

__all__ = ["ReplayBuffer", "sample_mixed"]

Batch = dict[str, torch.Tensor]


class ReplayBuffer:
    """Fixed-capacity FIFO store of transitions, each a dict of tensors.

    Storage is allocated on the first :meth:`add`, from that batch's keys, per-item shapes
    and dtypes (the schema); later batches must match it. When full, the oldest items are
    overwritten first.

    Args:
        capacity: maximum number of items.
        device: where the storage lives (default: the device of the first batch).
    """

    def __init__(self, capacity: int, device: torch.device | str | None = None) -> None:
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        self.capacity = capacity
        self.device = None if device is None else torch.device(device)
        self._storage: Batch = {}
        self._ptr = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def keys(self) -> list[str]:
        """Sorted keys of the schema (empty before the first add)."""
        return sorted(self._storage)

    def _check_batch(self, batch: Mapping[str, torch.Tensor]) -> int:
        if not batch:
            raise ValueError("batch is empty: expected a dict of tensors")
        sizes = set()
        for k, v in batch.items():
            if not isinstance(v, torch.Tensor) or v.dim() < 1:
                raise ValueError(f"batch[{k!r}] must be a tensor with a leading batch dim")
            sizes.add(v.shape[0])
            check_finite(f"batch[{k!r}]", v)
        if len(sizes) != 1:
            shapes = {k: tuple(v.shape) for k, v in batch.items()}
            raise ValueError(f"batch tensors disagree on the leading (batch) dim: {shapes}")
        if self._storage:
            missing = sorted(set(self._storage) - set(batch))
            extra = sorted(set(batch) - set(self._storage))
            if missing or extra:
                raise ValueError(
                    f"batch keys do not match the buffer: missing {missing}, extra {extra}"
                )
            for k, v in batch.items():
                want = self._storage[k].shape[1:]
                if v.shape[1:] != want:
                    raise ValueError(
                        f"batch[{k!r}] has item shape {tuple(v.shape[1:])}, buffer holds {tuple(want)}"
                    )
        return sizes.pop()

    def add(self, batch: Mapping[str, torch.Tensor]) -> None:
        """Append ``N`` items: every value is ``[N, ...]``. Keeps the newest ``capacity``."""
        n = self._check_batch(batch)
        if n == 0:
            return
        if not self._storage:
            device = self.device or next(iter(batch.values())).device
            self.device = device
            self._storage = {
                k: torch.zeros((self.capacity, *v.shape[1:]), dtype=v.dtype, device=device)
                for k, v in batch.items()
            }
        start = max(0, n - self.capacity)
        n_keep = n - start
        idx = (self._ptr + torch.arange(n_keep)) % self.capacity
        idx = idx.to(self.device)
        for k, v in batch.items():
            self._storage[k][idx] = v[start:].to(self.device, self._storage[k].dtype)
        self._ptr = (self._ptr + n_keep) % self.capacity
        self._size = min(self.capacity, self._size + n_keep)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        """``batch_size`` items drawn uniformly with replacement; values ``[batch_size, ...]``.

        ``generator`` (a CPU ``torch.Generator``) makes the draw reproducible.
        """
        if self._size == 0:
            raise ValueError("cannot sample from an empty ReplayBuffer; add data first")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        idx = torch.randint(0, self._size, (batch_size,), generator=generator)
        return self.get(idx)

    def get(self, indices: torch.Tensor) -> Batch:
        """Items at physical slot ``indices`` (``[K]`` int, each ``< len(self)``)."""
        idx = indices.to(self.device)
        return {k: v[idx] for k, v in self._storage.items()}

    def ordered(self) -> Batch:
        """All stored items, oldest first; values ``[len(self), ...]``."""
        if self._size < self.capacity:
            idx = torch.arange(self._size)
        else:
            idx = (self._ptr + torch.arange(self.capacity)) % self.capacity
        return self.get(idx)

    def clear(self) -> None:
        """Forget every item (the schema and storage are kept)."""
        self._ptr = 0
        self._size = 0

    def state_dict(self) -> dict[str, object]:
        """Plain dict of ints and tensors (loadable with ``torch.load(weights_only=True)``)."""
        return {
            "capacity": self.capacity,
            "ptr": self._ptr,
            "size": self._size,
            "storage": {
                k: v[: self._size] if self._size < self.capacity else v
                for k, v in self._storage.items()
            },
        }

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        """Restore from :meth:`state_dict`; the capacity must match."""
        missing = {"capacity", "ptr", "size", "storage"} - set(state)
        if missing:
            raise ValueError(f"state is missing keys {sorted(missing)}")
        if state["capacity"] != self.capacity:
            raise ValueError(
                f"state capacity {state['capacity']} != buffer capacity {self.capacity}"
            )
        storage: Mapping[str, torch.Tensor] = state["storage"]  # type: ignore[assignment]
        device = self.device or (next(iter(storage.values())).device if storage else None)
        self.device = device
        self._storage = {}
        for k, v in storage.items():
            full = torch.zeros((self.capacity, *v.shape[1:]), dtype=v.dtype, device=device)
            full[: v.shape[0]] = v.to(device)
            self._storage[k] = full
        self._ptr = int(state["ptr"])  # type: ignore[arg-type]
        self._size = int(state["size"])  # type: ignore[arg-type]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the buffer to ``path`` with ``torch.save``."""
        torch.save(self.state_dict(), path)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], device: torch.device | str | None = None
    ) -> ReplayBuffer:
        """Read a buffer written by :meth:`save` (tensors only; no pickled code runs)."""
        state = torch.load(path, map_location=device or "cpu", weights_only=True)
        buf = cls(int(state["capacity"]), device=device)
        buf.load_state_dict(state)
        return buf


def sample_mixed(
    first: ReplayBuffer,
    second: ReplayBuffer,
    batch_size: int,
    *,
    ratio: float = 0.5,
    generator: torch.Generator | None = None,
) -> Batch:
    """Draw ``round(ratio * batch_size)`` items from ``first`` and the rest from ``second``.

    RLPD's symmetric sampling is ``sample_mixed(online, demos, B, ratio=0.5)``. Items from
    ``first`` come first in the returned ``[batch_size, ...]`` tensors. Both buffers must
    share the keys and item shapes; a buffer asked for items while empty raises.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must be in [0, 1], got {ratio}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n_first = round(ratio * batch_size)
    n_second = batch_size - n_first
    parts = []
    if n_first:
        parts.append(first.sample(n_first, generator))
    if n_second:
        parts.append(second.sample(n_second, generator))
    if len(parts) == 1:
        return parts[0]
    a, b = parts
    if set(a) != set(b) or any(a[k].shape[1:] != b[k].shape[1:] for k in a):
        raise ValueError(
            f"buffers have different schemas: {first.keys} vs {second.keys} (or item shapes)"
        )
    return {k: torch.cat([a[k], b[k].to(a[k].device)]) for k in a}
