"""How an item travels: by value when it is small, through the object store otherwise.

An entry is a 2-tuple ``(kind, data)``: ``("v", item)`` carries a small item by value and
``("r", ref)`` carries the object reference of a payload put in Ray's object store. The
tuple matters: Ray resolves only top-level references in task arguments, so a reference
inside it reaches the channel actor as a reference and the payload never passes through.

Small items go by value because that is what Ray itself does with task arguments below its
inline threshold: a store round trip (put, borrower bookkeeping, fetch) costs several times
more than copying a few kilobytes, and the copy is what dominates only for large payloads.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ray

__all__ = ["INLINE_LIMIT_BYTES", "pack", "unpack_all", "unpack_all_async"]

INLINE_LIMIT_BYTES = 16 * 1024
"""Default size below which an item travels by value; larger ones go through the store."""

_MAX_INLINE_ELEMENTS = 256
_SCALARS = (type(None), bool, int, float, complex)


def _inline_size(item: Any, budget: int, elements: list[int]) -> int:
    """Estimated serialized size of ``item``, or ``budget + 1`` if it must not be inlined."""
    elements[0] += 1
    if elements[0] > _MAX_INLINE_ELEMENTS:
        return budget + 1
    if isinstance(item, _SCALARS):
        return 16
    if isinstance(item, (str, bytes, bytearray)):
        return len(item) + 16
    if type(item).__module__ == "numpy" and hasattr(item, "nbytes"):
        # Object arrays hide arbitrary payloads behind pointers: never inline them.
        return budget + 1 if item.dtype.hasobject else int(item.nbytes) + 128
    if isinstance(item, (list, tuple, dict)):
        values = list(item.keys()) + list(item.values()) if isinstance(item, dict) else item
        total = 16
        for value in values:
            total += _inline_size(value, budget - total, elements)
            if total > budget:
                return budget + 1
        return total
    # Tensors and arbitrary objects: their size is unknown without serializing them.
    return budget + 1


def pack(item: Any, inline_limit: int = INLINE_LIMIT_BYTES) -> tuple[str, Any]:
    """Wrap ``item`` for the channel actor: by value if below ``inline_limit`` bytes, else
    as a store reference (``inline_limit=0`` sends everything through the store)."""
    if inline_limit > 0 and _inline_size(item, inline_limit, [0]) <= inline_limit:
        return ("v", item)
    return ("r", ray.put(item))


def _split(entries: list[tuple[str, Any]]) -> tuple[list[Any], list[int], list[ray.ObjectRef]]:
    values = [data for _, data in entries]
    store_positions = [i for i, (kind, _) in enumerate(entries) if kind == "r"]
    return values, store_positions, [values[i] for i in store_positions]


def unpack_all(entries: list[tuple[str, Any]]) -> list[Any]:
    """Turn entries back into items, fetching every store payload in one ``ray.get``."""
    values, positions, refs = _split(entries)
    if refs:
        for position, value in zip(positions, ray.get(refs), strict=True):
            values[position] = value
    return values


async def unpack_all_async(entries: list[tuple[str, Any]]) -> list[Any]:
    """Awaitable :func:`unpack_all`."""
    values, positions, refs = _split(entries)
    if refs:
        fetched = await asyncio.gather(*refs)
        for position, value in zip(positions, fetched, strict=True):
            values[position] = value
    return values
