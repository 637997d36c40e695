"""The agentic flow: prompts -> agent rollout workers (tools on tool workers) -> reward
worker -> actor -> weight sync.

One training step::

    driver --prompts--> rollout ranks <--calls / observations--> tool workers
    rollout ranks --{batch, transcripts}--> [rollout channel]
    [rollout channel] --> reward worker (task scorer) --{+ rewards}--> [scored channel]
    [scored channel] --> actor (log-probs, advantages, update; tool output masked) --> v+1
    actor --WeightSnapshot (object store)--> every rollout rank (checks v+1)

Each rollout rank runs many trajectories at once: a trajectory waiting on a tool never holds
back the others (``multi_turn_generate``), and the tool workers run calls on several threads
(``tools.max_concurrency``). The same code runs collocated or disaggregated; only the
placement in the config differs.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Sequence
from typing import Any

from rlinf.channel import Channel
from rlinf.core import Cluster, WorkerGroup, best_effort, sync_weights
from rlinf.envs.agentic import ToolAgentEnv, ToolWorker
from rlinf.models.llm import AgentRolloutWorker, LLMActorWorker, RewardWorker

from ._config import COMPONENTS, AgenticConfig
from ._task import TaskData, TaskRow

__all__ = ["AgenticFlow", "split_evenly"]


def split_evenly(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """``items`` in ``parts`` contiguous pieces whose sizes differ by at most one."""
    q, r = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        size = q + (1 if i < r else 0)
        out.append(list(items[start : start + size]))
        start += size
    return out


class AgenticFlow:
    """Starts the cluster and the actor / rollout / reward / tool groups, then runs steps.

    Args:
        cfg: a validated :class:`AgenticConfig`.
        task: the run's task (rows and picklable tool / scorer factories).
        model_path: HF directory the policy starts from (the SFT output, or a checkpoint's
            model when resuming).
        ref_path: HF directory of the KL reference (the policy before RL).
        total_updates: updates of the whole run (learning-rate schedule).
    """

    def __init__(
        self,
        cfg: AgenticConfig,
        task: TaskData,
        model_path: str,
        ref_path: str,
        total_updates: int,
    ) -> None:
        self.cfg = cfg
        self.cluster = Cluster(cfg.cluster.cluster_config())
        try:
            self._start(task, model_path, ref_path, total_updates)
        except BaseException:
            self.shutdown()
            raise

    def _start(self, task: TaskData, model_path: str, ref_path: str, total_updates: int) -> None:
        cfg, r = self.cfg, self.cfg.runner
        pgs = self.cluster.allocate(dict(cfg.placement), components=COMPONENTS)
        tag = uuid.uuid4().hex[:8]
        common = {"torch_threads": r.torch_threads, "dtype": cfg.model.dtype}
        self.tools: WorkerGroup | None = None
        if cfg.tools.local:
            env_factory = functools.partial(
                ToolAgentEnv,
                task.call_format,
                tools_factory=task.tools_factory,
                max_threads=cfg.tools.max_concurrency,
            )
        else:
            # Threads per worker: many trajectories' calls run at once.
            self.tools = self.cluster.launch(
                ToolWorker,
                pgs,
                "tools",
                name=f"agentic-tools-{tag}",
                args=(task.tools_factory,),
                max_concurrency=cfg.tools.max_concurrency,
            )
            # Built here, where the group is known (errors then name it); the env pickles
            # with its workers' handles and is unpickled in each rollout worker.
            env = ToolAgentEnv(task.call_format, workers=self.tools)
            env_factory = functools.partial(_identity, env)
        self.actor = self.cluster.launch(
            LLMActorWorker,
            pgs,
            "actor",
            name=f"agentic-actor-{tag}",
            args=(model_path, cfg.algo),
            kwargs={"total_updates": total_updates, "ref_path": ref_path, "seed": r.seed, **common},
        )
        self.rollout = self.cluster.launch(
            AgentRolloutWorker,
            pgs,
            "rollout",
            name=f"agentic-rollout-{tag}",
            args=(model_path, cfg.generation, cfg.multi_turn, env_factory),
            kwargs={"seed": r.seed, **common},
        )
        self.reward = self.cluster.launch(
            RewardWorker,
            pgs,
            "reward",
            name=f"agentic-reward-{tag}",
            args=(task.scorer_factory,),
        )
        self.mode = pgs.placement.mode
        self.rollout_channel = Channel.create(f"agentic-rollout-{tag}")
        self.scored_channel = Channel.create(f"agentic-scored-{tag}")

    def _wait(self, future: Any) -> list[Any]:
        return future.wait(self.cfg.runner.timeout_s)

    def call_actor(self, method: str, *args: Any) -> Any:
        """Call an actor method and return its result."""
        return self._wait(self.actor.call(method, *args))[0]

    def sync_weights(self) -> int:
        """Push the actor's weights to every rollout rank; returns the version loaded."""
        return sync_weights(self.actor, self.rollout, self.cfg.runner.timeout_s)

    def step(self, rows: Sequence[TaskRow], version: int) -> dict[str, float]:
        """One update on ``rows`` with trajectories from weights ``version``; then a sync.

        Returns ``rollout/*`` (reward, accuracy, turns, tool calls, ...), ``train/*``,
        ``time/*`` (``generate``, ``tool_wait``, ``reward``, ``weight_sync``, ``step``) and
        ``throughput/tokens_per_s`` (model-generated plus trained tokens per second).
        """
        r = self.cfg.runner
        start = time.perf_counter()
        shards = split_evenly(rows, self.rollout.world_size)
        offsets = [sum(len(s) for s in shards[:i]) for i in range(len(shards))]
        live = [i for i, s in enumerate(shards) if s]
        rollout = self.rollout.call_per_rank(
            "rollout",
            [
                (
                    [row.prompt for row in shards[i]],
                    [None] * len(shards[i]),
                    [row.answer for row in shards[i]],
                    self.rollout_channel,
                    offsets[i],
                )
                for i in live
            ],
            ranks=live,
            version=version,
            channel_timeout=r.timeout_s,
        )
        per_reward = split_evenly(live, self.reward.world_size)
        reward = self.reward.call_per_rank(
            "serve",
            [(self.rollout_channel, self.scored_channel, len(p)) for p in per_reward],
            channel_timeout=r.timeout_s,
        )
        actor = self.actor.call(
            "update_from_channel", self.scored_channel, len(live), channel_timeout=r.timeout_s
        )
        # Wait on all three, actor last: an error in any group surfaces here.
        roll = self._wait(rollout)
        reward_metrics = self._wait(reward)
        metrics = self._wait(actor)[0]
        t_update_done = time.perf_counter()
        self.sync_weights()
        total = time.perf_counter() - start
        metrics.update(_rollout_metrics(reward_metrics))
        rows_per_rank = [len(shards[i]) for i in live]
        weights = [n / sum(rows_per_rank) for n in rows_per_rank]
        for key in ("rollout/turns", "rollout/tool_calls"):
            metrics[key] = sum(w * m[key] for w, m in zip(weights, roll, strict=True))
        generated = sum(m["rollout/generated_tokens"] for m in roll)
        metrics["time/generate"] = max(m["time/generate"] for m in roll)
        metrics["time/tool_wait"] = max(m["time/tool_wait"] for m in roll)
        metrics["time/reward"] = max(m["time/reward"] for m in reward_metrics)
        metrics["time/weight_sync"] = total - (t_update_done - start)
        metrics["time/step"] = total
        metrics["throughput/tokens_per_s"] = (generated + metrics["train/trained_tokens"]) / total
        metrics["throughput/generated_tokens_per_s"] = generated / total
        metrics["rollout/generated_tokens"] = generated
        return metrics

    def evaluate(self, rows: Sequence[TaskRow], version: int) -> dict[str, float]:
        """Greedy accuracy, tool calls and turns per trajectory of weights ``version`` on
        ``rows`` (held-out)."""
        shards = [s for s in split_evenly(rows, self.rollout.world_size) if s]
        outs = self._wait(
            self.rollout.call_per_rank(
                "generate",
                [([row.prompt for row in s], [None] * len(s)) for s in shards],
                ranks=list(range(len(shards))),
                version=version,
                greedy=True,
            )
        )
        responses = [text for out in outs for text in out["responses"]]
        scored = self._wait(
            self.reward.call("score", responses, [row.answer for row in rows], ranks=0)
        )[0]
        statuses = scored["statuses"]
        n = len(statuses)
        calls = sum(float(out["tool_calls"].sum()) for out in outs)
        turns = sum(float(out["turns"].sum()) for out in outs)
        length = sum(float(out["batch"].response_lengths.sum()) for out in outs)
        return {
            "eval/accuracy": float(scored["rewards"].mean()),
            "eval/no_answer_rate": sum(s in ("no_answer", "no_code") for s in statuses) / n,
            "eval/tool_calls": calls / n,
            "eval/turns": turns / n,
            "eval/response_length": length / n,
            "eval/prompts": float(n),
        }

    def shutdown(self) -> None:
        """Stop the scorers, close the channels, kill the workers, stop Ray if ours."""
        reward = getattr(self, "reward", None)
        if isinstance(reward, WorkerGroup):
            best_effort(lambda: reward.call("close").wait(30))
        for name in ("rollout_channel", "scored_channel"):
            ch = getattr(self, name, None)
            if ch is not None:
                best_effort(ch.kill)
        self.cluster.shutdown()


def _identity(env: ToolAgentEnv) -> ToolAgentEnv:
    """``env_factory`` of an env built in the driver."""
    return env


def _rollout_metrics(parts: Sequence[dict[str, float]]) -> dict[str, float]:
    """Merge the reward ranks' sums into ``rollout/*`` means and rates."""
    total: dict[str, float] = {}
    for p in parts:
        for k, v in p.items():
            if k.startswith("sum/"):
                total[k] = total.get(k, 0.0) + v
    n = total.get("sum/responses", 0.0)
    if not n:
        return {}
    correct = total.get("sum/status_correct", 0.0) + total.get("sum/status_passed", 0.0)
    no_answer = total.get("sum/status_no_answer", 0.0) + total.get("sum/status_no_code", 0.0)
    return {
        "rollout/reward_mean": total["sum/reward"] / n,
        "rollout/accuracy": correct / n,
        "rollout/response_length": total["sum/response_length"] / n,
        "rollout/truncation_rate": total["sum/truncated"] / n,
        "rollout/no_answer_rate": no_answer / n,
        "rollout/responses": n,
    }
