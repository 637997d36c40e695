"""Multi-turn rollouts: the model alternates with tool sessions until each trajectory ends.

Every trajectory (row) re-prefills ``prompt + response so far`` for each model turn, so the
log-probabilities reported for a later turn are those of the full concatenated sequence,
exactly what the trainer recomputes (its PPO ratio starts at 1). Rows advance
independently: a row whose tool is still running never holds back the rows that are ready.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import torch

from ._agent_types import AgentEnv, MultiTurnConfig, MultiTurnResult
from ._generation import GenerationBackend, GenerationConfig
from ._multiturn_rows import AgentRow, build_agent_batch
from ._partial import InFlightUpdates

__all__ = ["multi_turn_generate"]

# Spacing of the per-call sampling seeds (a prime, so the streams of nearby base seeds and
# call indices do not collide).
_SEED_STRIDE = 104_729
# Offset of the seeds of a rerun after an abort (its own stream, as the HF backend's rerun).
_RERUN_SEED = 7_919_993


def multi_turn_generate(
    backend: GenerationBackend,
    tokenizer: Any,
    prompts: list[list[int]],
    tasks: Sequence[Any],
    env: AgentEnv,
    generation: GenerationConfig,
    config: MultiTurnConfig,
    *,
    updates: InFlightUpdates | None = None,
) -> MultiTurnResult:
    """Roll out ``generation.n`` trajectories per prompt, alternating model turns and tools.

    Rows are each prompt repeated ``n`` times (consecutive; ``prompt_index`` as in
    ``backend.generate``); row ``i`` gets ``env.session(tasks[i // n])``. Loop: every *ready*
    row (not done, no tool pending) generates its next turn in one batched
    ``backend.generate`` (``n=1``, stop = ``generation.stop`` + ``env.stop``,
    ``max_new_tokens`` = the largest ``min(generation.max_new_tokens, budget left)`` of the
    batch, each row then cut to its own budget, sampling seed derived from
    ``generation.seed`` and the call index). A turn that ends in EOS ends the row; one cut by
    the budget or ``max_new_tokens`` ends it truncated; otherwise the turn text goes to the
    row's session: None ends the row, a future yields the observation, tokenized without
    special tokens and cut to ``max_observation_tokens`` and the budget. At ``max_turns``
    (or a spent budget) a requested tool call is cancelled and the row ends truncated.
    While rows are ready the loop waits on tools only for ``config.batch_window_s``, once
    per turn (so that rows whose tools finish soon join the same batch);
    with no row ready it blocks until a tool finishes, but for no tool call longer than
    ``config.tool_timeout_s`` since its submission.

    ``updates`` (partial rollouts, :mod:`rlinf.models.llm._partial`; the backend must take
    ``updates`` like :class:`~rlinf.models.llm.HFGenerationBackend`): new weights are
    polled before every model turn and every ``updates.interval`` tokens inside one.
    ``continue``: trajectories go on under the new weights; the batch records per-token
    ``versions`` (observations: their calling turn's, see
    :mod:`rlinf.models.llm._multiturn_rows`) and its ``version`` is the oldest token's.
    ``abort``: at the first new version every trajectory not yet ended with only old
    tokens is dropped (its pending tool call cancelled, its session replaced) and run
    again, whole, under the new weights, with no more polls in this call (so once, never
    mixed); its seeds restart from ``generation.seed + 7_919_993``, call index 0. A new
    version before the first turn drops nothing: the call runs on it.

    With tools finishing in a timing-dependent order the batching of turns, hence the
    sampled tokens, can differ between equally seeded runs.

    Args:
        backend: generation engine (holds the weights version put on the batch).
        tokenizer: its tokenizer (observation text -> ids, transcripts).
        prompts: token-id lists, none empty.
        tasks: one task per prompt, handed to ``env.session``.
        env: the :class:`AgentEnv`.
        generation: per-turn sampling; ``n`` = trajectories per prompt.
        config: :class:`MultiTurnConfig`.
        updates: take new weights during the call (None: one version throughout).

    Raises:
        RuntimeError: a session's ``submit`` or its future raised (the message names the
            row and prompt; pending futures are cancelled).
        TimeoutError: with no row ready, a tool future was still pending
            ``config.tool_timeout_s`` after its submission (the message names the row, the
            prompt and the timeout; pending futures are cancelled).
    """
    if not isinstance(generation, GenerationConfig):
        raise TypeError(f"generation must be a GenerationConfig, got {type(generation).__name__}")
    if not isinstance(config, MultiTurnConfig):
        raise TypeError(f"config must be a MultiTurnConfig, got {type(config).__name__}")
    if len(tasks) != len(prompts):
        raise ValueError(f"got {len(tasks)} tasks for {len(prompts)} prompts")
    if not prompts:
        raise ValueError("prompts is empty")
    empty = [i for i, p in enumerate(prompts) if len(p) == 0]
    if empty:
        raise ValueError(f"prompt {empty[0]} is empty")
    n = generation.n
    rows = []
    for i in range(len(prompts) * n):
        task = tasks[i // n]
        rows.append(AgentRow(i, i // n, [int(t) for t in prompts[i // n]], task, env.session(task)))
    stop = tuple(dict.fromkeys((*generation.stop, *env.stop)))
    turn_config = dataclasses.replace(generation, n=1, stop=stop)
    loop = _Loop(backend, tokenizer, turn_config, config, env, updates)
    try:
        loop.run(rows)
    except BaseException:
        for row in rows:
            if row.pending is not None:
                row.pending.cancel()
        raise
    return MultiTurnResult(
        batch=build_agent_batch(rows, loop.version, loop.pad_token_id, updates is not None),
        transcripts=[tokenizer.decode(r.tokens, skip_special_tokens=True) for r in rows],
        turns=torch.tensor([r.turns for r in rows], dtype=torch.long),
        tool_calls=torch.tensor([r.tool_calls for r in rows], dtype=torch.long),
        tool_wait_s=loop.tool_wait_s,
        requeued=torch.tensor([r.requeued for r in rows], dtype=torch.bool),
    )


class _Loop:
    """The scheduling loop of :func:`multi_turn_generate` and its per-call state."""

    def __init__(
        self,
        backend: GenerationBackend,
        tokenizer: Any,
        turn_config: GenerationConfig,
        config: MultiTurnConfig,
        env: AgentEnv,
        updates: InFlightUpdates | None,
    ) -> None:
        self.backend, self.tokenizer = backend, tokenizer
        self.turn_config, self.config = turn_config, config
        self.env, self.updates = env, updates
        self.seed = turn_config.seed  # base of the per-call seeds
        self.rows: list[AgentRow] = []
        self.switched = False  # abort mode: new weights came in during the current turn
        self.eos = set(getattr(backend, "eos_token_ids", None) or ())
        if tokenizer.eos_token_id is not None:
            self.eos.add(int(tokenizer.eos_token_id))
        pad = getattr(backend, "pad_token_id", None)
        if pad is None:
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.pad_token_id = int(pad)
        self.version = backend.version
        self.calls = 0
        self.tool_wait_s = 0.0

    def run(self, rows: list[AgentRow]) -> None:
        self.rows = rows
        gathered = False  # at most one batch window per model turn
        while True:
            for row in rows:
                if row.pending is not None and row.pending.done():
                    self._observe(row)
            ready = [r for r in rows if not r.done and r.pending is None]
            waiting = [r for r in rows if r.pending is not None]
            if ready and waiting and not gathered:
                gathered = True
                if self._gather(waiting):
                    continue  # more rows became ready: regroup them into this turn's batch
            if ready:
                gathered = False
                # Between turns: new weights may come in (partial rollouts).
                updates = self.updates
                # poll() runs in both modes (it loads the weights); only abort drops rows.
                if (
                    updates is not None
                    and updates.poll()
                    and updates.mode == "abort"
                    and self._requeue()
                ):
                    continue  # the restarted rows regroup
                self._model_turn(ready)
                continue
            if not waiting:
                return
            self._wait(waiting)

    def _gather(self, waiting: list[AgentRow]) -> bool:
        """Wait up to ``batch_window_s`` for the pending tools; True if any finished."""
        window = self.config.batch_window_s
        if window <= 0:
            return False
        start = time.perf_counter()
        done, _ = concurrent.futures.wait(
            [r.pending for r in waiting if r.pending is not None],
            timeout=window,
            return_when=concurrent.futures.ALL_COMPLETED,
        )
        self.tool_wait_s += time.perf_counter() - start
        return bool(done)

    def _wait(self, waiting: list[AgentRow]) -> None:
        """Nothing to generate: sleep until the first tool finishes, but never past the
        deadline (``tool_timeout_s`` after submission) of the oldest pending call."""
        timeout = self.config.tool_timeout_s
        start = time.perf_counter()
        oldest = min(r.submitted_at for r in waiting)
        concurrent.futures.wait(
            [r.pending for r in waiting if r.pending is not None],
            timeout=max(0.0, oldest + timeout - start),
            return_when=concurrent.futures.FIRST_COMPLETED,
        )
        now = time.perf_counter()
        self.tool_wait_s += now - start
        for row in waiting:
            late = now - row.submitted_at >= timeout
            if late and row.pending is not None and not row.pending.done():
                # multi_turn_generate cancels every pending future on the way out.
                raise TimeoutError(
                    f"tool call of row {row.index} (prompt {row.prompt_index}) gave no "
                    f"observation within tool_timeout_s={timeout} s; cancelling the "
                    f"{len(waiting) - 1} other pending tool call(s)"
                )

    def _model_turn(self, ready: list[AgentRow]) -> None:
        """One batched generate for the ``ready`` rows; appends each turn and submits it."""
        budget = self.config.max_response_tokens
        cfg = self.turn_config
        limits = [min(cfg.max_new_tokens, budget - len(r.tokens)) for r in ready]
        # One call for all ready rows, sized for the roomiest; rows with less budget left are
        # cut afterwards (sampling is causal, so their kept tokens are unaffected).
        seed = None if self.seed is None else self.seed + _SEED_STRIDE * self.calls
        self.calls += 1
        cfg = dataclasses.replace(cfg, max_new_tokens=max(limits), seed=seed)
        prompts = [r.prompt + r.tokens for r in ready]
        if self.updates is None:
            out = self.backend.generate(prompts, cfg)
            if out.version != self.version:
                raise RuntimeError(
                    f"the backend's weights changed from version {self.version} to "
                    f"{out.version} during a multi-turn rollout"
                )
        else:
            # Inside a turn the backend always continues: an abort drops whole
            # trajectories (below), not only this turn's tokens.
            inner = InFlightUpdates("continue", self.updates.interval, self._poll_in_turn)
            out = self.backend.generate(prompts, cfg, updates=inner)  # type: ignore[call-arg]
        lengths = out.response_lengths.tolist()
        for j, (row, limit) in enumerate(zip(ready, limits, strict=True)):
            length = min(lengths[j], limit)
            ids = out.response_ids[j, :length].tolist()
            if out.versions is None:
                versions = [out.version] * length
            else:
                versions = out.versions[j, :length].tolist()
            row.add_model_turn(ids, out.rollout_logprobs[j, :length].tolist(), versions)
            if lengths[j] > limit or bool(out.truncated[j]):
                # Cut by the budget or by max_new_tokens: an incomplete turn ends the row.
                row.finish(truncated=True)
            elif cfg.stop_on_eos and ids[-1] in self.eos:
                row.finish(truncated=False)
            elif not self.switched:  # a row about to be requeued makes no tool call
                self._submit(row, self.tokenizer.decode(ids, skip_special_tokens=True))
        if self.switched:
            self._requeue()

    def _poll_in_turn(self) -> bool:
        """The backend's poll inside a turn; in abort mode it notes a switch for
        :meth:`_model_turn` (the rest of the turn is generated, then dropped)."""
        assert self.updates is not None
        if self.switched:
            return False  # the rows are rerun anyway: later versions wait for the next call
        changed = self.updates.poll()
        if changed and self.updates.mode == "abort":
            self.switched = True
        return changed

    def _requeue(self) -> bool:
        """Abort: restart every row not ended with only the starting version's tokens,
        under the weights now held, with no more polls and the rerun's own seeds; False
        when nothing had been generated yet (nothing to drop)."""
        if not any(row.tokens for row in self.rows):
            # Before the first turn: the call simply runs on the new weights.
            self.version, self.switched = self.backend.version, False
            return False
        old = self.version
        for row in self.rows:
            if not (row.done and all(v == old for v in row.versions)):
                row.restart(self.env.session(row.task))
        self.updates, self.switched = None, False
        self.version = self.backend.version
        self.calls = 0
        if self.seed is not None:
            self.seed += _RERUN_SEED
        return True

    def _submit(self, row: AgentRow, text: str) -> None:
        try:
            future = row.session.submit(text)
        except Exception as exc:
            raise RuntimeError(
                f"tool session of row {row.index} (prompt {row.prompt_index}) raised "
                f"in submit: {exc!r}"
            ) from exc
        if future is None:
            row.finish(truncated=False)
            return
        if not isinstance(future, concurrent.futures.Future):
            raise TypeError(
                f"tool session of row {row.index} (prompt {row.prompt_index}) returned a "
                f"{type(future).__name__}; expected a concurrent.futures.Future or None"
            )
        if row.turns >= self.config.max_turns or len(row.tokens) >= self.config.max_response_tokens:
            # The session wants another round but no turn or token is left for it.
            future.cancel()
            row.finish(truncated=True)
            return
        row.pending, row.submitted_at = future, time.perf_counter()

    def _observe(self, row: AgentRow) -> None:
        """Append the finished tool future's observation to ``row``."""
        future, row.pending = row.pending, None
        assert future is not None
        try:
            text = future.result()
        except Exception as exc:
            raise RuntimeError(
                f"tool call of row {row.index} (prompt {row.prompt_index}) failed: {exc!r}"
            ) from exc
        if not isinstance(text, str):
            raise TypeError(
                f"tool future of row {row.index} (prompt {row.prompt_index}) returned a "
                f"{type(text).__name__}; expected the observation text (str)"
            )
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        left = self.config.max_response_tokens - len(row.tokens)
        row.add_observation(ids[: min(self.config.max_observation_tokens, left)])
        if len(row.tokens) >= self.config.max_response_tokens:
            # No room for another model turn.
            row.finish(truncated=True)
