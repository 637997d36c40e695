"""``rlinf-embodied plan`` and ``placement: auto``: profile the reference run, rank the
placements of the cluster with ``rlinf.sched.search``, keep those the app accepts.

Ray starts only inside :func:`plan` (the reference run).
"""

from __future__ import annotations

import dataclasses
import pathlib
import statistics
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from rlinf.core import ConfigError, MetricLogger, read_metrics
from rlinf.models.embodied import OffPolicyConfig
from rlinf.sched import FlowProfile, RankedPlacement, Topology, format_ranking, predict, search

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
    "choose",
    "describe",
    "plan",
    "plan_facts",
    "reference_iterations",
    "write_plan_files",
]


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
            the first iteration).
    """

    profile: FlowProfile
    ranked: tuple[RankedPlacement, ...]
    dropped: Mapping[str, int] = field(hash=False)
    examples: Mapping[str, str] = field(hash=False)
    memory_note: str
    reference_s: float

    @property
    def chosen(self) -> RankedPlacement:
        """The fastest accepted candidate."""
        return self.ranked[0]

    def block(self) -> dict[str, Any]:
        """The config block of the choice: ``placement`` and ``runner.pipeline_stages`` /
        ``runner.overlap_update``."""
        c = self.chosen
        return {
            "placement": dict(c.specs),
            "runner": {"pipeline_stages": c.micro_batches, "overlap_update": c.overlap_update},
        }

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
        """Everything as JSON-ready data (``plan.json`` of a ``placement: auto`` run)."""
        return {
            "profile": self.profile.to_dict(),
            "reference_s_per_iter": self.reference_s,
            "memory": self.memory_note,
            "dropped": {
                k: {"count": v, "example": self.examples[k]} for k, v in self.dropped.items()
            },
            "ranking": [
                {**r.to_config(), "seconds": r.seconds, "reason": r.prediction.reason}
                for r in self.ranked[:top]
            ],
            "table": self.table(top),
            "chosen": self.block(),
        }


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
    """The search's feasible candidates the app accepts (best first, checked with the
    app's own :func:`~rlinf.apps.embodied._config.check_run`), the rejected ones counted by
    cause (the config key the check names), and each cause's first message.

    Raises:
        ConfigError: the app accepts none of them.
    """
    kept: list[RankedPlacement] = []
    dropped: dict[str, int] = {}
    examples: dict[str, str] = {}
    for candidate in search(profile, topology):
        why = _rejection(cfg, candidate, topology)
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
    cfg: EmbodiedConfig, iterations: int
) -> tuple[list[dict[str, float]], MemoryFacts]:
    from ._flow import build_flow

    ref = reference_config(cfg, iterations)
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


def plan(cfg: EmbodiedConfig, iterations: int = 4) -> Plan:
    """Profile ``cfg`` at its reference point for ``iterations`` iterations (a temporary
    run directory, removed after), then rank the placements of ``cfg.cluster``'s topology.

    Raises:
        ConfigError: an off-policy config, fewer than 2 iterations, or no accepted candidate.
    """
    reference_iterations(iterations)
    plan_facts(cfg, MemoryFacts({}, 1, ""))  # fail on an off-policy config before Ray
    topology = cfg.cluster.topology()
    rows, memory = _run_reference(cfg, iterations)
    profile = profile_from_metrics(rows, plan_facts(cfg, memory))
    ranked, dropped, examples = choose(cfg, profile, topology)
    reference_s = float(statistics.median(r["time/iteration"] for r in rows[1:]))
    return Plan(profile, ranked, dropped, examples, memory.note, reference_s)


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
        f"reference (all on device 0, 1 stage, no overlap): measured {p.reference_s:.3f} "
        f"s/iter, predicted {ref.seconds:.3f}",
        f"memory {p.memory_note}",
    ]
