"""LLMRLFlow: the one LLM RL flow, rollout -> channel -> reward -> channel -> actor -> sync.

One training step::

    driver --rows--> rollout ranks --{batch, responses, answers}--> [rollout channel]
    [rollout channel] --> reward ranks (scorer) --{+ rewards, statuses}--> [scored channel]
    [scored channel] --> actor rank 0 --joined batch (collective broadcast)--> actor ranks
    actor ranks (log-probs, ref KL, advantages, data-parallel update) --> weights v+1
    actor rank 0 --WeightSnapshot (object store, put by the actor)--> every rollout rank (v+1)
      (runner.weight_sync=collective: bucketed broadcasts; partial rollouts: a channel)

All groups start at once and stream through the channels, so on disjoint devices a reward
rank scores one rollout rank's responses while another still generates; on shared devices
rollout and actor take turns through the device lock. Several actor ranks train
data-parallel (FSDP2, :class:`LLMActorWorker`): the driver calls every actor rank for every
actor method and keeps rank 0's answer (metrics already reduced over the ranks). Apps hand in the rollout
worker class and arguments (:class:`LLMRolloutWorker`, or :class:`AgentRolloutWorker` with a
task per row), the scorer factory and extra groups (e.g. tools). Imports Ray (lazily
exported by :mod:`rlinf.models.llm`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rlinf.channel import Channel
from rlinf.core import (
    Cluster,
    ClusterSection,
    RunnerSection,
    WorkerGroup,
    best_effort,
    resolve_torch_threads,
)
from rlinf.sched import SchedulerSection

from .._weight_sync import choose_weight_sync, stage_weights, sync_weights
from ._flow_eval import evaluate
from ._flow_step import PendingStep, add_throughput, finish_step, start_step
from ._partial import PartialRolloutConfig, partial_weight_sync
from ._rl_merge import split_evenly
from ._rollout_worker import LLMRolloutWorker
from ._route import RolloutRoute
from ._step_lending import StepLending
from ._training_section import LLMTrainingSection
from ._updater_config import LLMUpdaterConfig
from ._workers import LLMActorWorker, RewardWorker

__all__ = ["LLMFlowConfig", "LLMRLFlow", "PromptRow"]


class PromptRow(Protocol):
    """One prompt of a step or an evaluation (e.g. ``rlinf.envs.math.MathRow``)."""

    @property
    def prompt(self) -> str: ...

    @property
    def answer(self) -> Any: ...


@dataclass(frozen=True)
class LLMFlowConfig:
    """Where and how the flow's groups run.

    Attributes:
        name: prefix of group and channel names (``"math"`` -> ``math-actor-<tag>``).
        runner: the app's runner section; ``seed``, ``torch_threads`` and ``timeout_s``
            (longest wait on any group or channel) are used.
        cluster: the Ray cluster to start or join.
        placement: component -> device spec as in ``rlinf.sched``.
        components: every placed component: ``actor``, ``rollout``, ``reward`` and the
            extra groups' (e.g. ``tools``).
        dtype: torch dtype name of the actor's and rollout's weights.
        correct_statuses: scorer statuses counted as correct in ``rollout/accuracy``.
        no_answer_statuses: statuses counted in ``rollout/no_answer_rate`` and
            ``eval/no_answer_rate``.
        partial: partial rollouts (``runner.partial_mode``, off by default): new weights
            reach rollout ranks between decoding steps (:mod:`rlinf.models.llm._partial`).
        scheduler: ``dynamic``: lend the rollout / reward slots to the actor's update once
            a step's rollouts and scores are in (:class:`StepLending`).
    """

    name: str
    runner: RunnerSection
    cluster: ClusterSection
    placement: Mapping[str, str | int]
    components: tuple[str, ...] = ("actor", "rollout", "reward")
    dtype: str = "float32"
    correct_statuses: tuple[str, ...] = ("correct",)
    no_answer_statuses: tuple[str, ...] = ("no_answer",)
    partial: PartialRolloutConfig = field(default_factory=PartialRolloutConfig)
    scheduler: SchedulerSection = field(default_factory=SchedulerSection)

    def __post_init__(self) -> None:
        missing = [c for c in ("actor", "rollout", "reward") if c not in self.components]
        if missing:
            raise ValueError(f"components {self.components} lack {missing}")


class LLMRLFlow:
    """Starts the cluster, the extra groups, then actor / rollout / reward; runs steps.

    Args:
        config: names, placement and limits.
        model_path: HF directory the policy starts from (the SFT output, or a checkpoint's
            model when resuming).
        ref_path: HF directory of the KL reference (the policy before RL).
        algo: the actor's updater config.
        total_updates: updates of the whole run (learning-rate schedule).
        scorer_factory: picklable callable building the reward ranks' scorer.
        rollout_args: the rollout worker's positional arguments after ``model_path``
            (``(generation,)`` for :class:`LLMRolloutWorker`).
        rollout_worker: :class:`LLMRolloutWorker` or a subclass.
        task_of: ``None``: the rollout worker's ``rollout`` / ``generate`` take
            ``(prompts, answers, ...)``; else ``row -> task`` and they take
            ``(prompts, tasks, answers, ...)`` (:class:`AgentRolloutWorker`).
        launch_extra: called with :meth:`launch` before the actor starts; launches extra
            groups (killed with the cluster) and returns positional arguments appended to
            ``rollout_args`` (e.g. an env factory holding the tool workers' handles).
        training: the app's ``training`` section, resolved against the actor's ranks
            (default: one-process ``torch`` on one rank, ``fsdp2`` on several).

    ``runner.weight_sync`` picks how weights reach the rollout ranks (:attr:`weight_sync`,
    ``auto`` resolved by :func:`~rlinf.models.choose_weight_sync`: collective for a
    data-parallel actor or groups on several nodes); on the collective path the actor
    ranks stop gathering the full weights after every update.
    """

    def __init__(
        self,
        config: LLMFlowConfig,
        *,
        model_path: str,
        ref_path: str,
        algo: LLMUpdaterConfig,
        total_updates: int,
        scorer_factory: Callable[[], Any],
        rollout_args: Sequence[Any],
        rollout_worker: type[LLMRolloutWorker] = LLMRolloutWorker,
        task_of: Callable[[Any], Any] | None = None,
        launch_extra: Callable[[Callable[..., WorkerGroup]], Sequence[Any]] | None = None,
        training: LLMTrainingSection | None = None,
    ) -> None:
        self.config = config
        self.task_of = task_of
        self.lending: StepLending | None = None
        self.groups: dict[str, WorkerGroup] = {}
        self._tag = uuid.uuid4().hex[:8]
        # Channels between worker processes: this flow runs on Ray (cluster.backend=inprocess
        # is refused here, before anything starts, rather than ignored).
        backend = config.cluster.choose_backend(
            config.placement,
            config.components,
            unsupported="the LLM flows run on Ray (their channels connect worker processes)",
        )
        self.cluster = Cluster(config.cluster.cluster_config(backend))
        try:
            self._pgs = self.cluster.allocate(dict(config.placement), components=config.components)
            self.mode = self._pgs.placement.mode
            # The default section is left to the actor (torch on one rank, fsdp2 on several):
            # resolving it here would import the training backends into the driver.
            train_cfg = None
            if training is not None and training != LLMTrainingSection():
                train_cfg = training.resolve(self._pgs.placement["actor"].world_size)
            phase_offload = training is not None and training.offload == "phase"
            extra = tuple(launch_extra(self.launch)) if launch_extra is not None else ()
            r = config.runner
            threads = resolve_torch_threads(r, config.cluster)
            common = {"seed": r.seed, "torch_threads": threads, "dtype": config.dtype}
            # The three groups' processes start and import together; then their workers are
            # built together (each loads its model): about one start-up instead of three.
            dynamic = config.scheduler.dynamic
            self.actor = self.spawn(LLMActorWorker, "actor", **StepLending.spawn_options(dynamic))
            self.lending = (
                StepLending(self._pgs.placement, self.actor, r.timeout_s) if dynamic else None
            )
            self.rollout = self.spawn(rollout_worker, "rollout")
            self.reward = self.spawn(RewardWorker, "reward")
            # runner.weight_sync with auto resolved: "object_store" or "collective".
            self.weight_sync = choose_weight_sync(
                partial_weight_sync(config.partial, r.weight_sync, rollout_worker),
                self.actor,
                self.rollout,
                self._pgs.placement.topology.device_type,
            )
            starting = [
                self.actor.start(
                    (model_path, algo),
                    {
                        "total_updates": total_updates,
                        "ref_path": ref_path,
                        "training": train_cfg,
                        # The collective path sends the shards as they are: no gathering
                        # of the full weights after every update.
                        "gather_full_state": self.weight_sync == "object_store",
                        **common,
                    },
                    timeout=r.timeout_s,
                ),
                self.rollout.start(
                    (model_path, *rollout_args, *extra),
                    # Phase offload covers the rollout's HF copy too (off its turns).
                    {**common, "offload_model": True} if phase_offload else common,
                    timeout=r.timeout_s,
                ),
                self.reward.start((scorer_factory,), timeout=r.timeout_s),
            ]
            for future in starting:
                future.wait()
            self.rollout_channel = Channel.create(f"{config.name}-rollout-{self._tag}")
            self.scored_channel = Channel.create(f"{config.name}-scored-{self._tag}")
            self.batch_channel = Channel.create(f"{config.name}-batch-{self._tag}")
            self.weights_channel: Channel | None = None
            if config.partial.enabled:
                self.weights_channel = ch = Channel.create(f"{config.name}-weights-{self._tag}")
                self._wait(self.rollout.call("enable_partial", ch, config.partial))
        except BaseException:
            self.shutdown()
            raise

    def launch(
        self,
        worker_cls: type,
        component: str,
        *,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> WorkerGroup:
        """Launch ``worker_cls`` on ``component``'s devices as ``<name>-<component>-<tag>``
        (``options``: e.g. ``max_concurrency``, see ``WorkerGroup.launch``)."""
        group = self.cluster.launch(
            worker_cls,
            self._pgs,
            component,
            name=f"{self.config.name}-{component}-{self._tag}",
            args=tuple(args),
            kwargs=dict(kwargs or {}),
            **options,
        )
        self.groups[component] = group
        return group

    def spawn(self, worker_cls: type, component: str, **options: Any) -> WorkerGroup:
        """Start ``component``'s processes as ``<name>-<component>-<tag>`` without building
        the workers (``WorkerGroup.start`` does); ``options`` as for :meth:`launch`."""
        group = self.cluster.spawn(
            worker_cls,
            self._pgs,
            component,
            name=f"{self.config.name}-{component}-{self._tag}",
            **options,
        )
        self.groups[component] = group
        return group

    def _wait(self, future: Any) -> list[Any]:
        return future.wait(self.config.runner.timeout_s)

    def call_actor(self, method: str, *args: Any) -> Any:
        """Call an actor method on every actor rank (a data-parallel actor's methods are
        collectives) and return rank 0's result."""
        return self._wait(self.actor.call(method, *args))[0]

    def sync_weights(self) -> int:
        """Push the actor's weights to every rollout rank (:attr:`weight_sync`: rank 0
        puts a snapshot into the object store and each rollout rank fetches it, or every
        actor rank broadcasts its shards in buckets of ``runner.weight_sync_bucket_mb``);
        returns the version now loaded everywhere (partial rollouts: published)."""
        r = self.config.runner
        if self.weights_channel is not None:
            # Publish, do not wait: a load call would queue behind the running rollouts.
            staged = stage_weights(self.actor, r.timeout_s)
            for rank in range(self.rollout.world_size):
                self.weights_channel.put(staged, key=("weights", rank), timeout=r.timeout_s)
            return staged.version
        return sync_weights(
            self.actor, self.rollout, r.timeout_s, self.weight_sync, r.weight_sync_bucket_bytes
        )

    def _texts(self, rows: Sequence[PromptRow]) -> tuple[Any, ...]:
        """The rollout worker's ``generate`` inputs for ``rows``: prompts (and tasks)."""
        prompts = [row.prompt for row in rows]
        if self.task_of is None:
            return (prompts,)
        return (prompts, [self.task_of(row) for row in rows])

    def start_step(
        self, rows: Sequence[PromptRow], version: int, *, tag: int = 0, stream: int = 0
    ) -> PendingStep:
        """Start step ``tag``'s rollouts (weights ``version``, seeds of ``stream``) and their
        scoring without waiting; :meth:`finish_step` trains on them."""
        return start_step(self, rows, version, tag, stream)

    def finish_step(
        self,
        pending: PendingStep,
        *,
        max_staleness: int | None = None,
        ahead: Sequence[PendingStep] = (),
    ) -> dict[str, float]:
        """Wait for ``pending``'s data and make one update on it (no weight sync); an update
        on data more than ``max_staleness`` versions old raises on the actor (``ahead``:
        the steps started after it, which keep lent slots from the update)."""
        return finish_step(self, pending, max_staleness, ahead)

    def step(self, rows: Sequence[PromptRow], version: int) -> dict[str, float]:
        """One update on ``rows`` with rollouts from weights ``version``; then a sync.

        Returns the actor's ``train/*`` plus :func:`merge_step_metrics` of the rollout and
        reward ranks, ``time/weight_sync``, ``time/step`` and ``throughput/*``
        (``tokens_per_s``: generated plus trained tokens per second of the whole step).
        """
        start = time.perf_counter()
        metrics = self.finish_step(self.start_step(rows, version))
        t_update_done = time.perf_counter()
        self.sync_weights()
        total = time.perf_counter() - start
        metrics["time/weight_sync"] = total - (t_update_done - start)
        return add_throughput(metrics, total)

    def _rollout(
        self,
        rows: Sequence[PromptRow],
        route: RolloutRoute,
        version: int,
        *,
        greedy: bool,
        stream: int = 0,
        offset: int = 0,
    ) -> tuple[Any, list[int]]:
        """Start one shard of ``rows`` per rollout rank (ranks without rows sit out), the
        first with id ``offset``; returns the future and the shards' row counts."""
        shards = split_evenly(rows, self.rollout.world_size)
        offsets = [offset + sum(len(s) for s in shards[:i]) for i in range(len(shards))]
        live = [i for i, s in enumerate(shards) if s]
        future = self.rollout.call_per_rank(
            "rollout",
            [
                (self._texts(shards[i]), [row.answer for row in shards[i]], route, offsets[i])
                for i in live
            ],
            ranks=live,
            version=version,
            greedy=greedy,
            stream=stream,
            channel_timeout=self.config.runner.timeout_s,
        )
        return future, [len(shards[i]) for i in live]

    def evaluate(self, rows: Sequence[PromptRow], version: int) -> dict[str, float]:
        """One greedy response per row from weights ``version``, scored by reward rank 0
        (:func:`~rlinf.models.llm._flow_eval.evaluate`: ``eval/*`` metrics)."""
        return evaluate(self, rows, version)

    def shutdown(self) -> None:
        """Stop the scorers, close the channels, kill every group, stop Ray if ours."""
        reward = getattr(self, "reward", None)
        if isinstance(reward, WorkerGroup):
            best_effort(lambda: reward.call("close").wait(30))
        for name in ("rollout_channel", "scored_channel", "batch_channel", "weights_channel"):
            ch = getattr(self, name, None)
            if ch is not None:
                best_effort(ch.kill)
        self.cluster.shutdown()
