"""What every app's ``plan`` command and ``placement: auto`` share, whatever the flow:
the planner's candidates filtered by the app's own checks, the plan record (ranked table,
rejections, chosen config block), profiles measured at several device counts merged into
one, and the plan's files.

The app supplies what is its own: how to profile (a reference run), how to turn a
candidate into its config (``block_of``) and how to check one (``reject``). Ray-free, no
torch: ``rlinf.sched`` (pure) and ``yaml`` only.
"""

from __future__ import annotations

import dataclasses
import pathlib
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from rlinf.core import ConfigError
from rlinf.sched import (
    ComponentProfile,
    FlowProfile,
    ProfileError,
    RankedPlacement,
    Topology,
    format_ranking,
    predict,
    search,
)

__all__ = [
    "Plan",
    "choose",
    "describe",
    "merge_device_profiles",
    "parse_profile_devices",
    "reference_iterations",
    "timed_medians",
    "with_wide_point",
    "write_plan_files",
]

BlockOf = Callable[[RankedPlacement], dict[str, Any]]


def timed_medians(
    rows: Sequence[Mapping[str, float]], keys: Sequence[str], unit: str
) -> dict[str, float]:
    """The median of each of ``keys`` over a reference run's metrics rows after the first
    (which pays for process warm-up and first-touch allocations).

    ``unit`` names a row in errors (``"step"``, ``"iteration"``).

    Raises:
        ValueError: fewer than two rows, or a row without one of ``keys``.
    """
    if len(rows) < 2:
        raise ValueError(
            f"the profile needs at least 2 {unit}s (the first is warm-up), got {len(rows)}"
        )
    timed = rows[1:]
    for i, row in enumerate(timed, 2):
        missing = [k for k in keys if k not in row]
        if missing:
            raise ValueError(f"metrics row of {unit} {i} lacks {missing}")
    return {k: float(statistics.median(row[k] for row in timed)) for k in keys}


@dataclass(frozen=True)
class Plan:
    """A planned placement and how it was found.

    Attributes:
        profile: the measured profile.
        ranked: candidates the app accepts, best first.
        dropped: candidates the search proposed and the app's checks reject, counted by
            cause (the config key its check names) -> count.
        examples: cause -> the first rejection message of that cause.
        memory_note: how memory was measured, or why it is not checked.
        reference_s: measured seconds per iteration of the reference run (median after
            the first iteration), every component on device 0.
        block_of: candidate -> the app's config block (``placement`` and the runner keys
            the candidate fixes).
        reference_label: how the reference run was placed, for :func:`describe`.
    """

    profile: FlowProfile
    ranked: tuple[RankedPlacement, ...]
    dropped: Mapping[str, int] = field(hash=False)
    examples: Mapping[str, str] = field(hash=False)
    memory_note: str
    reference_s: float
    block_of: BlockOf = field(compare=False, hash=False)
    reference_label: str = "all on device 0, 1 stage, no overlap"

    @property
    def chosen(self) -> RankedPlacement:
        """The fastest accepted candidate."""
        return self.ranked[0]

    def block(self) -> dict[str, Any]:
        """The config block of the choice."""
        return self.block_of(self.chosen)

    def block_yaml(self) -> str:
        """:meth:`block` as YAML to paste into a config."""
        return yaml.safe_dump(self.block(), sort_keys=False)

    def table(self, top: int = 10) -> str:
        """The ranked table (``rlinf.sched.format_ranking``)."""
        return format_ranking(self.ranked, top=top)

    def summary(self) -> str:
        """How many candidates the app rejected, and why."""
        n = sum(self.dropped.values())
        if not n:
            return "dropped 0 candidates: the app accepts every one the planner proposed"
        why = "; ".join(
            f"{v} x {self.examples[k]}"
            for k, v in sorted(self.dropped.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        return f"dropped {n} candidate(s) the app rejects: {why}"

    def record(self, top: int = 10) -> dict[str, Any]:
        """Everything as JSON-ready data (``plan.json`` of a ``placement: auto`` run);
        ``ranking`` rows carry each candidate's own config block."""
        return {
            "profile": self.profile.to_dict(),
            "reference_s_per_iter": self.reference_s,
            "memory": self.memory_note,
            "dropped": {
                k: {"count": v, "example": self.examples[k]} for k, v in self.dropped.items()
            },
            "ranking": [
                {
                    **r.to_config(),
                    "block": self.block_of(r),
                    "seconds": r.seconds,
                    "reason": r.prediction.reason,
                }
                for r in self.ranked[:top]
            ],
            "table": self.table(top),
            "chosen": self.block(),
        }


def choose(
    profile: FlowProfile,
    topology: Topology,
    reject: Callable[[RankedPlacement], str | None],
) -> tuple[tuple[RankedPlacement, ...], dict[str, int], dict[str, str]]:
    """The search's feasible candidates the app accepts (best first), the rejected ones
    counted by cause (the text before the first ``:`` of the reason, i.e. the config key
    the app's check names), and each cause's first message.

    Args:
        reject: candidate -> why the app refuses it (its own config checks), or None.

    Raises:
        ConfigError: the app accepts none of them.
    """
    kept: list[RankedPlacement] = []
    dropped: dict[str, int] = {}
    examples: dict[str, str] = {}
    for candidate in search(profile, topology):
        why = reject(candidate)
        if why is None:
            kept.append(candidate)
            continue
        cause = why.split(":")[0]
        dropped[cause] = dropped.get(cause, 0) + 1
        examples.setdefault(cause, why)
    if not kept:
        raise ConfigError(
            f"plan: the app accepts none of the planner's candidates on {topology.describe()}: "
            + "; ".join(examples.values())
        )
    return tuple(kept), dropped, examples


def reference_iterations(iterations: int) -> int:
    """Check an iteration count for the reference run (>= 2: the first is warm-up)."""
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 2:
        raise ConfigError(
            f"--iterations must be an int >= 2 (the first is warm-up), got {iterations}"
        )
    return iterations


def parse_profile_devices(text: str | Sequence[int], num_devices: int) -> tuple[int, ...]:
    """``"1,2"`` -> ``(1, 2)``: the device counts to profile at, sorted, starting at 1
    (the reference everything else is compared with), each at most ``num_devices``.

    Raises:
        ConfigError: naming ``--profile-devices`` and the bad entry.
    """
    if isinstance(text, str):
        try:
            counts = [int(p) for p in text.split(",") if p.strip()]
        except ValueError:
            raise ConfigError(
                f"--profile-devices must be comma-separated device counts like 1,2, got {text!r}"
            ) from None
    else:
        counts = list(text)
    if not counts or 1 not in counts:
        raise ConfigError(f"--profile-devices must include 1 (the reference), got {text!r}")
    for c in counts:
        if isinstance(c, bool) or not isinstance(c, int) or not 1 <= c <= num_devices:
            raise ConfigError(
                f"--profile-devices: {c!r} is not a device count in 1..{num_devices} "
                "(the cluster's devices)"
            )
    return tuple(sorted(set(counts)))


def merge_device_profiles(profiles: Mapping[int, FlowProfile]) -> FlowProfile:
    """One profile whose components carry the seconds measured at every device count.

    ``profiles[d]`` is the profile of a reference run with every component on the same
    ``d`` devices; each component's ``seconds[d]`` is taken from it, so ``fit_scaling``
    fits data-parallel scaling to measurements. A component that was slower on more
    devices (tiny models on shared cores: data-parallel overheads exceed the work) keeps
    the points up to its fastest count and gets ``max_devices`` = that count: the search
    then never gives it more, and its fit is not pulled up by the slower points. Memory,
    overheads, wide points, weight sync and the flow facts come from the one-device
    profile.

    Example: actor ``{1: 0.02, 2: 0.13}`` -> ``seconds {1: 0.02}``, ``max_devices 1``;
    rollout ``{1: 0.10, 2: 0.06}`` -> both points, no cap.

    Raises:
        ValueError: no one-device profile, profiles of different components, or a
            profile without its own device count's point.
    """
    if 1 not in profiles:
        raise ValueError(f"merging needs the one-device profile, got counts {sorted(profiles)}")
    base = profiles[1]
    comps = []
    for c in base.components:
        measured: dict[int, float] = {}
        for d, p in sorted(profiles.items()):
            if p.names != base.names:
                raise ValueError(
                    f"profile at {d} device(s) has components {p.names}, not {base.names}"
                )
            if d not in p[c.name].seconds:
                raise ValueError(f"profile at {d} device(s) has no {d}-device point for {c.name}")
            measured[d] = p[c.name].seconds[d]
        best = min(measured, key=lambda d: (measured[d], d))
        slower = any(d > best for d in measured)
        seconds = {d: t for d, t in measured.items() if d <= best}
        cap = best if slower else c.max_devices
        if c.max_devices is not None and cap is not None:
            cap = min(cap, c.max_devices)
        comps.append(
            ComponentProfile(
                c.name,
                seconds=seconds,
                memory_bytes=c.memory_bytes,
                idle_bytes=c.idle_bytes,
                overhead_s=c.overhead_s,
                max_devices=cap,
                floor_s=c.floor_s,
                wide_seconds=c.wide_seconds,
            )
        )
    return FlowProfile(
        components=tuple(comps),
        update=base.update,
        device_memory_bytes=base.device_memory_bytes,
        weight_sync_s=base.weight_sync_s,
        micro_batches=base.micro_batches,
        overlap_update=base.overlap_update,
        overlap_slowdown=base.overlap_slowdown,
    )


def with_wide_point(profile: FlowProfile, wide: FlowProfile) -> FlowProfile:
    """``profile`` with each component's ``wide_seconds`` = its one-device seconds in
    ``wide`` (a reference run on one device with twice the threads: each process gets a
    second slot's cores; the actor's ratio is the lending speed-up the cost model uses).

    Raises:
        ProfileError: ``wide`` lacks a component or its one-device point.
    """
    comps = []
    for c in profile.components:
        point = wide[c.name].seconds
        if 1 not in point:
            raise ProfileError(f"the wide profile has no 1-device point for {c.name}")
        comps.append(dataclasses.replace(c, wide_seconds=point[1]))
    return dataclasses.replace(profile, components=tuple(comps))


def write_plan_files(p: Plan, out: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """Write the chosen block to ``out`` (YAML) and the profile next to it
    (``<stem>.profile.json``); returns both paths."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(p.block_yaml())
    prof = out.with_name(out.stem + ".profile.json")
    prof.write_text(p.profile.to_json())
    return out, prof


def describe(p: Plan, top: int) -> Sequence[str]:
    """The lines ``plan`` prints before the block."""
    ref = predict(p.profile, dict.fromkeys(p.profile.names, (0,)))
    return [
        p.table(top),
        p.summary(),
        f"reference ({p.reference_label}): measured {p.reference_s:.3f} "
        f"s/iter, predicted {ref.seconds:.3f}",
        f"memory {p.memory_note}",
    ]
