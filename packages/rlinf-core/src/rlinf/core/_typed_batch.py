"""TypedBatch: frozen dataclasses of arrays with declared shapes, split and joined along the
batch dimension.

A subclass is a ``@dataclasses.dataclass(frozen=True, eq=False)`` whose fields are arrays
(numpy arrays or torch tensors) or mappings of name -> array, and which declares each
field's shape in ``SHAPES`` as space-separated dimension names: ``"N T"`` is a ``[N, T]``
array, ``"N T ..."`` one of at least two dimensions, a number is a fixed size. A name
means the same size in every field (``N`` of ``rewards`` is ``N`` of ``actions``); the first
dimension of every shape is the batch dimension, along which :meth:`TypedBatch.split` and
:meth:`TypedBatch.concat` cut and join (e.g. the env dimension of trajectories, split over
data-parallel ranks). Construction validates every field and names the first one that is
missing or misshapen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
import torch

__all__ = ["BatchShapeError", "TypedBatch"]


class BatchShapeError(ValueError):
    """A field of a typed batch is missing, not an array, or does not have its declared
    shape; the message names the batch type and the field."""


class TypedBatch:
    """Base of typed batches (see the module doc for how to declare one).

    Attributes:
        SHAPES: field name -> declared shape, e.g. ``{"rewards": "N T"}``; every field of
            the dataclass must be declared.
    """

    SHAPES: ClassVar[Mapping[str, str]] = {}

    def __post_init__(self) -> None:
        names = [f.name for f in dataclasses.fields(self)]  # type: ignore[arg-type]
        undeclared = [n for n in names if n not in self.SHAPES]
        if undeclared:
            raise TypeError(f"{type(self).__name__}: no declared shape for fields {undeclared}")
        sizes: dict[str, int] = {}
        for name in names:
            for label, value in _arrays(self, name):
                _check(type(self).__name__, label, value, self.SHAPES[name], sizes)
        object.__setattr__(self, "_sizes", sizes)

    @property
    def dims(self) -> dict[str, int]:
        """Size of each named dimension, e.g. ``{"N": 8, "T": 128}``."""
        return dict(self._sizes)  # type: ignore[attr-defined]

    @property
    def batch_size(self) -> int:
        """Size of the batch (first) dimension."""
        return self.dims[next(iter(self.SHAPES.values())).split()[0]]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build from a mapping of field name -> value; a missing field is named, and an
        unknown one too (nothing is dropped silently)."""
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        required = [
            f.name
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [n for n in required if n not in data]
        if missing:
            raise BatchShapeError(f"{cls.__name__}: missing fields {missing}")
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise BatchShapeError(f"{cls.__name__}: unknown fields {unknown}; fields: {names}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Field name -> value (mappings copied one level deep)."""
        return {
            f.name: _copy(getattr(self, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        }

    def map(self, fn: Callable[[Any], Any]) -> Self:
        """The same batch with ``fn`` applied to every array (e.g. ``torch.as_tensor``)."""
        return type(self)(**{k: _apply(v, fn) for k, v in self.to_dict().items()})

    def split(self, parts: int) -> list[Self]:
        """``parts`` contiguous pieces along the batch dimension; the first ``N % parts`` get
        one row more than the others (as :func:`rlinf.core.split_batch`)."""
        n = self.batch_size
        if not 0 < parts <= n:
            raise ValueError(f"cannot split a batch of {n} into {parts} parts")
        base, extra = divmod(n, parts)
        out, start = [], 0
        for i in range(parts):
            stop = start + base + (1 if i < extra else 0)
            out.append(self.map(lambda a, lo=start, hi=stop: a[lo:hi]))
            start = stop
        return out

    @classmethod
    def concat(cls, parts: Sequence[Self]) -> Self:
        """Join batches of this type along the batch dimension (every other dimension and
        every mapping's keys must match; the result is validated like any batch)."""
        if not parts:
            raise ValueError(f"no {cls.__name__} to concatenate")
        wrong = [type(p).__name__ for p in parts if type(p) is not cls]
        if wrong:
            raise TypeError(f"{cls.__name__}.concat got {wrong}")
        batch_dim = next(iter(cls.SHAPES.values())).split()[0]
        others = [{k: v for k, v in p.dims.items() if k != batch_dim} for p in parts]
        if any(o != others[0] for o in others):
            raise BatchShapeError(
                f"{cls.__name__}.concat: parts differ outside the batch dimension "
                f"{batch_dim}: {others}"
            )
        dicts = [p.to_dict() for p in parts]
        fields: dict[str, Any] = {}
        for name, first in dicts[0].items():
            if isinstance(first, Mapping):
                keys = [sorted(d[name]) for d in dicts]
                if any(k != keys[0] for k in keys):
                    raise BatchShapeError(f"{cls.__name__}.{name}: parts have keys {keys}")
                fields[name] = {k: _cat([d[name][k] for d in dicts]) for k in first}
            else:
                fields[name] = _cat([d[name] for d in dicts])
        return cls(**fields)


def _arrays(batch: Any, name: str) -> list[tuple[str, Any]]:
    value = getattr(batch, name)
    if isinstance(value, Mapping):
        return [(f"{name}[{k!r}]", v) for k, v in value.items()]
    return [(name, value)]


def _check(kind: str, label: str, value: Any, declared: str, sizes: dict[str, int]) -> None:
    dims = declared.split()
    if not isinstance(value, (np.ndarray, torch.Tensor)):
        raise BatchShapeError(
            f"{kind}.{label} must be a numpy array or torch tensor of shape [{', '.join(dims)}]"
            f", got {type(value).__name__}"
        )
    shape = tuple(value.shape)
    fixed = dims[:-1] if dims and dims[-1] == "..." else dims
    if len(shape) < len(fixed) or (len(fixed) == len(dims) and len(shape) != len(dims)):
        raise BatchShapeError(f"{kind}.{label} must have shape [{', '.join(dims)}], got {shape}")
    for dim, size in zip(fixed, shape, strict=False):
        expected = int(dim) if dim.isdigit() else sizes.setdefault(dim, size)
        if size != expected:
            raise BatchShapeError(
                f"{kind}.{label} has shape {shape}: dimension {dim} is {size}, expected "
                f"{expected} (declared [{', '.join(dims)}])"
            )


def _cat(arrays: list[Any]) -> Any:
    if isinstance(arrays[0], torch.Tensor):
        return torch.cat([torch.as_tensor(a) for a in arrays])
    return np.concatenate([np.asarray(a) for a in arrays])


def _apply(value: Any, fn: Callable[[Any], Any]) -> Any:
    if isinstance(value, Mapping):
        return {k: fn(v) for k, v in value.items()}
    return fn(value)


def _copy(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value
