"""Updater configs' access to the ``rlinf.algos`` registries: plugins and checked lookups.

A user's own advantage estimator, policy loss or KL estimator lives in their module, which
registers it on import (``@rlinf.algos.advantage_estimator("mine")``, ...). The updater
configs list such modules in ``plugins``; :func:`import_plugins` imports them when the config
is built (in the driver, before the names are checked) and again when an updater is built
(in each worker process, which unpickles the config without running its checks).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from rlinf.algos import Registry

__all__ = ["check_name", "import_plugins"]


def import_plugins(modules: Sequence[str]) -> None:
    """Import each module of ``modules`` (idempotent: Python caches imported modules).

    Raises:
        ValueError: naming ``plugins`` and the module that cannot be imported.
    """
    for module in modules:
        if not isinstance(module, str) or not module:
            raise ValueError(f"plugins: entries must be module names, got {module!r}")
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ValueError(
                f"plugins: cannot import {module!r} ({e}); a plugin module must be importable "
                "in the driver and in every worker process (installed, or on PYTHONPATH)"
            ) from e


def check_name(registry: Registry[Any], name: str, key: str, extra: Sequence[str] = ()) -> None:
    """Raise ``ValueError`` naming ``key`` and every valid choice when ``name`` is neither in
    ``registry`` nor in ``extra`` (names the config itself maps onto registry entries)."""
    if name in registry or name in extra:
        return
    choices = ", ".join(sorted([*registry.names(), *extra]))
    raise ValueError(
        f"{key}: unknown {registry.kind} {name!r}; registered: {choices} (register your own "
        "in a module of yours and list it in plugins)"
    )
