"""Lazy package exports (PEP 562): names load on first use, not at ``import``."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``name`` from its home module
    (``homes``: name -> module, relative to ``package`` as in ``"._train"``) when first
    asked for, so that importing the package imports nothing heavy (e.g. Ray).

    Use as ``__getattr__ = lazy_exports(__name__, {"train": "._train"})``.
    """

    def __getattr__(name: str) -> Any:
        if name in homes:
            return getattr(importlib.import_module(homes[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
