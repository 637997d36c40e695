"""``rlinf-<llm app> plan`` and ``placement: auto``: profile reference runs of the LLM flow,
rank the placements of the cluster with ``rlinf.sched.search``, keep those the app's own
config checks accept (:mod:`rlinf.models.planning`).

Ray starts only inside :func:`plan_llm` (the reference runs).
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import statistics
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rlinf.core import ConfigError, resolve_torch_threads
from rlinf.sched import FlowProfile, RankedPlacement, Topology

from ..planning import Plan, choose, merge_device_profiles, reference_iterations, with_wide_point
from ._plan_profile import LLM_COMPONENTS, llm_plan_block, llm_profile_from_metrics

__all__ = [
    "apply_llm_plan",
    "auto_profile_devices",
    "check_plannable",
    "llm_choose",
    "plan_llm",
    "reference_llm_config",
    "wants_wide_llm",
    "wide_llm_config",
]


def apply_llm_plan(cfg: Any, candidate: RankedPlacement) -> Any:
    """``cfg`` with the candidate's placement, ``runner.max_staleness``, and (when the
    candidate says so) ``scheduler.dynamic`` / doubled ``runner.torch_threads``.

    Raises:
        ConfigError: a lending candidate for an app without a ``scheduler`` section.
    """
    block = llm_plan_block(candidate, cfg)
    runner = dataclasses.replace(cfg.runner, **block["runner"])
    out = dataclasses.replace(cfg, placement=dict(candidate.specs), runner=runner)
    if "scheduler" in block:
        scheduler = dataclasses.replace(cfg.scheduler, **block["scheduler"])
        out = dataclasses.replace(out, scheduler=scheduler)
    elif candidate.lending:
        raise ConfigError("scheduler.dynamic: this app has no scheduler section (no lending)")
    return out


def wide_llm_config(cfg: Any, steps: int) -> Any:
    """The one-device reference with twice the threads (the wide point)."""
    ref = reference_llm_config(cfg, 1, steps)
    threads = 2 * resolve_torch_threads(cfg.runner, cfg.cluster)
    return dataclasses.replace(ref, runner=dataclasses.replace(ref.runner, torch_threads=threads))


def wants_wide_llm(cfg: Any) -> bool:
    """Whether ``plan_llm`` measures the wide point: CPU slots, 2+ on the first node, and
    an app with a ``scheduler`` section (lending candidates it can run)."""
    topology = cfg.cluster.topology()
    return (
        topology.device_type == "cpu"
        and topology.nodes[0].num_devices >= 2
        and hasattr(cfg, "scheduler")
    )


def reference_llm_config(cfg: Any, devices: int = 1, steps: int | None = None) -> Any:
    """The planner's reference point of ``cfg``: every component on devices ``0 ..
    devices-1``, the synchronous step; with ``steps``, a run of that many updates without
    progress bar or checkpoints."""
    spec = "0" if devices == 1 else f"0-{devices - 1}"
    runner = dataclasses.replace(cfg.runner, max_staleness=0)
    if steps is not None:
        runner = dataclasses.replace(runner, steps=steps, progress=False, checkpoint_every=0)
    return dataclasses.replace(cfg, placement=dict.fromkeys(LLM_COMPONENTS, spec), runner=runner)


def check_plannable(cfg: Any) -> None:
    """Refuse, before Ray, a config whose flow has components the planner does not model
    (e.g. the agentic app's ``tools`` group).

    Raises:
        ConfigError: naming ``placement`` and the extra components.
    """
    if isinstance(cfg.placement, Mapping):
        extra = sorted(set(cfg.placement) - set(LLM_COMPONENTS))
        if extra:
            raise ConfigError(
                f"placement: plan models {list(LLM_COMPONENTS)}; this flow also places "
                f"{extra}, which the planner does not profile yet"
            )


def auto_profile_devices(cfg: Any, check: Callable[[Any], object]) -> tuple[int, ...]:
    """Device counts ``placement: auto`` profiles at: ``(1, 2)`` when the cluster has two
    devices and the app accepts the two-device reference (scaling then comes from
    measurement: on shared CPU cores 2 ranks can be slower than 1), else ``(1,)``."""
    if cfg.cluster.topology().num_devices < 2:
        return (1,)
    try:
        check(reference_llm_config(cfg, 2))
    except (ConfigError, ValueError):
        return (1,)
    return (1, 2)


def _rejection(cfg: Any, candidate: RankedPlacement, check: Callable[[Any], object]) -> str | None:
    if candidate.lending and candidate.overlap_update:
        # StepLending lends only to an update that runs after its step's rollouts; with
        # one step of staleness the next rollout runs beside it and keeps the slots.
        return (
            "scheduler.dynamic: lending beside an overlapped update (runner.max_staleness=1) "
            "is not built in the LLM flow"
        )
    try:
        check(apply_llm_plan(cfg, candidate))
    except (ConfigError, ValueError) as e:
        return str(e)
    return None


def llm_choose(
    cfg: Any, profile: FlowProfile, topology: Topology, check: Callable[[Any], object]
) -> tuple[tuple[RankedPlacement, ...], dict[str, int], dict[str, str]]:
    """:func:`rlinf.models.planning.choose` keeping the candidates whose config
    (:func:`apply_llm_plan`) ``check`` accepts."""
    return choose(profile, topology, lambda c: _rejection(cfg, c, check))


def _overlap_allowed(cfg: Any, check: Callable[[Any], object]) -> bool:
    # One step of staleness must be a config the app accepts (its algorithm may refuse it).
    try:
        check(dataclasses.replace(cfg, runner=dataclasses.replace(cfg.runner, max_staleness=1)))
    except (ConfigError, ValueError):
        return False
    return True


def _run_reference(app: Any, cfg: Any, iterations: int) -> list[dict[str, float]]:
    from ._pipeline import AsyncStepPipeline
    from ._rl_loop import prepare_initial_model

    data = app.prepare(cfg)
    with tempfile.TemporaryDirectory(prefix="rlinf-plan-") as tmp:
        model = prepare_initial_model(
            cfg.model, cfg.sft, pathlib.Path(tmp), lambda: app.sft_examples(cfg, data)
        )
        prompts = app.prompts(cfg, data)
        flow = app.make_flow(cfg, data, model, model)
        try:
            version = flow.sync_weights()
            pipeline = AsyncStepPipeline(
                flow,
                max_staleness=0,
                version=version,
                first_step=0,
                total_steps=iterations,
                draw=lambda: prompts.next_batch(cfg.runner.prompts_per_step),
            )
            return [pipeline.step() for _ in range(iterations)]
        finally:
            flow.shutdown()


def plan_llm(
    app: Any,
    cfg: Any,
    check: Callable[[Any], object],
    iterations: int = 4,
    profile_devices: Sequence[int] = (1,),
) -> Plan:
    """Profile ``cfg`` (reference runs of ``iterations`` steps with every component on
    ``d`` devices, for each ``d`` of ``profile_devices``), then rank the placements of
    ``cfg.cluster``'s topology that ``check`` (the app's config validation) accepts.

    Args:
        app: the :class:`~rlinf.models.llm.LLMApp` (its data, SFT warm-up, prompts, flow).
        cfg: a config whose placement is planned (``placement: auto`` or any mapping).
        check: the app's validation of a full config; raises ``ConfigError`` naming the key.
        iterations: steps per reference run (>= 2, the first is warm-up).
        profile_devices: device counts to profile at, including 1 (several give measured
            data-parallel scaling; one assumes perfect scaling).

    Raises:
        ConfigError: fewer than 2 iterations, components the planner does not model, a
            reference the app refuses, or no accepted candidate.
    """
    reference_iterations(iterations)
    check_plannable(cfg)
    topology = cfg.cluster.topology()
    counts = tuple(sorted(set(profile_devices)))
    if not counts or counts[0] != 1 or counts[-1] > topology.num_devices:
        raise ConfigError(
            f"profile devices must include 1 and stay within the cluster's "
            f"{topology.num_devices} device(s), got {list(profile_devices)}"
        )
    overlap = _overlap_allowed(reference_llm_config(cfg), check)
    refs = {d: reference_llm_config(cfg, d, iterations) for d in counts}
    for d, ref in refs.items():  # every reference is checked before the first one runs
        try:
            check(ref)
        except (ConfigError, ValueError) as e:
            raise ConfigError(f"plan: the reference run on {d} device(s) is refused: {e}") from None
    profiles = {}
    reference_s = 0.0
    for d, ref in refs.items():
        rows = _run_reference(app, ref, iterations)
        profiles[d] = llm_profile_from_metrics(rows, d, overlap_update=overlap)
        if d == 1:
            reference_s = float(statistics.median(r["time/step"] for r in rows[1:]))
    profile = merge_device_profiles(profiles)
    label = "all on device 0, synchronous step; scaling measured at "
    label += ", ".join(f"{d}" for d in counts) + " device(s)"
    if wants_wide_llm(cfg):
        wide = wide_llm_config(cfg, iterations)
        rows = _run_reference(app, wide, iterations)
        profile = with_wide_point(
            profile, llm_profile_from_metrics(rows, 1, overlap_update=overlap)
        )
        label += f"; wide point at {wide.runner.torch_threads} threads on device 0"
    ranked, dropped, examples = choose(profile, topology, lambda c: _rejection(cfg, c, check))
    return Plan(
        profile,
        ranked,
        dropped,
        examples,
        "not checked: LLM workers' memory is not measured yet",
        reference_s,
        block_of=functools.partial(llm_plan_block, cfg=cfg),
        reference_label=label,
    )
