"""How the LLM RL flow splits rows over ranks and merges the ranks' step metrics (pure
Python, no Ray)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["merge_step_metrics", "split_evenly"]


def split_evenly(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """``items`` in ``parts`` contiguous pieces whose sizes differ by at most one."""
    q, r = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        size = q + (1 if i < r else 0)
        out.append(list(items[start : start + size]))
        start += size
    return out


def merge_step_metrics(
    rollout: Sequence[Mapping[str, float]],
    rollout_rows: Sequence[int],
    reward: Sequence[Mapping[str, float]],
    *,
    correct: Sequence[str] = ("correct",),
    no_answer: Sequence[str] = ("no_answer",),
) -> dict[str, float]:
    """Merge the per-rank results of one step.

    Args:
        rollout: each rollout rank's ``rollout`` result: ``rollout/generated_tokens``
            (summed), any other ``rollout/*`` (a per-row mean: averaged weighted by the
            rank's rows) and ``time/*`` (the slowest rank's).
        rollout_rows: prompts each of those ranks rolled out.
        reward: each reward rank's ``serve`` sums (``sum/*``) and ``time/*`` (max).
        correct: statuses counted in ``rollout/accuracy``.
        no_answer: statuses counted in ``rollout/no_answer_rate``.
    """
    if len(rollout) != len(rollout_rows):
        raise ValueError(f"{len(rollout)} rollout results for {len(rollout_rows)} row counts")
    out: dict[str, float] = {}
    total: dict[str, float] = {}
    for p in reward:
        for k, v in p.items():
            if k.startswith("sum/"):
                total[k] = total.get(k, 0.0) + v

    def status(names: Sequence[str]) -> float:
        return sum(total.get(f"sum/status_{s}", 0.0) for s in names)

    n = total.get("sum/responses", 0.0)
    if n:
        out = {
            "rollout/reward_mean": total["sum/reward"] / n,
            "rollout/accuracy": status(correct) / n,
            "rollout/response_length": total["sum/response_length"] / n,
            "rollout/truncation_rate": total["sum/truncated"] / n,
            "rollout/no_answer_rate": status(no_answer) / n,
            "rollout/checker_timeouts": status(("timeout",)),
            "rollout/checker_errors": status(("error",)),
            "rollout/responses": n,
        }
    weights = [w / sum(rollout_rows) for w in rollout_rows]
    for key in sorted({k for m in rollout for k in m}):
        values = [m[key] for m in rollout]
        if key == "rollout/generated_tokens":
            out[key] = sum(values)
        elif key.startswith("rollout/"):
            out[key] = sum(w * v for w, v in zip(weights, values, strict=True))
        elif key.startswith("time/"):
            out[key] = max(values)
    for key in sorted({k for m in reward for k in m if k.startswith("time/")}):
        out[key] = max(m[key] for m in reward)
    return out
