"""Encoding of picklable objects that contain tensors: a pickled skeleton plus raw tensors."""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from typing import Any

import torch
from ray import cloudpickle

__all__ = ["TensorMeta", "decode_skeleton", "encode", "rebuild"]


@dataclass(frozen=True)
class TensorMeta:
    """What a receiver needs to allocate a tensor before receiving it.

    Attributes:
        shape: Tensor shape.
        dtype: dtype name without the ``torch.`` prefix (e.g. ``"float32"``).
        cuda: Whether the sender's tensor lives on a CUDA device.
    """

    shape: tuple[int, ...]
    dtype: str
    cuda: bool


class _TensorPickler(cloudpickle.CloudPickler):
    """Pickles everything except tensors, which are collected and referenced by index.

    cloudpickle rather than pickle so that classes defined in ``__main__`` or in modules the
    receiver cannot import (scripts, notebooks) travel by value, as Ray's own arguments do.
    """

    def __init__(self, file: io.BytesIO):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.tensors: list[torch.Tensor] = []
        self._index: dict[int, int] = {}

    def persistent_id(self, obj: Any) -> int | None:
        if isinstance(obj, torch.Tensor):
            key = id(obj)
            if key not in self._index:
                if obj.is_sparse or obj.is_quantized:
                    raise TypeError("sparse and quantized tensors cannot be sent; densify first")
                self._index[key] = len(self.tensors)
                self.tensors.append(obj.detach().contiguous())
            return self._index[key]
        return None


class _TensorUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, tensors: list[torch.Tensor]):
        super().__init__(file)
        self._tensors = tensors

    def persistent_load(self, pid: Any) -> torch.Tensor:
        return self._tensors[pid]


def encode(obj: Any) -> tuple[bytes, list[torch.Tensor]]:
    """Split ``obj`` into a header (bytes) and its tensors (contiguous, detached).

    The same tensor object appearing twice is sent once; distinct views of one storage are
    sent (and received) as independent tensors.
    """
    buf = io.BytesIO()
    pickler = _TensorPickler(buf)
    pickler.dump(obj)
    metas = [
        TensorMeta(tuple(t.shape), str(t.dtype).removeprefix("torch."), t.is_cuda)
        for t in pickler.tensors
    ]
    header = pickle.dumps((buf.getvalue(), metas), protocol=pickle.HIGHEST_PROTOCOL)
    return header, pickler.tensors


def decode_skeleton(header: bytes) -> tuple[bytes, list[TensorMeta]]:
    """Read a header produced by ``encode``: the pickled skeleton and the tensor metadata."""
    return pickle.loads(header)


def rebuild(skeleton: bytes, tensors: list[torch.Tensor]) -> Any:
    """Rebuild the object from its skeleton and the received tensors."""
    return _TensorUnpickler(io.BytesIO(skeleton), tensors).load()
