"""Measured facts about a flow's components: what the planner's cost model starts from.

An app runs each component for a few iterations (collocated is fine: each is timed alone) at
one or more device counts and records the seconds, the memory it held per device, and the
flow-level facts the cost model needs. The profile is plain data with a JSON round trip, so it
can be written to a run directory, edited by hand and fed back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ComponentProfile", "FlowProfile", "ProfileError"]

_FORMAT_VERSION = 2
# Version 1 had no ``wide_seconds`` / ``overlap_slowdown``; it still reads (not measured).
_READABLE_VERSIONS = (1, 2)


class ProfileError(ValueError):
    """A profile that is malformed or inconsistent; the message names the bad field."""


def _positive_int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ProfileError(f"{where} must be a positive int, got {value!r}")
    return value


def _finite(value: object, where: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProfileError(f"{where} must be a finite number, got {value!r}")
    if value < 0 or (positive and value == 0):
        kind = "> 0" if positive else ">= 0"
        raise ProfileError(f"{where} must be {kind}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ComponentProfile:
    """What one component costs, measured.

    Attributes:
        name: Component name as placements use it (``"actor"``, ``"rollout"``, ``"env"``).
        seconds: Device count -> seconds the component needs for its share of one iteration
            when it runs alone on that many devices (data parallel). One or more points.
        memory_bytes: Peak bytes per device while the component runs (the largest measured).
        idle_bytes: Bytes per device it keeps while another collocated component runs (less
            than ``memory_bytes`` when it offloads between turns). None: same as memory_bytes.
        overhead_s: Fixed seconds per micro-batch (launch, transfer latency): splitting the
            iteration into M micro-batches costs ``M * overhead_s`` on top of ``seconds``.
        max_devices: Most devices it can use (e.g. 1 for a single-process worker); None: any.
        floor_s: Seconds it never goes below however many devices it gets; None: the fitted
            serial part (see ``rlinf.sched.fit_scaling``).
        wide_seconds: Seconds on one device when its process also gets the compute of a
            second device of the same host (CPU slots: 2 intra-op threads instead of 1),
            measured; None: not measured. The update's ``seconds[1] / wide_seconds`` is its
            lending speed-up (``rlinf.sched.predict`` with ``lending``); every component's
            value prices the static "wide" candidate (each process on 2 threads, turns).
    """

    name: str
    seconds: Mapping[int, float] = field(hash=False)
    memory_bytes: int
    idle_bytes: int | None = None
    overhead_s: float = 0.0
    max_devices: int | None = None
    floor_s: float | None = None
    wide_seconds: float | None = None

    def __post_init__(self) -> None:
        where = f"component {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ProfileError(f"component name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.seconds, Mapping) or not self.seconds:
            raise ProfileError(f"{where}: seconds needs at least one {{devices: seconds}} point")
        for d, s in self.seconds.items():
            _positive_int(d, f"{where}: seconds key (device count)")
            _finite(s, f"{where}: seconds[{d}]", positive=True)
        _positive_int(self.memory_bytes, f"{where}: memory_bytes")
        if self.idle_bytes is not None:
            if isinstance(self.idle_bytes, bool) or not isinstance(self.idle_bytes, int):
                raise ProfileError(f"{where}: idle_bytes must be an int, got {self.idle_bytes!r}")
            if not 0 <= self.idle_bytes <= self.memory_bytes:
                raise ProfileError(
                    f"{where}: idle_bytes must be in [0, memory_bytes={self.memory_bytes}], "
                    f"got {self.idle_bytes}"
                )
        _finite(self.overhead_s, f"{where}: overhead_s")
        if self.max_devices is not None:
            _positive_int(self.max_devices, f"{where}: max_devices")
        if self.floor_s is not None:
            _finite(self.floor_s, f"{where}: floor_s")
        if self.wide_seconds is not None:
            _finite(self.wide_seconds, f"{where}: wide_seconds", positive=True)

    @property
    def resident_bytes(self) -> int:
        """Bytes per device it holds while others take their turn."""
        return self.memory_bytes if self.idle_bytes is None else self.idle_bytes


@dataclass(frozen=True)
class FlowProfile:
    """A flow's components and the flow-level facts of one iteration.

    The components other than ``update`` form the rollout *chain*, in data order (embodied:
    env, rollout; LLM: rollout, reward); they stream micro-batches to each other. ``update``
    (the actor) trains on the whole iteration's data once the chain is done, then its weights
    go to the rollout side.

    Attributes:
        components: Every component, chain first in data order (the update's position is free).
        update: Name of the component that trains (must be in ``components``).
        device_memory_bytes: Memory of one device, bytes.
        weight_sync_s: Seconds of one weight sync (update -> rollout side).
        micro_batches: Numbers of micro-batches the chain can split an iteration into
            (embodied ``pipeline_stages``, LLM rollout shards); 1 means no pipelining.
        overlap_update: Whether the update may run while the next iteration's chain runs
            (embodied ``overlap_update``, LLM one-step staleness).
        overlap_slowdown: f >= 1: while the update runs beside the chain (overlap), both
            run f times slower than alone, because separate devices of one host share
            its cores and memory bandwidth (2 CPU slots on 2 cores). Measured from a short
            overlapped reference run (``rlinf.sched.overlap_slowdown_from``); 1.0: the
            devices are independent (the model without the term).
    """

    components: tuple[ComponentProfile, ...]
    update: str
    device_memory_bytes: int
    weight_sync_s: float = 0.0
    micro_batches: tuple[int, ...] = (1,)
    overlap_update: bool = False
    overlap_slowdown: float = 1.0

    def __post_init__(self) -> None:
        if not self.components:
            raise ProfileError("components: a profile needs at least one component")
        names = [c.name for c in self.components]
        for n in names:
            if names.count(n) > 1:
                raise ProfileError(f"components: component {n!r} is profiled twice")
        if self.update not in names:
            raise ProfileError(f"update: {self.update!r} is not a profiled component ({names})")
        if len(names) < 2:
            raise ProfileError("components: need the update and at least one chain component")
        _positive_int(self.device_memory_bytes, "device_memory_bytes")
        _finite(self.weight_sync_s, "weight_sync_s")
        if not self.micro_batches:
            raise ProfileError("micro_batches: give at least one count (1 = no pipelining)")
        for m in self.micro_batches:
            _positive_int(m, "micro_batches entry")
        if not isinstance(self.overlap_update, bool):
            raise ProfileError(f"overlap_update must be a bool, got {self.overlap_update!r}")
        if _finite(self.overlap_slowdown, "overlap_slowdown") < 1.0:
            raise ProfileError(f"overlap_slowdown must be >= 1, got {self.overlap_slowdown!r}")

    def __getitem__(self, name: str) -> ComponentProfile:
        for c in self.components:
            if c.name == name:
                return c
        raise ProfileError(f"no profile for component {name!r}; profiled: {self.names}")

    @property
    def names(self) -> tuple[str, ...]:
        """Component names in profile order."""
        return tuple(c.name for c in self.components)

    @property
    def chain(self) -> tuple[str, ...]:
        """The streaming components, in data order (all but the update)."""
        return tuple(c.name for c in self.components if c.name != self.update)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (device-count keys become strings)."""
        comps = []
        for c in self.components:
            comps.append(
                {
                    "name": c.name,
                    "seconds": {str(d): s for d, s in sorted(c.seconds.items())},
                    "memory_bytes": c.memory_bytes,
                    "idle_bytes": c.idle_bytes,
                    "overhead_s": c.overhead_s,
                    "max_devices": c.max_devices,
                    "floor_s": c.floor_s,
                    "wide_seconds": c.wide_seconds,
                }
            )
        return {
            "version": _FORMAT_VERSION,
            "update": self.update,
            "device_memory_bytes": self.device_memory_bytes,
            "weight_sync_s": self.weight_sync_s,
            "micro_batches": list(self.micro_batches),
            "overlap_update": self.overlap_update,
            "overlap_slowdown": self.overlap_slowdown,
            "components": comps,
        }

    def to_json(self) -> str:
        """The profile as JSON text (``from_json`` reads it back equal)."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FlowProfile:
        """Read ``to_dict``'s output; raises ProfileError naming the bad or unknown field."""
        if not isinstance(data, Mapping):
            raise ProfileError(f"profile must be a JSON object, got {type(data).__name__}")
        if data.get("version") == 1 and "overlap_slowdown" not in data:
            data = {**data, "overlap_slowdown": 1.0}  # version 1: not measured then
        _check_keys(data, _FLOW_KEYS, "profile")
        version = data["version"]
        if version not in _READABLE_VERSIONS:
            raise ProfileError(
                f"version: expected one of {list(_READABLE_VERSIONS)}, got {version!r}"
            )
        comps = data["components"]
        if not isinstance(comps, list):
            raise ProfileError(f"components must be a list, got {type(comps).__name__}")
        if version == 1:
            comps = [_v1_component(c) for c in comps]
        mbs = data["micro_batches"]
        if not isinstance(mbs, list):
            raise ProfileError(f"micro_batches must be a list, got {mbs!r}")
        return cls(
            components=tuple(_component_from_dict(c, i) for i, c in enumerate(comps)),
            update=data["update"],
            device_memory_bytes=data["device_memory_bytes"],
            weight_sync_s=data["weight_sync_s"],
            micro_batches=tuple(mbs),
            overlap_update=data["overlap_update"],
            overlap_slowdown=data["overlap_slowdown"],
        )

    @classmethod
    def from_json(cls, text: str) -> FlowProfile:
        """Read ``to_json``'s output; raises ProfileError naming the bad field."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ProfileError(f"profile is not valid JSON: {e}") from None
        return cls.from_dict(data)


_FLOW_KEYS = (
    "version",
    "update",
    "device_memory_bytes",
    "weight_sync_s",
    "micro_batches",
    "overlap_update",
    "overlap_slowdown",
    "components",
)
_COMPONENT_KEYS = (
    "name",
    "seconds",
    "memory_bytes",
    "idle_bytes",
    "overhead_s",
    "max_devices",
    "floor_s",
    "wide_seconds",
)


def _v1_component(data: object) -> object:
    # Version 1 components lack wide_seconds (not measured then): read as None.
    if isinstance(data, Mapping) and "wide_seconds" not in data:
        return {**data, "wide_seconds": None}
    return data


def _check_keys(data: Mapping[str, Any], keys: tuple[str, ...], where: str) -> None:
    # Every key is required, so a typo in a hand-edited profile cannot fall back to a default.
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise ProfileError(f"{where}: unknown field(s) {unknown}; fields: {list(keys)}")
    missing = [k for k in keys if k not in data]
    if missing:
        raise ProfileError(f"{where}: missing field(s) {missing}")


def _component_from_dict(data: object, index: int) -> ComponentProfile:
    where = f"components[{index}]"
    if not isinstance(data, Mapping):
        raise ProfileError(f"{where} must be an object, got {type(data).__name__}")
    _check_keys(data, _COMPONENT_KEYS, where)
    raw = data["seconds"]
    if not isinstance(raw, Mapping):
        raise ProfileError(f"{where}.seconds must be an object {{devices: seconds}}, got {raw!r}")
    seconds: dict[int, float] = {}
    for key, value in raw.items():
        try:
            seconds[int(key)] = value
        except ValueError:
            raise ProfileError(f"{where}.seconds: key {key!r} is not a device count") from None
    try:
        return ComponentProfile(
            name=data["name"],
            seconds=seconds,
            memory_bytes=data["memory_bytes"],
            idle_bytes=data["idle_bytes"],
            overhead_s=data["overhead_s"],
            max_devices=data["max_devices"],
            floor_s=data["floor_s"],
            wide_seconds=data["wide_seconds"],
        )
    except ProfileError as e:
        raise ProfileError(f"{where}: {e}") from None
