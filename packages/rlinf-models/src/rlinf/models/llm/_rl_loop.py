"""The LLM RL training loop every LLM app shares: initial model (SFT warm-up), evaluation,
steps, checkpoints and resume, around an :class:`~rlinf.models.llm.LLMRLFlow`.

:class:`~rlinf.models.llm.LLMApp` calls it with the app's own pieces: rows, SFT examples,
the flow (worker class, scorer, extra groups). Ray-free at import (the flow is only built
through ``make_flow``, after every input has been checked).
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch

from rlinf.core import (
    ConfigError,
    MetricLogger,
    RunnerSection,
    process_age_s,
    restore_driver_rng,
    save_checkpoint,
)

from ._draw_log import StepDraws
from ._generation import GenerationConfig
from ._load import check_model_dir
from ._partial import PartialRolloutConfig
from ._pipeline import AsyncStepPipeline, check_max_staleness
from ._sft import SFTConfig, SFTExample, run_sft
from ._tiny import TinyLMConfig, build_tiny_causal_lm
from ._updater_config import LLMUpdaterConfig

if TYPE_CHECKING:
    from ._flow import LLMRLFlow, PromptRow

__all__ = [
    "LLMModelSection",
    "LLMRunnerSection",
    "LoopResult",
    "PromptSource",
    "check_llm_rl_config",
    "prepare_initial_model",
    "run_rl_loop",
]

METRIC_BACKENDS = ("console", "jsonl", "tensorboard", "wandb")


@dataclass(frozen=True)
class LLMModelSection:
    """The policy to train (an app's ``model`` section).

    Attributes:
        path: a local Hugging Face causal-LM directory; ``None`` builds the tiny seeded
            model of :attr:`tiny` (character tokenizer) in the run directory.
        tiny: size of the tiny model when ``path`` is None.
        dtype: torch dtype of the weights (``float32``, ``bfloat16``, ...).
    """

    path: str | None = None
    tiny: TinyLMConfig = field(default_factory=TinyLMConfig)
    dtype: str = "float32"


@dataclass(frozen=True)
class LLMRunnerSection(RunnerSection):
    """How long to train and what to record: the fields of :class:`rlinf.core.RunnerSection`
    (``name``, ``seed``, ``checkpoint_every``, ``runs_root``, ``metric_backends``,
    ``torch_threads``, ``timeout_s``, ``progress``) plus the run length below. Apps
    subclass it to change defaults (e.g. ``name``).

    Attributes:
        steps: RL updates (one batch of prompts each).
        prompts_per_step: prompts per update (each sampled ``generation.n`` times).
        eval_every: greedy held-out evaluation every this many updates (0: only before the
            first and after the last update).
        eval_prompts: held-out prompts per evaluation (0: all of the split).
        max_staleness: ``k``: rollouts of the next ``k`` steps run while the actor trains,
            with the weights the rollout ranks hold, so a trained sample lags the actor by
            at most ``k`` versions (:class:`~rlinf.models.llm.AsyncStepPipeline`). 0: the
            synchronous flow (generate, score, train, sync; bit-for-bit as before).
            Off-policy correction: ``algo.off_policy_correction``.
        partial_mode: partial rollouts (:mod:`rlinf.models.llm._partial`): ``off`` (a
            rollout rank changes weights between calls only), ``continue`` (a new version
            reaches a rank between decoding steps and unfinished sequences go on under
            it, each token recording its version; staleness counts the oldest token) or
            ``abort`` (unfinished sequences are dropped at the switch and their prompts
            run again once, whole, under the new weights). Needs ``max_staleness >= 1``,
            the HF generation backend and ``weight_sync`` object_store or auto.
        update_interval_tokens: new tokens a rollout rank generates between two looks
            for new weights (partial rollouts).
    """

    steps: int = 100
    prompts_per_step: int = 32
    eval_every: int = 10
    eval_prompts: int = 0
    max_staleness: int = 0
    partial_mode: str = "off"
    update_interval_tokens: int = 16

    def __post_init__(self) -> None:
        super().__post_init__()
        check_max_staleness(self.max_staleness)
        partial = self.partial  # checks both partial fields
        if partial.enabled and self.max_staleness < 1:
            raise ValueError(
                f"partial_mode={self.partial_mode} needs max_staleness >= 1 (with 0 no new "
                "weights are published while a rollout runs)"
            )
        if partial.enabled and self.weight_sync == "collective":
            raise ValueError(
                f"partial_mode={self.partial_mode} needs weight_sync object_store or auto (a "
                "rank takes a snapshot between decoding steps)"
            )
        if self.steps < 1 or self.prompts_per_step < 1:
            raise ValueError("steps and prompts_per_step must be >= 1")
        for name in ("eval_every", "eval_prompts"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def partial(self) -> PartialRolloutConfig:
        """``partial_mode`` and ``update_interval_tokens`` as the flow takes them."""
        return PartialRolloutConfig(self.partial_mode, self.update_interval_tokens)


def check_llm_rl_config(
    algo: LLMUpdaterConfig,
    generation: GenerationConfig,
    model: LLMModelSection,
    runner: RunnerSection,
    *,
    response_limit: tuple[str, int] | None = None,
) -> None:
    """The cross-section checks every LLM RL app needs (before any worker starts).

    Args:
        algo, generation, model, runner: the app's ``algo``, ``generation``, ``model`` and
            ``runner`` sections (those keys name them in errors).
        response_limit: ``(key, tokens)`` of the longest response, which
            ``algo.max_response_length`` must equal under ``algo.overlong_buffer``
            (default: ``generation.max_new_tokens``).

    Raises:
        ConfigError: naming the offending key.
    """
    if algo.temperature != generation.temperature:
        raise ConfigError(
            f"algo.temperature ({algo.temperature}) must equal generation.temperature "
            f"({generation.temperature}): log-probs are compared with the sampling distribution"
        )
    if algo.group_advantages and generation.n < 2:
        raise ConfigError(f"generation.n: algo.name {algo.name} needs >= 2 samples per prompt")
    key, limit = response_limit or ("generation.max_new_tokens", generation.max_new_tokens)
    if algo.overlong_buffer and algo.max_response_length != limit:
        raise ConfigError(
            f"algo.max_response_length ({algo.max_response_length}) must equal "
            f"{key} ({limit}) when algo.overlong_buffer is set"
        )
    partial = runner.partial if isinstance(runner, LLMRunnerSection) else None
    if partial is not None and partial.enabled and generation.backend != "hf":
        raise ConfigError(
            f"runner.partial_mode={partial.mode}: needs generation.backend=hf, not "
            f"{generation.backend} (its adapter generates a whole call at once)"
        )
    if not generation.do_sample:
        raise ConfigError("generation.do_sample: RL rollouts must sample (greedy is for eval)")
    if model.path is not None:
        try:
            check_model_dir(model.path)
        except (FileNotFoundError, ValueError) as e:
            raise ConfigError(f"model.path: {e}") from None
    unknown = [b for b in runner.metric_backends if b not in METRIC_BACKENDS]
    if unknown:
        raise ConfigError(
            f"runner.metric_backends: unknown {unknown}; valid: {list(METRIC_BACKENDS)}"
        )


class PromptSource(Protocol):
    """A resumable order of train rows (e.g. ``rlinf.envs.math.PromptIterator``)."""

    def next_batch(self, n: int) -> Sequence[Any]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class LoopResult:
    """What :func:`run_rl_loop` reports.

    Attributes:
        steps: RL updates done in total (including those before a resume).
        first_eval: ``eval/*`` before the first update (empty for a resumed run).
        last_eval: the latest ``eval/*`` of this invocation (empty if it ran none).
        placement_mode: ``collocated``, ``disaggregated`` or ``hybrid``.
    """

    steps: int
    first_eval: Mapping[str, float]
    last_eval: Mapping[str, float]
    placement_mode: str


def prepare_initial_model(
    model: LLMModelSection,
    sft: SFTConfig,
    out_dir: pathlib.Path,
    examples: Callable[[], Sequence[SFTExample]],
    *,
    sft_dir: str = "sft_model",
) -> str:
    """The model RL starts from: ``model.path`` or the tiny base built in
    ``out_dir/base_model``, after ``sft.steps`` of warm-up on ``examples()`` (written to
    ``out_dir/<sft_dir>``, its loss to ``out_dir/sft/metrics.jsonl``)."""
    base = model.path or str(build_tiny_causal_lm(out_dir / "base_model", model.tiny))
    if not sft.steps:
        return str(base)
    with MetricLogger(out_dir / "sft", backends=("jsonl",)) as log:
        dtype = getattr(torch, model.dtype)
        out = run_sft(examples(), base, out_dir / sft_dir, sft, dtype=dtype, log=log.log)
    return str(out)


def run_rl_loop(
    runner: LLMRunnerSection,
    run_dir: pathlib.Path,
    state: Mapping[str, Any] | None,
    *,
    initial_model: Callable[[], str],
    make_flow: Callable[[str, str], LLMRLFlow],
    prompts: PromptSource,
    eval_rows: Sequence[PromptRow],
    postfix: Mapping[str, str] | None = None,
    max_refill_rounds: int = 0,
) -> LoopResult:
    """Run (or resume) ``runner.steps`` updates; the flow is shut down on return or error.

    Args:
        runner: run length, evaluation and checkpoint cadence, metric backends.
        run_dir: the run directory (metrics, ``checkpoints/step_<n>``).
        state: ``None`` for a new run, else the checkpoint state to resume from (as
            :func:`rlinf.core.resume_run` returns it).
        initial_model: a new run's starting model directory (``prepare_initial_model``);
            also the KL reference, and saved in every checkpoint as ``init_model``.
        make_flow: ``(model_path, ref_path) -> flow``, started on the app's groups.
        prompts: the train rows in order; its state is checkpointed and restored.
        eval_rows: the held-out rows (the first ``runner.eval_prompts`` if set).
        postfix: progress-bar label -> step metric key, shown besides reward, accuracy
            and tokens per second.
        max_refill_rounds: ``algo.max_refill_rounds`` when ``algo.dynamic_sampling`` (0:
            no refill): flat groups are replaced by rows drawn from ``prompts``.
    """
    from tqdm import tqdm

    r = runner
    eval_rows = eval_rows[: r.eval_prompts] if r.eval_prompts else eval_rows
    if state is None:
        init = initial_model()
        model_path, step = init, 0
    else:
        init, model_path, step = state["init_model"], str(state["model_dir"]), int(state["step"])
        prompts.load_state_dict(state["prompts"])
        restore_driver_rng(state)
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    flow = make_flow(model_path, init)
    logger = MetricLogger(run_dir, backends=r.metric_backends, run_name=r.name)
    try:
        if state is not None:
            flow.call_actor("load_checkpoint_state", state["actor"])
        version = flow.sync_weights()
        if state is None:
            first = last = flow.evaluate(eval_rows, version)
            logger.log(first, 0)
        bar = tqdm(
            total=r.steps, initial=step, unit="step", disable=not r.progress, dynamic_ncols=True
        )
        # What each step drew: a checkpoint after step s keeps the order's state before
        # step s+1's rows (rows drawn ahead for steps in flight are drawn again on resume)
        # and where the refills already trained lie after it (skipped on resume).
        draws = StepDraws(prompts, StepDraws.skips_of(state or {}))
        started = iter(range(step, r.steps))
        pipeline = AsyncStepPipeline(
            flow,
            max_staleness=r.max_staleness,
            version=version,
            first_step=step,
            total_steps=r.steps,
            draw=lambda: draws.draw(next(started), r.prompts_per_step),
            refill=(lambda n: draws.draw(step, n, refill=True)) if max_refill_rounds else None,
            max_refill_rounds=max_refill_rounds,
        )
        first_step_pending = True
        while step < r.steps:
            metrics = pipeline.step()
            version = pipeline.version
            step += 1
            if first_step_pending:
                # Process start (imports, Ray, workers, model build, the first eval) to
                # the end of the first update.
                metrics["time/first_step_s"] = process_age_s()
                first_step_pending = False
            if (r.eval_every and step % r.eval_every == 0) or step == r.steps:
                last = flow.evaluate(eval_rows, version)
                metrics.update(last)
            logger.log(metrics, step)
            bar.update(1)
            shown = {"reward": f"{metrics.get('rollout/reward_mean', math.nan):.2f}"}
            shown |= {label: f"{metrics[key]:.2f}" for label, key in (postfix or {}).items()}
            shown["acc"] = f"{last.get('eval/accuracy', math.nan):.2f}"
            shown["tok_s"] = f"{metrics['throughput/tokens_per_s']:.0f}"
            bar.set_postfix(shown)
            if (r.checkpoint_every and step % r.checkpoint_every == 0) or step == r.steps:
                actor_state = flow.call_actor("checkpoint_state")
                prompt_state, skips = draws.checkpoint(step)
                extra = {"prompt_skips": skips} if skips else {}
                save_checkpoint(
                    run_dir,
                    f"step_{step:06d}",
                    {
                        "step": step,
                        "actor": actor_state,
                        "prompts": prompt_state,
                        "init_model": init,
                        **extra,
                    },
                    save_model=lambda d: flow.call_actor("save_checkpoint_files", d),
                    metrics_step=step,
                )
        bar.close()
        mode = str(flow.mode)
    finally:
        logger.close()
        flow.shutdown()
    return LoopResult(step, first, last, mode)
