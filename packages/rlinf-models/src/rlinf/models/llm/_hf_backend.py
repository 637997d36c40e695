"""Generation with a Hugging Face causal LM: one batched KV-cache sampling loop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .._weights import VersionedWeights, WeightSnapshot
from ._batch import RolloutBatch
from ._generation import GenerationConfig, check_prompts
from ._logprobs import position_ids_from_mask
from ._partial import InFlightUpdates
from ._worker_utils import _distinct_state

__all__ = ["HFGenerationBackend", "sample_next_token"]


def sample_next_token(
    logits: torch.Tensor, config: GenerationConfig, generator: torch.Generator | None
) -> torch.Tensor:
    """One token per row from temperature-scaled ``logits`` ``[N, V]`` -> ``[N]`` int64,
    after top-k then top-p filtering (greedy argmax when ``config.do_sample`` is False)."""
    if not config.do_sample:
        return logits.argmax(dim=-1)
    if 0 < config.top_k < logits.shape[-1]:
        kth = torch.topk(logits, config.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if config.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # Drop a token once the tokens before it already hold top_p of the mass; the most
        # likely token is always kept.
        drop = (probs.cumsum(dim=-1) - probs) >= config.top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def _eos_ids(model: nn.Module, tokenizer: Any) -> list[int]:
    # Chat models often stop on several ids (generation_config.eos_token_id is a list).
    ids: list[int] = []
    for source in (getattr(model, "generation_config", None), getattr(model, "config", None)):
        value = getattr(source, "eos_token_id", None)
        ids.extend([value] if isinstance(value, int) else list(value or []))
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    if not ids:
        raise ValueError("neither the tokenizer nor the model config defines an EOS token")
    return sorted(set(ids))


class _StopChecker:
    """Finds rows whose decoded response has just completed a stop string.

    Only the last ``window`` generated tokens of a row are decoded: every token decodes to at
    least one character, so a stop string completed by the newest token lies within its last
    ``len(stop)`` tokens; one extra token absorbs decoding artefacts at the window's start
    (a dropped leading space, half of a multi-byte character). The check is "the window's
    text contains a stop string", not "ends with": a multi-character token may complete the
    stop string and run past it (e.g. ``">\\n"`` after ``"</search"``), and the row must
    still end there. An older occurrence cannot match, since it would have ended the row
    at an earlier step. Special tokens are skipped (an EOS sampled with ``stop_on_eos=False``
    must not match through its text, e.g. the ``"e"`` of ``"<|endoftext|>"``), as in the
    response text a caller decodes.
    """

    def __init__(self, tokenizer: Any, stop: tuple[str, ...]) -> None:
        self.tokenizer = tokenizer
        self.stop = stop
        self.window = max(len(s) for s in stop) + 1

    def hits(self, history: list[list[int]], rows: list[int]) -> list[int]:
        """The subset of ``rows`` whose last ``window`` tokens of ``history`` contain a stop
        string."""
        if not rows:
            return []
        texts = self.tokenizer.batch_decode(
            [history[i][-self.window :] for i in rows], skip_special_tokens=True
        )
        return [i for i, text in zip(rows, texts, strict=True) if any(s in text for s in self.stop)]


class HFGenerationBackend:
    """:class:`~rlinf.models.llm.GenerationBackend` over a Hugging Face causal LM.

    All ``len(prompts) * n`` sequences are sampled together: one prefill over the
    left-padded prompts, then one cached forward per new token until every sequence has
    emitted an EOS or completed a stop string (``config.stop``, checked on the decoded tail
    of each live sequence) or ``max_new_tokens`` are reached. Sampling applies temperature,
    then top-k, then top-p; the reported ``rollout_logprobs`` are ``log_softmax(logits /
    temperature)`` of the sampled token *without* top-k / top-p, so that they equal
    :func:`~rlinf.models.llm.response_logprobs` on the same weights (the training-side
    ratio then starts at 1 even with filtering).

    Args:
        model: the causal LM (moved to ``device``, put in eval mode; this backend owns it).
        tokenizer: its tokenizer (EOS and pad ids).
        device: where generation runs; the returned batch is on CPU.
        version: the version of the weights ``model`` holds (-1: not from a snapshot).

    Attributes:
        requeued: ``[B]`` bool of the last :meth:`generate`: rows aborted by a new weight
            version (``updates.mode == "abort"``) and generated again.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        *,
        device: str | torch.device = "cpu",
        version: int = -1,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.eos_token_ids = _eos_ids(model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_token_id = int(pad) if pad is not None else self.eos_token_ids[0]
        self._weights = VersionedWeights(self.model)
        self._weights.version = int(version)
        # Rows of the last generate() that were aborted and run again (partial rollouts).
        self.requeued = torch.zeros(0, dtype=torch.bool)

    @property
    def version(self) -> int:
        """The weights version held (-1 before any :meth:`load_weights`, by default)."""
        return self._weights.version

    def load_weights(self, snapshot: WeightSnapshot) -> None:
        """Copy ``snapshot`` into the model: the first load takes any version, later ones
        only the next version (:class:`~rlinf.models.StaleWeightsError` otherwise)."""
        self._weights.load(snapshot)

    def weight_targets(self) -> tuple[VersionedWeights, dict[str, torch.Tensor]]:
        """The version tracker and :attr:`model`'s own tensors by state-dict name, each
        once (tied embeddings under their first name), for a collective sync that writes
        into them in place (:class:`~rlinf.models.WeightReceiver`): the tracker refuses to
        generate from the moment the first byte is written until the last is in."""
        return self._weights, _distinct_state(self.model)

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        config: GenerationConfig,
        *,
        updates: InFlightUpdates | None = None,
    ) -> RolloutBatch:
        """Sample ``config.n`` responses per prompt; see
        :class:`~rlinf.models.llm.GenerationBackend`. Returns a :class:`RolloutBatch` with
        ``B = len(prompts) * n`` rows, ``R`` = the longest response generated.

        ``updates``: take new weights between decoding steps (partial rollouts, see
        :mod:`rlinf.models.llm._partial`); the batch then carries per-token ``versions``
        and :attr:`requeued` ``[B]`` says which rows were aborted and run again. None:
        one version throughout, no per-token versions (the plain path).
        """
        if not isinstance(config, GenerationConfig):
            raise TypeError(f"config must be a GenerationConfig, got {type(config).__name__}")
        vocab = self.model.get_input_embeddings().num_embeddings
        rows = [ids for ids in check_prompts(prompts, vocab) for _ in range(config.n)]
        p = max(len(ids) for ids in rows)
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit is not None and p + config.max_new_tokens > limit:
            raise ValueError(
                f"longest prompt ({p} tokens) + max_new_tokens ({config.max_new_tokens}) "
                f"exceeds the model's max_position_embeddings ({limit})"
            )
        b = len(rows)
        prompt_ids = torch.full((b, p), self.pad_token_id, dtype=torch.long)
        prompt_mask = torch.zeros((b, p), dtype=torch.long)
        for i, ids in enumerate(rows):
            prompt_ids[i, p - len(ids) :] = torch.tensor(ids)
            prompt_mask[i, p - len(ids) :] = 1
        version = self.version
        with torch.no_grad():  # not inference_mode: the batch is later fed to autograd
            out = self._loop(
                prompt_ids, prompt_mask, config, _generator(config, 0, self.device), updates
            )
            self.requeued = torch.zeros(b, dtype=torch.bool)
            aborted = out.aborted.nonzero().squeeze(1)
            if len(aborted):
                # Each aborted row runs once more, whole, under the weights it was
                # aborted for: no updates are taken during the rerun, so it is never
                # aborted again and never mixes versions. Its own seed stream.
                rerun = self._loop(
                    prompt_ids[aborted],
                    prompt_mask[aborted],
                    config,
                    _generator(config, 1, self.device),
                )
                out = out.replace_rows(aborted, rerun)
                self.requeued[aborted] = True
        if updates is not None:
            # The batch's version is its oldest token's (every row has a first token).
            version = int(out.versions[out.alive].min())
        response_mask = out.alive.to(torch.float32)
        return RolloutBatch(
            input_ids=torch.cat([prompt_ids, out.tokens], dim=1),
            attention_mask=torch.cat([prompt_mask, out.alive.long()], dim=1),
            prompt_length=p,
            response_mask=response_mask,
            rollout_logprobs=out.logps * response_mask,
            prompt_index=torch.arange(len(prompts)).repeat_interleave(config.n),
            truncated=~out.finished,
            version=version,
            pad_token_id=self.pad_token_id,
            versions=out.versions if updates is not None else None,
        )

    def _loop(
        self,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        config: GenerationConfig,
        generator: torch.Generator | None,
        updates: InFlightUpdates | None = None,
    ) -> _Decoded:
        """Decode ``prompt_ids`` ``[B, P]``; with ``updates``, poll for new weights after
        every ``updates.interval`` tokens (``abort``: stop at the first new version, the
        rows still generating are marked ``aborted``)."""
        dev = self.device
        attn = prompt_mask.to(dev)
        positions = position_ids_from_mask(attn)
        eos = torch.tensor(self.eos_token_ids, device=dev)
        finished = torch.zeros(attn.shape[0], dtype=torch.bool, device=dev)
        aborted = torch.zeros(attn.shape[0], dtype=torch.bool)
        out = self.model(
            input_ids=prompt_ids.to(dev),
            attention_mask=attn,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
        )
        next_pos = positions[:, -1:] + 1
        tokens, logps, alive, versions = [], [], [], []
        stopper = _StopChecker(self.tokenizer, config.stop) if config.stop else None
        history: list[list[int]] = [[] for _ in range(attn.shape[0])]
        for step in range(config.max_new_tokens):
            logits = out.logits[:, -1].float() / config.temperature
            token = sample_next_token(logits, config, generator)
            logp = torch.log_softmax(logits, dim=-1).gather(-1, token[:, None]).squeeze(-1)
            live = ~finished
            token = torch.where(live, token, self.pad_token_id)
            tokens.append(token)
            logps.append(torch.where(live, logp, 0.0))
            alive.append(live)
            versions.append(self.version)
            if config.stop_on_eos:
                finished = finished | (live & torch.isin(token, eos))
            if stopper is not None:
                for i, t in enumerate(token.tolist()):
                    history[i].append(t)
                candidates = (live & ~finished).nonzero().squeeze(1).tolist()
                hit = stopper.hits(history, candidates)
                if hit:
                    finished[torch.tensor(hit, device=dev)] = True
            if step == config.max_new_tokens - 1 or bool(finished.all()):
                break
            # Between two chunks (never inside a forward pass) new weights may come in.
            switched = updates is not None and (step + 1) % updates.interval == 0 and updates.poll()
            if switched and updates.mode == "abort":
                aborted = (~finished).cpu()
                break
            # The token just sampled is real for rows that were still generating.
            attn = torch.cat([attn, live.long()[:, None]], dim=1)
            out = self.model(
                input_ids=token[:, None],
                attention_mask=attn,
                position_ids=next_pos,
                past_key_values=out.past_key_values,
                use_cache=True,
            )
            next_pos = next_pos + 1
        b, r = attn.shape[0], len(tokens)
        return _Decoded(
            tokens=torch.stack(tokens, dim=1).cpu(),
            logps=torch.stack(logps, dim=1).cpu(),
            alive=torch.stack(alive, dim=1).cpu(),
            finished=finished.cpu(),
            versions=torch.tensor(versions, dtype=torch.long).expand(b, r).clone(),
            aborted=aborted,
            pad_token_id=self.pad_token_id,
        )


def _generator(
    config: GenerationConfig, stream: int, device: torch.device
) -> torch.Generator | None:
    """The private sampling generator of one decoding pass (None: torch's global RNG);
    stream 0 is the plain path's, so a run without updates is unchanged."""
    if config.seed is None:
        return None
    return torch.Generator(device=device).manual_seed(config.seed + 7_919_993 * stream)


@dataclass(frozen=True)
class _Decoded:
    """One decoding pass on CPU: ``tokens`` / ``logps`` / ``alive`` / ``versions``
    ``[B, R]``, ``finished`` / ``aborted`` ``[B]``."""

    tokens: torch.Tensor
    logps: torch.Tensor
    alive: torch.Tensor
    finished: torch.Tensor
    versions: torch.Tensor
    aborted: torch.Tensor
    pad_token_id: int

    def replace_rows(self, rows: torch.Tensor, other: _Decoded) -> _Decoded:
        """These rows ``rows`` replaced by ``other``'s (in order), both right-padded to the
        longer ``R``; the result has no aborted rows."""
        r = max(self.tokens.shape[1], other.tokens.shape[1])

        def widen(x: torch.Tensor, value: float) -> torch.Tensor:
            # F.pad has no bool kernel: pad as int8 and cast back.
            wide = torch.nn.functional.pad(
                x.to(torch.int8) if x.dtype == torch.bool else x, (0, r - x.shape[1]), value=value
            )
            return wide.to(x.dtype)

        merged = {}
        for name, value in (
            ("tokens", self.pad_token_id),
            ("logps", 0.0),
            ("alive", False),
            ("versions", 0),
        ):
            mine, theirs = widen(getattr(self, name), value), widen(getattr(other, name), value)
            mine[rows] = theirs
            merged[name] = mine
        finished = self.finished.clone()
        finished[rows] = other.finished
        return _Decoded(
            finished=finished,
            aborted=torch.zeros_like(self.aborted),
            pad_token_id=self.pad_token_id,
            **merged,
        )
