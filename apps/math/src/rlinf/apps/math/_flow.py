"""The math flow: prompts -> rollout workers -> reward worker -> actor -> weight sync.

One training step::

    driver --prompts--> rollout ranks --{batch, responses}--> [rollout channel]
    [rollout channel] --> reward worker (checker) --{+ rewards}--> [scored channel]
    [scored channel] --> actor (log-probs, ref KL, advantages, update) --> weights v+1
    actor --WeightSnapshot (object store)--> every rollout rank (checks v+1)

All three groups are started at once and stream through the channels, so on disjoint
devices (disaggregated) the reward worker scores one rank's responses while another still
generates; on shared devices (collocated) rollout and actor take turns through the device
lock. The code is the same; only the placement in the config differs.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Sequence
from typing import Any

from rlinf.channel import Channel
from rlinf.core import Cluster, WorkerGroup, best_effort, sync_weights
from rlinf.envs.math import MathChecker, MathRow
from rlinf.models.llm import LLMActorWorker, LLMRolloutWorker, RewardWorker

from ._config import COMPONENTS, MathConfig

__all__ = ["MathFlow", "split_evenly"]


def split_evenly(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """``items`` in ``parts`` contiguous pieces whose sizes differ by at most one."""
    q, r = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        size = q + (1 if i < r else 0)
        out.append(list(items[start : start + size]))
        start += size
    return out


class MathFlow:
    """Starts the cluster and the actor / rollout / reward groups, then runs steps.

    Args:
        cfg: a validated :class:`MathConfig`.
        model_path: HF directory the policy starts from (the SFT output, or a checkpoint's
            model when resuming).
        ref_path: HF directory of the KL reference (the policy before RL).
        total_updates: updates of the whole run (learning-rate schedule).
    """

    def __init__(self, cfg: MathConfig, model_path: str, ref_path: str, total_updates: int) -> None:
        self.cfg = cfg
        self.cluster = Cluster(cfg.cluster.cluster_config())
        try:
            self._start(model_path, ref_path, total_updates)
        except BaseException:
            self.shutdown()
            raise

    def _start(self, model_path: str, ref_path: str, total_updates: int) -> None:
        cfg, r = self.cfg, self.cfg.runner
        pgs = self.cluster.allocate(dict(cfg.placement), components=COMPONENTS)
        tag = uuid.uuid4().hex[:8]
        common = {"torch_threads": r.torch_threads, "dtype": cfg.model.dtype}
        self.actor = self.cluster.launch(
            LLMActorWorker,
            pgs,
            "actor",
            name=f"math-actor-{tag}",
            args=(model_path, cfg.algo),
            kwargs={"total_updates": total_updates, "ref_path": ref_path, "seed": r.seed, **common},
        )
        self.rollout = self.cluster.launch(
            LLMRolloutWorker,
            pgs,
            "rollout",
            name=f"math-rollout-{tag}",
            args=(model_path, cfg.generation),
            kwargs={"seed": r.seed, **common},
        )
        self.reward = self.cluster.launch(
            RewardWorker,
            pgs,
            "reward",
            name=f"math-reward-{tag}",
            args=(functools.partial(MathChecker, cfg.checker),),
        )
        self.mode = pgs.placement.mode
        self.rollout_channel = Channel.create(f"math-rollout-{tag}")
        self.scored_channel = Channel.create(f"math-scored-{tag}")

    def _wait(self, future: Any) -> list[Any]:
        return future.wait(self.cfg.runner.timeout_s)

    def call_actor(self, method: str, *args: Any) -> Any:
        """Call an actor method and return its result."""
        return self._wait(self.actor.call(method, *args))[0]

    def sync_weights(self) -> int:
        """Push the actor's weights to every rollout rank; returns the version loaded."""
        return sync_weights(self.actor, self.rollout, self.cfg.runner.timeout_s)

    def step(self, rows: Sequence[MathRow], version: int) -> dict[str, float]:
        """One update on ``rows`` with rollouts from weights ``version``; then a sync.

        Returns ``rollout/*``, ``train/*``, ``time/*`` and ``throughput/tokens_per_s``
        (generated plus trained tokens per second of the whole step).
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
        # Wait on all three, actor last: an error in any group surfaces here (the others
        # then time out on their channels instead of hanging).
        roll_metrics = self._wait(rollout)
        reward_metrics = self._wait(reward)
        metrics = self._wait(actor)[0]
        t_update_done = time.perf_counter()
        self.sync_weights()
        total = time.perf_counter() - start
        metrics.update(_rollout_metrics(reward_metrics))
        generated = sum(m["rollout/generated_tokens"] for m in roll_metrics)
        metrics["time/generate"] = max(m["time/generate"] for m in roll_metrics)
        metrics["time/reward"] = max(m["time/reward"] for m in reward_metrics)
        metrics["time/weight_sync"] = total - (t_update_done - start)
        metrics["time/step"] = total
        metrics["throughput/tokens_per_s"] = (generated + metrics["train/trained_tokens"]) / total
        metrics["throughput/generated_tokens_per_s"] = generated / total
        metrics["rollout/generated_tokens"] = generated
        return metrics

    def evaluate(self, rows: Sequence[MathRow], version: int) -> dict[str, float]:
        """Greedy accuracy of weights ``version`` on ``rows`` (held-out)."""
        shards = [s for s in split_evenly(rows, self.rollout.world_size) if s]
        ranks = list(range(len(shards)))
        outs = self._wait(
            self.rollout.call_per_rank(
                "generate",
                [([row.prompt for row in s],) for s in shards],
                ranks=ranks,
                version=version,
                greedy=True,
            )
        )
        responses = [text for out in outs for text in out["responses"]]
        scored = self._wait(
            self.reward.call("score", responses, [row.answer for row in rows], ranks=0)
        )[0]
        statuses = scored["statuses"]
        lengths = [float(out["batch"].response_lengths.float().mean()) for out in outs]
        return {
            "eval/accuracy": float(scored["rewards"].mean()),
            "eval/no_answer_rate": statuses.count("no_answer") / len(statuses),
            "eval/response_length": sum(lengths) / len(lengths),
            "eval/prompts": float(len(rows)),
        }

    def shutdown(self) -> None:
        """Stop the checkers, close the channels, kill the workers, stop Ray if ours."""
        reward = getattr(self, "reward", None)
        if isinstance(reward, WorkerGroup):
            best_effort(lambda: reward.call("close").wait(30))
        for name in ("rollout_channel", "scored_channel"):
            ch = getattr(self, name, None)
            if ch is not None:
                best_effort(ch.kill)
        self.cluster.shutdown()


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
    return {
        "rollout/reward_mean": total["sum/reward"] / n,
        "rollout/accuracy": total.get("sum/status_correct", 0.0) / n,
        "rollout/response_length": total["sum/response_length"] / n,
        "rollout/truncation_rate": total["sum/truncated"] / n,
        "rollout/no_answer_rate": total.get("sum/status_no_answer", 0.0) / n,
        "rollout/checker_timeouts": total.get("sum/status_timeout", 0.0),
        "rollout/checker_errors": total.get("sum/status_error", 0.0),
        "rollout/responses": n,
    }
