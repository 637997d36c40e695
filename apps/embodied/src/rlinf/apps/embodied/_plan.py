"""``rlinf-embodied plan`` and ``placement: auto``: profile the reference run, rank the
placements of the cluster with ``rlinf.sched.search``, keep those the app accepts.

Ray starts only inside :func:`plan` (the reference run).
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
from collections.abc import Sequence
from typing import Any

from rlinf.core import ConfigError, MetricLogger, read_metrics
from rlinf.models.embodied import OffPolicyConfig
from rlinf.models.planning import (
    Plan,
    describe,
    merge_device_profiles,
    parse_profile_devices,
    reference_iterations,
    write_plan_files,
)
from rlinf.models.planning import choose as choose_accepted
from rlinf.sched import FlowProfile, RankedPlacement, Topology

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
    "plan",
    "plan_block",
    "plan_facts",
    "reference_iterations",
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


def plan_block(candidate: RankedPlacement) -> dict[str, Any]:
    """The config block of a candidate: ``placement`` and ``runner.pipeline_stages`` /
    ``runner.overlap_update``."""
    return {
        "placement": dict(candidate.specs),
        "runner": {
            "pipeline_stages": candidate.micro_batches,
            "overlap_update": candidate.overlap_update,
        },
    }


def apply_plan(cfg: EmbodiedConfig, candidate: RankedPlacement) -> EmbodiedConfig:
    """``cfg`` with the candidate's placement, pipeline stages and overlap."""
    runner = dataclasses.replace(
        cfg.runner,
        pipeline_stages=candidate.micro_batches,
        overlap_update=candidate.overlap_update,
    )
    return dataclasses.replace(cfg, placement=dict(candidate.specs), runner=runner)


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


def _run_reference(
    cfg: EmbodiedConfig, iterations: int, devices: int = 1
) -> tuple[list[dict[str, float]], MemoryFacts]:
    from ._flow import build_flow

    ref = reference_config(cfg, iterations, devices)
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


def plan(cfg: EmbodiedConfig, iterations: int = 4, profile_devices: Sequence[int] = (1,)) -> Plan:
    """Profile ``cfg`` at its reference point for ``iterations`` iterations (a temporary
    run directory, removed after), for each device count of ``profile_devices`` (every
    component on devices ``0..d-1``; several counts give measured data-parallel scaling,
    merged by :func:`rlinf.models.planning.merge_device_profiles`), then rank the
    placements of ``cfg.cluster``'s topology.

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
    ranked, dropped, examples = choose(cfg, profile, topology)
    label = "all on device 0, 1 stage, no overlap"
    if len(counts) > 1:
        label += "; scaling measured at " + ", ".join(map(str, counts)) + " device(s)"
    return Plan(
        profile,
        ranked,
        dropped,
        examples,
        facts.memory.note,
        reference_s,
        block_of=plan_block,
        reference_label=label,
    )
