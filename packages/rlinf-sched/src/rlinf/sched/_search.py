"""The search: enumerate placements of a flow on a topology and rank them by the cost model."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._cost import Prediction, analyze, evaluate, format_devices
from ._lend_cost import evaluate_lending, lending_speedup, predict_wide
from ._placement import Placement
from ._profile import FlowProfile
from ._scaling import fit_scaling
from ._topology import PlacementError, Topology

__all__ = ["RankedPlacement", "SearchConfig", "format_ranking", "search", "split_points"]


@dataclass(frozen=True)
class SearchConfig:
    """Bounds of the search.

    Attributes:
        max_split_points: Where a device range may be cut between two groups: every device
            boundary when the topology has at most this many devices, otherwise powers of two
            from either end plus ``max_split_points - 1`` evenly spaced cuts. Bounds the
            candidates on large topologies (64 devices, 4 components: a few thousand layouts).
        include_infeasible: Also return infeasible candidates (ranked last, with the reason).
    """

    max_split_points: int = 16
    include_infeasible: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.max_split_points, bool) or self.max_split_points < 2:
            raise ValueError(f"max_split_points must be >= 2, got {self.max_split_points!r}")


@dataclass(frozen=True)
class RankedPlacement:
    """One candidate with its prediction.

    Attributes:
        specs: Component -> device spec, e.g. ``{"env": "0-5", "rollout": "0-5", "actor":
            "6-7"}``: the placement block an app config takes.
        micro_batches: Micro-batches per iteration (embodied ``pipeline_stages``).
        overlap_update: Whether the update overlaps the next iteration's chain.
        prediction: The cost model's prediction, reason included.
        lending: Whether the chain's devices are lent to the update once the chain ends
            (dynamic re-allocation, e.g. ``scheduler.dynamic``; see ``evaluate_lending``).
        wide: Whether each process uses the compute of two devices while placed on one
            (CPU slots: 2 intra-op threads; see ``predict_wide``): a static candidate.
    """

    specs: Mapping[str, str] = field(hash=False)
    micro_batches: int
    overlap_update: bool
    prediction: Prediction
    lending: bool = False
    wide: bool = False

    @property
    def seconds(self) -> float:
        """Predicted seconds per iteration."""
        return self.prediction.seconds

    def to_placement(self, topology: Topology) -> Placement:
        """Parse the specs back with ``rlinf.sched.Placement``."""
        return Placement.parse(dict(self.specs), topology)

    def to_config(self) -> dict[str, Any]:
        """``{"placement": {...}, "micro_batches": m, "overlap_update": b, "lending": b,
        "wide": b}`` for an app."""
        return {
            "placement": dict(self.specs),
            "micro_batches": self.micro_batches,
            "overlap_update": self.overlap_update,
            "lending": self.lending,
            "wide": self.wide,
        }


def split_points(num_devices: int, max_points: int) -> tuple[int, ...]:
    """Device boundaries a contiguous split may cut at (1..num_devices-1), bounded.

    With more devices than ``max_points``, data-parallel sizes that are powers of two (from
    either end) and evenly spaced fractions are kept: 64 devices, 16 points gives
    1, 2, 4, 8, 12, 16, ..., 56, 60, 62, 63.
    """
    if num_devices <= max_points:
        return tuple(range(1, num_devices))
    cuts: set[int] = set()
    p = 1
    while p < num_devices:
        cuts.update((p, num_devices - p))
        p *= 2
    cuts.update(round(num_devices * i / max_points) for i in range(1, max_points))
    return tuple(sorted(c for c in cuts if 0 < c < num_devices))


def _set_partitions(items: Sequence[str]) -> Iterator[list[list[str]]]:
    # Each item joins one of the groups of a partition of the rest or opens a new one: every
    # partition once; each group lists its items in input order.
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _set_partitions(rest):
        yield [[first], *part]
        for i in range(len(part)):
            yield [*part[:i], [first, *part[i]], *part[i + 1 :]]


def search(
    profile: FlowProfile, topology: Topology, config: SearchConfig | None = None
) -> tuple[RankedPlacement, ...]:
    """Every candidate placement of the profile's components, best first.

    Candidates: each grouping of the components (all collocated, all disaggregated, and
    every hybrid in between), each contiguous split of the devices among the groups (cut
    points from ``split_points``), each allowed micro-batch count, with and without update
    overlap (when the profile allows it). In a group every component uses the group's
    devices, up to its ``max_devices`` (then the group's first ones); splits that leave a
    group's devices unused by all its members are skipped. All devices of the topology are
    used. On one layout, a micro-batch count or overlap is kept only if it predicts faster
    than every simpler kept variant (fewer micro-batches, no more overlap), so an infeasible
    layout appears once. Ties rank fewer groups, fewer micro-batches, no overlap first.

    When the update's wide point is measured (``lending_speedup``), each layout whose update
    has devices of its own on the node of the chain also gets lending variants
    (``evaluate_lending``), kept only if faster than every simpler variant (static ones
    included); when every component's wide point is measured and node 0 has 2 or more
    devices, the static "wide" candidate (all on device 0, two devices' compute each:
    ``predict_wide``) is added. Ties rank static before lending before wide.
    """
    config = config or SearchConfig()
    n = topology.num_devices
    if n < 1:
        raise PlacementError(f"cannot plan on a topology without devices: {topology.describe()}")
    names = profile.names
    fits = {c.name: fit_scaling(c.seconds, c.floor_s) for c in profile.components}
    overlaps = (False, True) if profile.overlap_update else (False,)
    cuts = split_points(n, config.max_split_points)
    speedup = lending_speedup(profile)
    node_of = [i for i, node in enumerate(topology.nodes) for _ in range(node.num_devices)]
    out: dict[tuple[Any, ...], tuple[int, RankedPlacement]] = {}
    for part in _set_partitions(list(names)):
        # Lay groups out in profile order (data order): the cost does not depend on it, and
        # the rendered specs then read like the flow.
        part.sort(key=lambda g: names.index(g[0]))
        k = len(part)
        if k > n:
            continue
        for chosen in itertools.combinations(cuts, k - 1):
            bounds = (0, *chosen, n)
            devices: dict[str, range] = {}
            wasted = False
            for group, lo, hi in zip(part, bounds, bounds[1:], strict=False):
                for name in group:
                    cap = profile[name].max_devices
                    devices[name] = range(lo, hi if cap is None else min(hi, lo + cap))
                # Devices no member can use would serve another group better (times never
                # grow with devices): skip the split rather than rank a dominated copy.
                wasted = wasted or max(len(devices[name]) for name in group) < hi - lo
            if wasted:
                continue
            specs = {name: format_devices(devices[name]) for name in names}
            if (tuple(specs.values()), min(profile.micro_batches), False, False) in out:
                continue
            layout = analyze(profile, devices, fits)
            if layout.problem is not None and not config.include_infeasible:
                continue
            # Lending needs the update alone on its devices, on the chain's node (threads
            # or an elastic world do not cross nodes), and a measured speed-up.
            one_node = len({node_of[d] for ds in devices.values() for d in ds}) == 1
            lends = (False, True) if speedup and not layout.update_with and one_node else (False,)
            kept: list[tuple[bool, int, bool, float]] = []
            for lend in lends:
                for m in sorted(profile.micro_batches):
                    for ov in overlaps:
                        fn = evaluate_lending if lend else evaluate
                        pred = fn(profile, layout, m, ov)
                        # More micro-batches, overlapping or lending that buys nothing on
                        # this layout is not a distinct choice: keep a variant only if no
                        # simpler kept one (static, fewer micro-batches, no more overlap)
                        # is as fast.
                        if any(
                            m2 <= m and ov2 <= ov and s2 <= pred.seconds for _, m2, ov2, s2 in kept
                        ):
                            continue
                        kept.append((lend, m, ov, pred.seconds))
                        key = (tuple(specs.values()), m, ov, lend)
                        out[key] = (k, RankedPlacement(specs, m, ov, pred, lending=lend))
    wide_ok = all(c.wide_seconds is not None for c in profile.components)
    if wide_ok and topology.nodes[0].num_devices >= 2:
        zero = dict.fromkeys(names, range(1))
        problem = analyze(profile, zero, fits).problem
        if problem is None or config.include_infeasible:
            specs = dict.fromkeys(names, "0")
            pred = predict_wide(profile, problem)
            out[("wide",)] = (1, RankedPlacement(specs, 1, False, pred, wide=True))
    ranked = sorted(
        out.values(),
        key=lambda kr: (
            kr[1].seconds,
            kr[0],
            kr[1].micro_batches,
            kr[1].overlap_update,
            kr[1].lending,
            kr[1].wide,
            tuple(kr[1].specs.values()),
        ),
    )
    return tuple(r for _, r in ranked)


def format_ranking(ranked: Sequence[RankedPlacement], top: int = 10) -> str:
    """A plain-text table of the first ``top`` candidates: rank, predicted seconds per
    iteration, micro-batches, overlap, scheduling (``static``, ``lend``: the chain's devices
    lent to the update, ``wide``: two devices' compute per process) and the reason (which
    shows the layout)."""
    if top < 1:
        raise ValueError(f"top must be >= 1, got {top}")
    lines = [f"{'#':>3}  {'s/iter':>8}  {'mb':>3}  {'overlap':<7}  {'sched':<6}  reason"]
    for i, r in enumerate(ranked[:top], 1):
        secs = "inf" if math.isinf(r.seconds) else f"{r.seconds:.3f}"
        ov = "yes" if r.overlap_update else "no"
        sched = "lend" if r.lending else "wide" if r.wide else "static"
        lines.append(
            f"{i:>3}  {secs:>8}  {r.micro_batches:>3}  {ov:<7}  {sched:<6}  {r.prediction.reason}"
        )
    if len(ranked) > top:
        lines.append(f"... {len(ranked) - top} more candidate(s)")
    return "\n".join(lines)
