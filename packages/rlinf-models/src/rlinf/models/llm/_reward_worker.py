"""RewardWorker: scores responses with a task scorer built in the worker process."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch

from rlinf.channel import Channel
from rlinf.core import Worker

__all__ = ["RewardWorker", "Scorer"]


class _Result(Protocol):
    score: float
    status: str


class Scorer(Protocol):
    """What a :class:`RewardWorker` scores with (e.g. ``rlinf.envs.math.MathChecker``)."""

    def score(self, responses: Sequence[str], answers: Sequence[str]) -> Sequence[_Result]:
        """One result (with ``.score`` and ``.status``) per response."""
        ...


class RewardWorker(Worker):
    """Scores responses with a scorer built in the worker process.

    Args:
        scorer_factory: picklable callable returning a :class:`Scorer`, e.g.
            ``functools.partial(MathChecker, MathCheckerConfig(...))``; built here so that
            the scorer's own processes live next to this worker, and so rlinf.models needs
            no task-specific import.
    """

    def __init__(self, scorer_factory: Callable[[], Scorer]) -> None:
        super().__init__()
        self.scorer = scorer_factory()

    def score(self, responses: Sequence[str], answers: Sequence[str]) -> dict[str, Any]:
        """``{"rewards": [B] float tensor, "statuses": [str]}`` of the responses."""
        results = self.scorer.score(list(responses), list(answers))
        if len(results) != len(responses):
            raise RuntimeError(
                f"scorer returned {len(results)} results for {len(responses)} responses"
            )
        return {
            "rewards": torch.tensor([float(r.score) for r in results], dtype=torch.float32),
            "statuses": [str(r.status) for r in results],
        }

    def serve(
        self,
        in_channel: Channel,
        out_channel: Channel | None,
        num_items: int,
        *,
        in_key: Any = "rollout",
        out_key: Any = "scored",
        channel_timeout: float = 300.0,
    ) -> dict[str, float]:
        """Score ``num_items`` shards of texts from ``in_channel`` (items of
        :mod:`rlinf.models.llm._route`) and send ``{"shard", "rewards", "statuses"}`` of
        each to ``out_channel`` (``None``: evaluation, nothing is forwarded), in arrival
        order. The texts stay here: only the scores travel on.

        Returns sums for the driver to merge over reward ranks: ``sum/responses``,
        ``sum/reward``, ``sum/response_length``, ``sum/truncated``, ``sum/status_<status>``,
        and ``time/reward`` (seconds spent scoring).
        """
        busy = 0.0
        sums: Counter[str] = Counter()
        for _ in range(num_items):
            item = in_channel.get(key=in_key, timeout=channel_timeout)
            start = time.perf_counter()
            scored = self.score(item["responses"], item["answers"])
            busy += time.perf_counter() - start
            sums["sum/responses"] += len(scored["statuses"])
            sums["sum/reward"] += float(scored["rewards"].sum())
            sums["sum/response_length"] += float(sum(item["response_lengths"]))
            sums["sum/truncated"] += float(sum(item["truncated"]))
            sums.update(f"sum/status_{s}" for s in scored["statuses"])
            if out_channel is not None:
                out_channel.put(
                    {"shard": item["shard"], **scored}, key=out_key, timeout=channel_timeout
                )
        out = {k: float(v) for k, v in sums.items()}
        out["time/reward"] = busy
        return out

    def close(self) -> None:
        """Stop the scorer's processes, if it has any."""
        close = getattr(self.scorer, "close", None)
        if callable(close):
            close()
