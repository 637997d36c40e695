"""``rlinf-embodied plan`` and ``placement: auto``: profile the reference run, rank the
placements of the cluster with ``rlinf.sched.search``, keep those the app accepts.

Ray starts only inside :func:`plan` (the reference run).
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
import tempfile
from collections.abc import Sequence
from typing import Any

from rlinf.core import ConfigError, MetricLogger, read_metrics, resolve_torch_threads
from rlinf.models.embodied import OffPolicyConfig
from rlinf.models.planning import (
    Plan,
    describe,
    merge_device_profiles,
    parse_profile_devices,
    reference_iterations,
    timed_medians,
    with_wide_point,
    write_plan_files,
)
from rlinf.models.planning import choose as choose_accepted
from rlinf.sched import (
    FlowProfile,
    RankedPlacement,
    SchedulerSection,
    Topology,
    overlap_slowdown_from,
    predict,
)

from ._config import EmbodiedConfig, check_run, reference_config
from ._plan_profile import (
    MemoryFacts,
    PlanFacts,
    micro_batch_options,
    node_memory_bytes,
    peak_rss_bytes,
    profile_from_metrics,
)

__all__ = [
    "Plan",
    "apply_plan",
    "auto_profile_devices",
    "choose",
    "describe",
    "overlap_reference",
    "plan",
    "plan_block",
    "plan_facts",
    "reference_iterations",
    "wants_wide",
    "wide_threads",
    "with_overlap_slowdown",
    "with_wide_point",
    "write_plan_files",
]


def plan_facts(cfg: EmbodiedConfig, memory: MemoryFacts) -> PlanFacts:
    """Micro-batch options (pipeline stages the env count allows) and whether the update
    may overlap (its loss can be decoupled) of an on-policy config."""
    if isinstance(cfg.algo, OffPolicyConfig):
        raise ConfigError(
            f"plan: algo.name={cfg.algo.name} is off-policy; plan profiles PPO / GRPO"
        )
    try:
        dataclasses.replace(cfg.algo, decoupled=True)
        overlap = True
    except ValueError:
        overlap = False
    return PlanFacts(micro_batch_options(cfg.env.num_envs), overlap, memory)


def wide_threads(cfg: EmbodiedConfig) -> int:
    """Intra-op threads of a process with two slots' compute: twice the run's own."""
    return 2 * resolve_torch_threads(cfg.runner, cfg.cluster)


def plan_block(candidate: RankedPlacement, cfg: EmbodiedConfig | None = None) -> dict[str, Any]:
    """The config block of a candidate: ``placement``, ``runner.pipeline_stages`` /
    ``runner.overlap_update``, ``runner.torch_threads`` for a wide candidate (needs
    ``cfg``) and ``scheduler.dynamic`` (true for a lending candidate)."""
    runner: dict[str, Any] = {
        "pipeline_stages": candidate.micro_batches,
        "overlap_update": candidate.overlap_update,
    }
    if candidate.wide:
        if cfg is None:
            raise ValueError("a wide candidate's block needs the config (its thread count)")
        runner["torch_threads"] = wide_threads(cfg)
    return {
        "placement": dict(candidate.specs),
        "runner": runner,
        "scheduler": {"dynamic": candidate.lending},
    }


def apply_plan(cfg: EmbodiedConfig, candidate: RankedPlacement) -> EmbodiedConfig:
    """``cfg`` with the candidate's placement, pipeline stages, overlap, lending
    (``scheduler.dynamic``) and, for a wide candidate, twice the threads."""
    runner = dataclasses.replace(
        cfg.runner,
        pipeline_stages=candidate.micro_batches,
        overlap_update=candidate.overlap_update,
        torch_threads=wide_threads(cfg) if candidate.wide else cfg.runner.torch_threads,
    )
    scheduler = SchedulerSection(dynamic=candidate.lending)
    return dataclasses.replace(
        cfg, placement=dict(candidate.specs), runner=runner, scheduler=scheduler
    )


def _rejection(cfg: EmbodiedConfig, candidate: RankedPlacement, topology: Topology) -> str | None:
    try:
        planned = apply_plan(cfg, candidate)
        placement = check_run(planned, topology)
    except (ConfigError, ValueError) as e:
        return str(e)
    # The flow connects each (env worker, stage) to one rollout rank: more rollout ranks
    # than that would idle, while the cost model counts them as data parallel.
    links = placement["env"].world_size * planned.runner.pipeline_stages
    if not planned.runner.policy_in_env and placement["rollout"].world_size > links:
        return (
            f"placement.rollout: {placement['rollout'].world_size} rollout ranks for "
            f"{links} env worker stage(s) (the extra ranks would idle)"
        )
    return None


def choose(
    cfg: EmbodiedConfig, profile: FlowProfile, topology: Topology
) -> tuple[tuple[RankedPlacement, ...], dict[str, int], dict[str, str]]:
    """:func:`rlinf.models.planning.choose` with the app's own checks
    (:func:`~rlinf.apps.embodied._config.check_run` and the rollout-rank rule)."""
    return choose_accepted(profile, topology, lambda c: _rejection(cfg, c, topology))


def _measure_memory(flow: Any) -> MemoryFacts:
    # Peak resident memory is readable only for this machine's processes on CPU slots; GPU
    # memory would need each worker's own allocator statistics.
    if flow.cluster.topology.device_type != "cpu":
        return MemoryFacts({}, 1, "not checked: device memory of GPU workers is not measured yet")
    if flow.rollout is None:
        return MemoryFacts(
            {}, 1, "not checked: with runner.policy_in_env the rollout shares the env processes"
        )
    import ray

    here = ray.get_runtime_context().get_node_id()
    timeout = flow.config.runner.timeout_s
    measured: dict[str, int] = {}
    for name, group in (("env", flow.env), ("rollout", flow.rollout), ("actor", flow.actor)):
        peaks = []
        for info in group.call("process_info").wait(timeout):
            peak = peak_rss_bytes(info["pid"]) if info["node_id"] == here else None
            if peak is None:
                return MemoryFacts({}, 1, f"not checked: {name}'s process is not readable here")
            peaks.append(peak)
        measured[name] = max(peaks)
    note = "measured: peak resident memory per process; device capacity: this node's RAM"
    return MemoryFacts(measured, node_memory_bytes(), note)


def wants_wide(cfg: EmbodiedConfig) -> bool:
    """Whether ``plan`` measures the wide point (every component on slot 0 with twice the
    threads): CPU slots, two or more on the first node (a thread needs a core of the same
    host), and an on-policy algorithm (lending is built for it)."""
    topology = cfg.cluster.topology()
    return (
        topology.device_type == "cpu"
        and topology.nodes[0].num_devices >= 2
        and not isinstance(cfg.algo, OffPolicyConfig)
    )


OVERLAP_REFERENCE = {"env": "0", "rollout": "0", "actor": "1"}
"""Where the overlapped reference run puts the components (2 slots of one host)."""


def overlap_reference(cfg: EmbodiedConfig, iterations: int) -> EmbodiedConfig:
    """The reference run that measures ``overlap_slowdown``: env + rollout on slot 0, the
    actor on slot 1, the update overlapping the next rollout, one stage."""
    ref = reference_config(cfg, iterations, 1)
    runner = dataclasses.replace(ref.runner, overlap_update=True)
    return dataclasses.replace(ref, placement=dict(OVERLAP_REFERENCE), runner=runner)


def with_overlap_slowdown(profile: FlowProfile, rows: Sequence[dict[str, float]]) -> FlowProfile:
    """``profile`` with ``overlap_slowdown`` from the overlapped reference run's rows
    (median ``time/iteration`` after the first) against the profile's own chain, update
    and sync for that placement (:func:`rlinf.sched.overlap_slowdown_from`)."""
    measured = timed_medians(rows, ("time/iteration",), "iteration")["time/iteration"]
    devices = {n: (int(d),) for n, d in OVERLAP_REFERENCE.items()}
    alone = predict(profile, devices)  # chain, then update, each as measured alone
    f = overlap_slowdown_from(measured, alone.chain_s, alone.update_s, alone.sync_s)
    return dataclasses.replace(profile, overlap_slowdown=f)


def _accepts(cfg: EmbodiedConfig, iterations: int, topology: Topology) -> bool:
    # The overlapped reference is an extra measurement: a config that cannot run it (e.g.
    # one slot) plans without it (overlap_slowdown stays 1) rather than failing.
    try:
        check_run(overlap_reference(cfg, iterations), topology)
    except (ConfigError, ValueError):
        return False
    return True


def _run_reference(
    cfg: EmbodiedConfig,
    iterations: int,
    devices: int = 1,
    threads: int | None = None,
    overlapped: bool = False,
) -> tuple[list[dict[str, float]], MemoryFacts]:
    from ._flow import build_flow

    ref = (
        overlap_reference(cfg, iterations)
        if overlapped
        else reference_config(cfg, iterations, devices)
    )
    if threads is not None:
        ref = dataclasses.replace(
            ref, runner=dataclasses.replace(ref.runner, torch_threads=threads)
        )
    # Measured on Ray even on one slot: every candidate of more than one slot runs there,
    # and the cost model combines these per-process figures (a one-slot run trained
    # in-process is then somewhat faster than predicted).
    ref = dataclasses.replace(ref, cluster=dataclasses.replace(ref.cluster, backend="ray"))
    with tempfile.TemporaryDirectory(prefix="rlinf-plan-") as tmp:
        flow = build_flow(ref)
        logger = MetricLogger(tmp, backends=("jsonl",))
        try:
            version, env_steps = flow.sync_weights(), 0
            for i in range(iterations):
                metrics, steps = flow.iteration(version, last=i + 1 == iterations)
                version, env_steps = version + 1, env_steps + steps
                logger.log(metrics, env_steps)
            memory = _measure_memory(flow)
        finally:
            logger.close()
            flow.shutdown()
        return read_metrics(tmp), memory


def auto_profile_devices(cfg: EmbodiedConfig) -> tuple[int, ...]:
    """Device counts ``placement: auto`` profiles at: ``(1, 2)`` when the cluster has two
    devices and the app accepts the two-device reference (scaling then comes from
    measurement), else ``(1,)``."""
    topology = cfg.cluster.topology()
    if topology.num_devices < 2:
        return (1,)
    try:
        check_run(reference_config(cfg, 2, 2), topology)
    except (ConfigError, ValueError):
        return (1,)
    return (1, 2)


def plan(
    cfg: EmbodiedConfig,
    iterations: int = 4,
    profile_devices: Sequence[int] = (1,),
    wide: bool | None = None,
) -> Plan:
    """Profile ``cfg`` at its reference point for ``iterations`` iterations (a temporary
    run directory, removed after), for each device count of ``profile_devices`` (every
    component on devices ``0..d-1``; several counts give measured data-parallel scaling,
    merged by :func:`rlinf.models.planning.merge_device_profiles`), then rank the
    placements of ``cfg.cluster``'s topology.

    With ``wide`` (None: :func:`wants_wide`), one more reference run on slot 0 with twice
    the threads gives every component's ``wide_seconds``: the search then also ranks the
    lending candidates (``scheduler.dynamic``, priced by the actor's measured thread
    speed-up) and the static wide one (``runner.torch_threads`` doubled, all on slot 0);
    when the update may overlap, one more (:func:`overlap_reference`) measures the
    profile's ``overlap_slowdown`` (slots of one host slowing each other).

    Raises:
        ConfigError: an off-policy config, fewer than 2 iterations, a reference the app
            refuses, or no accepted candidate.
    """
    reference_iterations(iterations)
    plan_facts(cfg, MemoryFacts({}, 1, ""))  # fail on an off-policy config before Ray
    topology = cfg.cluster.topology()
    counts = parse_profile_devices(list(profile_devices), topology.num_devices)
    for d in counts[1:]:  # every reference is checked before the first one runs
        try:
            check_run(reference_config(cfg, iterations, d), topology)
        except (ConfigError, ValueError) as e:
            raise ConfigError(f"plan: the reference run on {d} device(s) is refused: {e}") from None
    profiles = {}
    for d in counts:
        rows, memory = _run_reference(cfg, iterations, d)
        if d == 1:  # memory and the flow facts come from the one-device reference
            facts = plan_facts(cfg, memory)
            reference_s = float(statistics.median(r["time/iteration"] for r in rows[1:]))
        profiles[d] = profile_from_metrics(rows, facts, devices=d)
    profile = merge_device_profiles(profiles)
    host = wants_wide(cfg) if wide is None else wide
    if host:
        rows, _ = _run_reference(cfg, iterations, 1, threads=wide_threads(cfg))
        profile = with_wide_point(profile, profile_from_metrics(rows, facts, devices=1))
    measure_overlap = host and profile.overlap_update and _accepts(cfg, iterations, topology)
    if measure_overlap:
        # Two slots of one host share its cores: measure how much the overlapped update
        # and rollout slow each other instead of assuming independent devices.
        rows, _ = _run_reference(cfg, iterations, overlapped=True)
        profile = with_overlap_slowdown(profile, rows)
    ranked, dropped, examples = choose(cfg, profile, topology)
    label = "all on device 0, 1 stage, no overlap"
    if len(counts) > 1:
        label += "; scaling measured at " + ", ".join(map(str, counts)) + " device(s)"
    if profile[profile.update].wide_seconds is not None:
        label += f"; wide point at {wide_threads(cfg)} threads on device 0"
    if measure_overlap:
        label += (
            f"; overlap slowdown x{profile.overlap_slowdown:.2f} measured (env+rollout 0 | actor 1)"
        )
    return Plan(
        profile,
        ranked,
        dropped,
        examples,
        facts.memory.note,
        reference_s,
        block_of=functools.partial(plan_block, cfg=cfg),
        reference_label=label,
    )
