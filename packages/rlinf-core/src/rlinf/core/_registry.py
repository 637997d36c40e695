"""Name -> object registries with lazy ``"module:attr"`` entries."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar, overload

__all__ = ["Registry", "RegistryError"]

T = TypeVar("T")


class RegistryError(LookupError):
    """An unknown name, a duplicate registration, or a lazy entry that cannot be imported."""

    def __str__(self) -> str:
        # LookupError/KeyError would repr() the message; keep it readable.
        return str(self.args[0]) if self.args else ""


@dataclass
class _Entry:
    target: object
    install_hint: str | None


class Registry(Generic[T]):
    """Map names to objects, some of them imported only when first asked for.

    Example::

        losses = Registry[Callable]("policy loss")

        @losses.register("ppo")
        def ppo_loss(...): ...

        losses.register("vllm", "rlinf.models.vllm_engine:VLLMEngine",
                        install_hint="pip install 'rlinf-models[vllm]'")
        losses.get("ppo")
    """

    def __init__(self, kind: str):
        """``kind`` names what is registered (used in error messages, e.g. "policy loss")."""
        self.kind = kind
        self._entries: dict[str, _Entry] = {}

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, obj: T | str, *, install_hint: str | None = None) -> T | str: ...

    def register(
        self, name: str, obj: T | str | None = None, *, install_hint: str | None = None
    ) -> object:
        """Register ``obj`` (or a lazy ``"module:attr"`` string) under ``name``.

        Without ``obj`` returns a decorator. ``install_hint`` is shown when a lazy entry's
        module is missing (e.g. which extra to install). Duplicate names raise RegistryError.
        """
        if obj is None:

            def deco(target: T) -> T:
                self.register(name, target, install_hint=install_hint)
                return target

            return deco
        if not isinstance(name, str) or not name:
            raise RegistryError(f"{self.kind} names must be non-empty strings, got {name!r}")
        if name in self._entries:
            raise RegistryError(f"{self.kind} {name!r} is already registered")
        if isinstance(obj, str) and obj.count(":") != 1:
            raise RegistryError(f"lazy {self.kind} {name!r} must be 'module:attr', got {obj!r}")
        self._entries[name] = _Entry(obj, install_hint)
        return obj

    def get(self, name: str) -> T:
        """The object registered under ``name``, importing it first if it is lazy."""
        entry = self._entries.get(name)
        if entry is None:
            valid = ", ".join(sorted(self._entries)) or "(none registered)"
            raise RegistryError(f"unknown {self.kind} {name!r}; valid names: {valid}")
        if isinstance(entry.target, str):
            module_name, attr = entry.target.split(":")
            try:
                module = importlib.import_module(module_name)
            except ImportError as e:
                hint = f"; {entry.install_hint}" if entry.install_hint else ""
                raise RegistryError(
                    f"{self.kind} {name!r} needs module {module_name!r}, which cannot be "
                    f"imported ({e}){hint}"
                ) from e
            try:
                entry.target = getattr(module, attr)
            except AttributeError as e:
                raise RegistryError(
                    f"{self.kind} {name!r}: module {module_name!r} has no attribute {attr!r}"
                ) from e
        return entry.target  # type: ignore[return-value]

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.names()})"
