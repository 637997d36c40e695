"""The cost model: predicted seconds per iteration of a flow under one placement."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from ._placement import Placement
from ._profile import FlowProfile, ProfileError
from ._scaling import ScalingFit, fit_scaling
from ._topology import PlacementError

__all__ = [
    "PlacementLayout",
    "Prediction",
    "Stage",
    "analyze",
    "evaluate",
    "format_devices",
    "overlap_slowdown_from",
    "predict",
    "predict_placement",
]


@dataclass(frozen=True)
class Stage:
    """Chain components that share devices, hence take turns: one pipeline stage.

    Attributes:
        names: The chain components of the stage, in data order.
        devices: Sorted devices of the stage's device group (update included).
        seconds: Seconds the stage spends on one micro-batch.
    """

    names: tuple[str, ...]
    devices: tuple[int, ...]
    seconds: float


@dataclass(frozen=True)
class Prediction:
    """Predicted cost of one iteration.

    Attributes:
        seconds: Seconds per iteration in steady state; ``inf`` when infeasible.
        feasible: False when the placement cannot run (memory, max_devices).
        reason: What bounds the time (or why infeasible), one line for a table.
        stages: The chain's pipeline stages in data order.
        chain_s: Seconds of the chain (rollout phase) per iteration.
        update_s: Seconds of the update.
        sync_s: Seconds of the weight sync.
        micro_batches: Micro-batches per iteration the prediction assumes.
        overlap_update: Whether it assumes the update overlaps the next chain.
    """

    seconds: float
    feasible: bool
    reason: str
    stages: tuple[Stage, ...]
    chain_s: float
    update_s: float
    sync_s: float
    micro_batches: int
    overlap_update: bool


def format_devices(devices: Collection[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2,5,7-8"`` (a spec ``rlinf.sched`` parses back)."""
    out: list[str] = []
    ds = sorted(devices)
    i = 0
    while i < len(ds):
        j = i
        while j + 1 < len(ds) and ds[j + 1] == ds[j] + 1:
            j += 1
        out.append(f"{ds[i]}-{ds[j]}" if j > i else str(ds[i]))
        i = j + 1
    return ",".join(out)


def _device_groups(devices: Mapping[str, frozenset[int]]) -> list[set[str]]:
    # Components sharing any device take turns; sharing is transitive through a common one.
    groups: list[tuple[set[str], set[int]]] = []
    for name, devs in devices.items():
        merged_names, merged_devs = {name}, set(devs)
        rest = []
        for names, gdevs in groups:
            if gdevs & merged_devs:
                merged_names |= names
                merged_devs |= gdevs
            else:
                rest.append((names, gdevs))
        groups = [*rest, (merged_names, merged_devs)]
    return [names for names, _ in groups]


def _memory_problem(profile: FlowProfile, devices: Mapping[str, frozenset[int]]) -> str | None:
    # Collocated components take turns: while one runs at its peak, the others hold what they
    # keep between turns. The device must fit the worst of these turns.
    cap = profile.device_memory_bytes
    # Devices with the same users need the same memory: check each user set once, at its
    # lowest device (keeps a 64-device search cheap).
    first: dict[tuple[str, ...], int] = {}
    for d in sorted({d for devs in devices.values() for d in devs}):
        first.setdefault(tuple(n for n, devs in devices.items() if d in devs), d)
    for user_names, d in sorted(first.items(), key=lambda kv: kv[1]):
        users = [profile[n] for n in user_names]
        idle = sum(o.resident_bytes for o in users)
        # Report the worst turn (ties: the larger peak): the one a fix must address.
        need, _, pos = max(
            (c.memory_bytes + idle - c.resident_bytes, c.memory_bytes, -i)
            for i, c in enumerate(users)
        )
        if need > cap:
            c = users[-pos]
            others = "".join(
                f" + {o.name} idle {o.resident_bytes / 2**30:.1f}" for o in users if o is not c
            )
            return (
                f"device {d} out of memory: {c.name} {c.memory_bytes / 2**30:.1f}{others} "
                f"= {need / 2**30:.1f} GiB > {cap / 2**30:.1f} GiB"
            )
    return None


def predict(
    profile: FlowProfile,
    devices: Mapping[str, Collection[int]],
    *,
    micro_batches: int = 1,
    overlap_update: bool = False,
    fits: Mapping[str, ScalingFit] | None = None,
) -> Prediction:
    """Predict seconds per iteration for components placed on the given devices.

    Each component c on D_c devices takes ``t_c = fit_c(D_c)`` (see ``fit_scaling``).
    Components that share a device take turns, so their times add; chain components doing
    so form one stage k, which spends ``s_k = sum_c (t_c / M + overhead_c)`` per micro-batch
    (M = ``micro_batches``). Stages on disjoint devices run as a pipeline::

        chain = sum_k s_k + (M - 1) * max_k s_k      (warm-up, then the slowest stage)

    which is ``sum_c t_c + M * sum_c overhead_c`` when everything is collocated (one stage).
    The update U then trains on the whole iteration and the weights sync (W seconds)::

        no overlap:  T = chain + U + W
        overlap:     T = max(chain, busy) + (f - 1) * min(other, busy) + W,
                     busy = U + sum of t_c + M * overhead_c of the chain components sharing
                     the update's devices (they take turns), other = the same sum over the
                     chain components on other devices (they run beside the update)

    Overlap is the steady state of iteration i's update running alongside iteration i+1's
    chain. ``f = profile.overlap_slowdown`` (measured, >= 1): while both run, each is f
    times slower (devices of one host share its cores), so the part they overlap,
    ``min(other, busy)``, lasts f times longer; f = 1 is independent devices. Example:
    chain 0.5, U 1.0, f 1.4: 1.0 + 0.4 * 0.5 = 1.2 s (+ W). Pipelined stages are not
    slowed (not modelled). A placement is infeasible (``seconds = inf``) when a component gets more than its
    ``max_devices`` or a device cannot hold its collocated components (``_memory_problem``).

    Args:
        profile: The measured profile.
        devices: Component -> the global devices it runs on; exactly the profiled components.
        micro_batches: M, one of ``profile.micro_batches``.
        overlap_update: Whether the update overlaps the next chain (needs the profile's leave).
        fits: Precomputed scaling fits per component (the search passes them); None: fit here.

    Raises:
        PlacementError: a component missing, unknown, or on no devices.
        ProfileError: ``micro_batches`` or ``overlap_update`` the profile does not allow.
    """
    return evaluate(profile, analyze(profile, devices, fits), micro_batches, overlap_update)


@dataclass(frozen=True)
class PlacementLayout:
    """What a placement fixes before micro-batches and overlap are chosen (search reuses it).

    Attributes:
        times: Component -> predicted seconds on its device count.
        stages: Chain stages in data order: (components, devices of their device group).
        update_with: Chain components sharing devices with the update (take turns with it).
        text: The layout for reasons, e.g. ``"env+rollout 0-3 | actor 4-7"``.
        problem: Why the placement cannot run, or None.
    """

    times: Mapping[str, float] = field(hash=False)
    stages: tuple[tuple[tuple[str, ...], tuple[int, ...]], ...]
    update_with: tuple[str, ...]
    text: str
    problem: str | None


def analyze(
    profile: FlowProfile,
    devices: Mapping[str, Collection[int]],
    fits: Mapping[str, ScalingFit] | None = None,
) -> PlacementLayout:
    """The micro-batch independent part of ``predict`` (validation included)."""
    names = set(profile.names)
    unknown = sorted(set(devices) - names)
    missing = sorted(names - set(devices))
    if unknown or missing:
        raise PlacementError(
            f"placement must cover exactly the profiled components {sorted(names)}: "
            f"unknown {unknown}, missing {missing}"
        )
    sets = {n: frozenset(devices[n]) for n in profile.names}
    for n, s in sets.items():
        if not s:
            raise PlacementError(f"component {n!r} is placed on no devices")
    fits = fits or {c.name: fit_scaling(c.seconds, c.floor_s) for c in profile.components}
    times = {n: fits[n].seconds(len(sets[n])) for n in profile.names}
    groups = _device_groups(sets)
    group_of = {n: i for i, g in enumerate(groups) for n in g}
    stages: list[tuple[tuple[str, ...], tuple[int, ...]]] = []
    seen: set[int] = set()
    for n in profile.chain:
        gi = group_of[n]
        if gi not in seen:
            seen.add(gi)
            members = tuple(c for c in profile.chain if group_of[c] == gi)
            stages.append((members, tuple(sorted({d for c in groups[gi] for d in sets[c]}))))
    upd = profile.update
    update_with = tuple(c for c in profile.chain if group_of[c] == group_of[upd])
    text = " | ".join(f"{'+'.join(ns)} {format_devices(ds)}" for ns, ds in stages)
    if update_with:
        text += f" ({upd} with {'+'.join(update_with)})"
    else:
        text += f" | {upd} {format_devices(sets[upd])}"
    problem = None
    for c in profile.components:
        if c.max_devices is not None and len(sets[c.name]) > c.max_devices:
            problem = f"{c.name} on {len(sets[c.name])} devices > max_devices {c.max_devices}"
            break
    problem = problem or _memory_problem(profile, sets)
    return PlacementLayout(times, tuple(stages), update_with, text, problem)


def evaluate(
    profile: FlowProfile, layout: PlacementLayout, micro_batches: int, overlap_update: bool
) -> Prediction:
    """Finish ``predict`` for an analyzed layout (see ``predict`` for the formulas)."""
    if micro_batches not in profile.micro_batches:
        raise ProfileError(
            f"micro_batches={micro_batches} is not one the profile allows {profile.micro_batches}"
        )
    if overlap_update and not profile.overlap_update:
        raise ProfileError("overlap_update=True but the profile does not allow overlapping")
    m = micro_batches
    times = layout.times
    over = {c.name: m * c.overhead_s for c in profile.components}
    stages = tuple(
        Stage(ns, ds, sum((times[c] + over[c]) / m for c in ns)) for ns, ds in layout.stages
    )
    slowest = max(stages, key=lambda s: s.seconds)
    chain = sum(s.seconds for s in stages) + (m - 1) * slowest.seconds
    upd = times[profile.update]
    sync = profile.weight_sync_s
    busy = upd + sum(times[c] + over[c] for c in layout.update_with)
    if len(stages) == 1:
        turns = " take turns" if len(stages[0].names) > 1 else ""
        chain_txt = f"{'+'.join(stages[0].names)}{turns} {chain:.3g} s"
    elif m == 1:
        order = " then ".join("+".join(st.names) for st in stages)
        chain_txt = f"{order}, not pipelined (chain {chain:.3g} s)"
    else:
        chain_txt = (
            f"{m} micro-batch(es) pipelined, bound by {'+'.join(slowest.names)} "
            f"{slowest.seconds:.3g} s each (chain {chain:.3g} s)"
        )
    if overlap_update:
        other = sum(times[c] + over[c] for c in profile.chain if c not in layout.update_with)
        slow = (profile.overlap_slowdown - 1.0) * min(other, busy)
        total = max(chain, busy) + slow + sync
        bound = "chain" if chain >= busy else f"{profile.update}'s devices busy {busy:.3g} s"
        upd_txt = f"update {upd:.3g} s overlapped, bound by {bound}"
        if slow > 0:
            upd_txt += f" + {slow:.3g} s sharing the host (x{profile.overlap_slowdown:.2f})"
    else:
        total = chain + upd + sync
        upd_txt = f"then update {upd:.3g} s"
    reason = f"{layout.text}: {chain_txt}; {upd_txt}; sync {sync:.3g} s"
    if layout.problem is not None:
        total, reason = math.inf, f"{layout.text}: infeasible: {layout.problem}"
    return Prediction(
        total, layout.problem is None, reason, stages, chain, upd, sync, m, overlap_update
    )


def predict_placement(
    profile: FlowProfile,
    placement: Placement,
    *,
    micro_batches: int = 1,
    overlap_update: bool = False,
) -> Prediction:
    """``predict`` for a parsed ``Placement`` (each component on the devices its ranks use)."""
    devices = {name: cp.devices for name, cp in placement.components.items()}
    return predict(profile, devices, micro_batches=micro_batches, overlap_update=overlap_update)


def overlap_slowdown_from(measured_s: float, chain_s: float, busy_s: float, sync_s: float) -> float:
    """The ``overlap_slowdown`` f a measured overlapped iteration implies: ``measured_s``
    seconds per iteration of a run whose chain (``chain_s``) and update side (``busy_s``,
    on other devices of the same host) overlap, with ``sync_s`` of weight sync, both
    measured alone before. Inverts ``T = max + (f - 1) * min + W``; at least 1 (a run
    faster than the model's independent-device bound is noise, not a speed-up)::

        chain 0.5, busy 1.0, sync 0.1, measured 1.3  ->  1 + (1.3 - 0.1 - 1.0) / 0.5 = 1.4

    Raises:
        ValueError: a time that is not positive (``chain_s``, ``busy_s``, ``measured_s``).
    """
    if not (measured_s > 0 and chain_s > 0 and busy_s > 0 and sync_s >= 0):
        raise ValueError(
            f"overlap_slowdown_from needs positive seconds, got measured {measured_s}, "
            f"chain {chain_s}, busy {busy_s}, sync {sync_s}"
        )
    extra = measured_s - sync_s - max(chain_s, busy_s)
    return max(1.0, 1.0 + extra / min(chain_s, busy_s))
