"""A whole placement: every component's ranks and devices, validated and classified."""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from ._protocols import PlacedGroup
from ._spec import ComponentPlacement, SpecLike, parse_component
from ._topology import PlacementError, Topology

__all__ = ["Placement", "PlacementMode", "classify", "classify_groups"]


class PlacementMode(enum.StrEnum):
    """How components share devices.

    COLLOCATED: all components use the same devices and take turns on them.
    DISAGGREGATED: no two components share a device; they run at once, as a pipeline.
    HYBRID: anything in between (some components share devices, others do not).
    """

    COLLOCATED = "collocated"
    DISAGGREGATED = "disaggregated"
    HYBRID = "hybrid"


def classify(components: Iterable[ComponentPlacement]) -> PlacementMode:
    """Classify a set of component placements by how their device sets relate."""
    sets = [frozenset(c.devices) for c in components]
    if len(sets) <= 1 or all(s == sets[0] for s in sets):
        return PlacementMode.COLLOCATED
    disjoint = all(not (a & b) for i, a in enumerate(sets) for b in sets[i + 1 :])
    return PlacementMode.DISAGGREGATED if disjoint else PlacementMode.HYBRID


def classify_groups(groups: Iterable[PlacedGroup]) -> PlacementMode:
    """Classify running groups of workers (anything satisfying PlacedGroup)."""
    return classify(g.placement for g in groups)


@dataclass(frozen=True)
class Placement:
    """Validated placement of every component on a topology.

    Attributes:
        topology: The topology the specs were resolved against.
        components: Component name -> its placement, in spec order.
    """

    topology: Topology
    components: Mapping[str, ComponentPlacement] = field(hash=False)

    @classmethod
    def parse(
        cls,
        specs: Mapping[str, SpecLike],
        topology: Topology,
        *,
        components: Collection[str] | None = None,
        exclusive: Collection[str] = (),
        require: PlacementMode | str | None = None,
    ) -> Placement:
        """Parse ``{"actor": "0-3", "rollout": "4-7", "env": "0-3"}`` against ``topology``.

        Args:
            specs: Component name -> spec (see ``SpecLike``).
            topology: Devices to place on.
            components: If given, the exact set of components expected: an unknown or a
                missing component is an error.
            exclusive: Components that must not share a device with any other component.
            require: If given, the placement must classify as this mode.

        Raises:
            PlacementError: naming the component and its spec.
        """
        if not specs:
            raise PlacementError("a placement needs at least one component")
        if components is not None:
            known = set(components)
            for name, spec in specs.items():
                if name not in known:
                    raise PlacementError(
                        f"unknown component {name!r} (spec {spec!r}); "
                        f"components: {', '.join(sorted(known))}"
                    )
            missing = sorted(known - set(specs))
            if missing:
                raise PlacementError(f"no placement given for component(s) {missing}")
        parsed = {name: parse_component(name, spec, topology) for name, spec in specs.items()}
        for name in exclusive:
            if name not in parsed:
                raise PlacementError(f"exclusive component {name!r} has no placement")
            mine = set(parsed[name].devices)
            for other, cp in parsed.items():
                shared = mine & set(cp.devices)
                if other != name and shared:
                    raise PlacementError(
                        f"placement of {name!r} ({parsed[name].spec}) must be exclusive but "
                        f"shares device(s) {sorted(shared)} with {other!r} ({cp.spec})"
                    )
        placement = cls(topology, parsed)
        if require is not None and placement.mode != PlacementMode(require):
            raise PlacementError(
                f"placement {dict(specs)!r} is {placement.mode.value}, "
                f"but {PlacementMode(require).value} was required"
            )
        return placement

    @property
    def mode(self) -> PlacementMode:
        """Collocated, disaggregated or hybrid."""
        return classify(self.components.values())

    def __getitem__(self, name: str) -> ComponentPlacement:
        if name not in self.components:
            raise PlacementError(
                f"unknown component {name!r}; components: {', '.join(self.components)}"
            )
        return self.components[name]

    @property
    def devices(self) -> tuple[int, ...]:
        """Sorted global indices of every device some component uses."""
        return tuple(sorted({d for c in self.components.values() for d in c.devices}))

    def users(self, device: int) -> tuple[tuple[str, int], ...]:
        """``(component, rank)`` of every process using ``device``, in spec and rank order."""
        return tuple(
            (c.name, r.rank)
            for c in self.components.values()
            for r in c.ranks
            if device in r.devices
        )

    def collocated_with(self, name: str) -> tuple[str, ...]:
        """Other components that share at least one device with ``name``."""
        mine = set(self[name].devices)
        return tuple(
            other
            for other, cp in self.components.items()
            if other != name and mine & set(cp.devices)
        )

    def is_shared(self, name: str, rank: int) -> bool:
        """Whether some other process uses one of this rank's devices (so it must take turns)."""
        return any(
            user != (name, rank) for d in self[name].ranks[rank].devices for user in self.users(d)
        )
