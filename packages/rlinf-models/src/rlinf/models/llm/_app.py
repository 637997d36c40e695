"""The commands every LLM app shares (train, resume, eval, sft), built once from the app's
own pieces (:class:`LLMApp`): config loader, data, SFT examples, prompt order, flow,
greedy evaluation, plot panels.

Order of a new run: the config is validated, then the data is loaded and every input is
checked in the driver (data files, model path, extras), then the run directory is made,
and only then the flow starts Ray and the workers; a bad input leaves nothing behind.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import math
import pathlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import torch

from rlinf.core import (
    ConfigError,
    check_run_dir_free,
    resolve_torch_threads,
    resume_run,
    run_model_dir,
    start_run,
    train_or_resume,
)

from ._plan_profile import AUTO, is_auto_placement
from ._rl_loop import PromptSource, prepare_initial_model, run_rl_loop
from ._rl_plot import plot_run_panels
from ._sft import SFTExample

if TYPE_CHECKING:
    from ._flow import LLMRLFlow

__all__ = ["AUTO_ITERATIONS", "PLAN_FILE", "LLMApp", "LLMTrainResult", "TaskSplits"]

AUTO_ITERATIONS = 3
"""Reference steps ``placement: auto`` profiles (the first is warm-up)."""
PLAN_FILE = "plan.json"
"""The plan record in a ``placement: auto`` run's directory."""

C = TypeVar("C")
D = TypeVar("D", bound="SplitRows")
Panels = Sequence[tuple[str, Sequence[tuple[str, str]]]]


class SplitRows(Protocol):
    """What an app's data offers the shared commands: train rows (RL prompts) and held-out
    rows (evaluation)."""

    @property
    def train(self) -> Sequence[Any]: ...

    @property
    def test(self) -> Sequence[Any]: ...


@dataclass(frozen=True)
class TaskSplits:
    """Train and held-out rows of an app without further task data.

    Attributes:
        train: RL prompts (and SFT rows).
        test: held-out rows.
    """

    train: Sequence[Any]
    test: Sequence[Any]


@dataclass(frozen=True)
class LLMTrainResult:
    """What a finished (or resumed and finished) run reports.

    Attributes:
        run_dir: the run directory.
        steps: RL updates done in total (including those before a resume).
        first_eval: ``eval/*`` before the first RL update (after the SFT warm-up); empty
            for a resumed run.
        last_eval: ``eval/*`` after the last update.
        wall_s: seconds of this invocation (SFT included).
        placement_mode: ``collocated``, ``disaggregated`` or ``hybrid``.
    """

    run_dir: pathlib.Path
    steps: int
    first_eval: Mapping[str, float]
    last_eval: Mapping[str, float]
    wall_s: float
    placement_mode: str

    def initial(self, key: str) -> float:
        """``key`` (e.g. ``"eval/accuracy"``) before RL; NaN for a resumed run."""
        return float(self.first_eval.get(key, math.nan))

    def final(self, key: str) -> float:
        """``key`` after the last update; NaN if this invocation evaluated nothing."""
        return float(self.last_eval.get(key, math.nan))

    @property
    def initial_accuracy(self) -> float:
        """Held-out greedy accuracy before the first RL update (NaN for a resumed run)."""
        return self.initial("eval/accuracy")

    @property
    def final_accuracy(self) -> float:
        """Held-out greedy accuracy after the last update."""
        return self.final("eval/accuracy")

    def summary(self, shown: Sequence[tuple[str, str, str]]) -> str:
        """One line: run directory, steps, each ``(label, eval key, format)`` before ->
        after, wall time and placement mode."""
        parts = [
            f"{label} {self.initial(k):{fmt}} -> {self.final(k):{fmt}}" for label, k, fmt in shown
        ]
        head = f"run {self.run_dir}: {self.steps} steps"
        return ", ".join([head, *parts, f"{self.wall_s:.1f}s ({self.placement_mode})"])


@dataclass(frozen=True)
class LLMApp(Generic[C, D]):
    """An LLM app's own pieces, and the commands built from them.

    ``C`` is the app's config (with ``runner``, ``model`` and ``sft`` sections), ``D`` its
    data (:class:`SplitRows`).

    Attributes:
        name: the app's name (start of the plot title).
        load_config: ``(preset | YAML path | mapping, overrides) -> C``, validating.
        load_data: ``(cfg, resumed) -> D``; raises naming the key or file on bad data.
            ``resumed`` is True when the SFT warm-up will not run (resume, eval).
        sft_examples: ``(cfg, data) -> examples`` of the SFT warm-up.
        prompts: ``(cfg, data) -> PromptSource``: the seeded, resumable train order.
        make_flow: ``(cfg, data, model_path, ref_path) -> LLMRLFlow`` (starts Ray).
        greedy_eval: ``(cfg, data, model_dir, rows) -> eval/* metrics``, in-process.
        panels: the learning curve's ``(ylabel, ((metric key, legend), ...))`` panels.
        plot_title: ``cfg -> title`` of the learning curve.
        figsize: the learning curve's size in inches.
        summary: ``(label, eval key, format)`` shown before -> after in the train line.
        postfix: progress-bar label -> step metric key.
        sft_dir: name of the model directory the ``sft`` command writes under ``--out``.
        result_type: the :class:`LLMTrainResult` (sub)class ``train`` returns.
        check_config: the app's validation of a whole config (raises ``ConfigError``
            naming the key): ``plan`` and ``placement: auto`` keep only the candidate
            placements it accepts. None: the app cannot plan.
    """

    name: str
    load_config: Callable[[Any, Sequence[str]], C]
    load_data: Callable[[C, bool], D]
    sft_examples: Callable[[C, D], Sequence[SFTExample]]
    prompts: Callable[[C, D], PromptSource]
    make_flow: Callable[[C, D, str, str], LLMRLFlow]
    greedy_eval: Callable[[C, D, pathlib.Path | str, Sequence[Any]], dict[str, float]]
    panels: Panels
    plot_title: Callable[[C], str]
    figsize: tuple[float, float] = (10, 4)
    summary: Sequence[tuple[str, str, str]] = (("held-out accuracy", "eval/accuracy", ".3f"),)
    postfix: Mapping[str, str] = field(default_factory=dict)
    sft_dir: str = "sft_model"
    result_type: type[LLMTrainResult] = LLMTrainResult
    check_config: Callable[[C], object] | None = None

    def prepare(self, cfg: C, *, resumed: bool = False) -> D:
        """Every check the driver can make before anything starts (extras of the chosen
        options, the ``training`` backend's name, then the data, which ``load_data`` validates); returns the data."""
        if cfg.sft.lora and importlib.util.find_spec("peft") is None:  # type: ignore[attr-defined]
            raise ConfigError("sft.lora: LoRA needs peft: pip install 'rlinf-models[lora]'")
        if importlib.util.find_spec("matplotlib") is None:
            raise ConfigError(
                "the learning curve needs matplotlib: pip install 'rlinf-models[plot]'"
            )
        # The backend registry imports torch.distributed.checkpoint (seconds): checked here,
        # not at config load, and only when the section differs from the default.
        training = cfg.training  # type: ignore[attr-defined]
        if training != type(training)():
            training.resolve(1)
        return self.load_data(cfg, resumed)

    def train(
        self, config: str | pathlib.Path, overrides: Sequence[str] = (), run_dir: str | None = None
    ) -> LLMTrainResult:
        """Train from a preset name or YAML path with ``key=value`` overrides. The config
        and the data are fully checked before the run directory or any worker exists."""
        planned: list[Any] = []

        def load(source: Any, overrides: Sequence[str]) -> C:
            cfg = self.load_config(source, overrides)
            if not is_auto_placement(cfg.placement):  # type: ignore[attr-defined]
                return cfg
            from ..planning import describe
            from ._plan import apply_llm_plan, auto_profile_devices

            check_run_dir_free(run_dir)  # before minutes of profiling, not after
            counts = auto_profile_devices(cfg, self.check_config or (lambda c: None))
            p = self.plan(cfg, AUTO_ITERATIONS, counts)
            print("\n".join(describe(p, top=5)))
            print(f"placement: auto chose\n{p.block_yaml()}", end="", flush=True)
            planned.append(p)
            return apply_llm_plan(cfg, p.chosen)

        cfg, path, data = start_run(load, config, overrides, run_dir, prepare=self.prepare)
        if planned:
            (path / PLAN_FILE).write_text(json.dumps(planned[0].record(), indent=2))
        return self._run(cfg, path, data, state=None)

    def plan(self, cfg: C, iterations: int = 4, profile_devices: Sequence[int] = (1,)) -> Any:
        """Profile reference runs of ``cfg`` and rank the placements the app accepts
        (:func:`~rlinf.models.llm._plan.plan_llm`); returns the
        :class:`~rlinf.models.planning.Plan`.

        Raises:
            ConfigError: the app has no ``check_config``, or see ``plan_llm``.
        """
        from ._plan import plan_llm

        if self.check_config is None:
            raise ConfigError(f"plan: the {self.name} app does not support planning")
        return plan_llm(self, cfg, self.check_config, iterations, profile_devices)

    def resume(self, run_dir: str | pathlib.Path, overrides: Sequence[str] = ()) -> LLMTrainResult:
        """Continue a run from its latest checkpoint (overrides may e.g. raise
        ``runner.steps``); prompts continue in order, re-run steps replace their metrics."""
        prepare = functools.partial(self.prepare, resumed=True)

        def load(source: Any, overrides: Sequence[str]) -> C:
            cfg = self.load_config(source, overrides)
            if is_auto_placement(cfg.placement):  # type: ignore[attr-defined]
                raise ConfigError(
                    f"placement: {AUTO!r} plans new runs only; a resumed run keeps the "
                    "placement of its config.yaml (override placement.<component> to change it)"
                )
            return cfg

        cfg, path, state, data = resume_run(run_dir, load, overrides, prepare=prepare)
        return self._run(cfg, path, data, state=state)

    def evaluate(self, checkpoint: str | pathlib.Path, num_prompts: int = 0) -> dict[str, float]:
        """Greedy evaluation on the run's held-out split of ``checkpoint``: a run directory
        (its latest checkpoint), a checkpoint directory, or an HF model directory inside a
        run (e.g. ``<run>/sft_model``). ``num_prompts`` > 0 evaluates only the first ones."""
        cfg, model_dir = run_model_dir(checkpoint, self.load_config)
        torch.set_num_threads(resolve_torch_threads(cfg.runner, cfg.cluster))  # type: ignore[attr-defined]
        data = self.load_data(cfg, True)
        rows = data.test[:num_prompts] if num_prompts else data.test
        return self.greedy_eval(cfg, data, model_dir, rows)

    def sft(self, config: str, out: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
        """The SFT warm-up alone into ``out`` (``base_model``, ``<sft_dir>``, ``sft``
        metrics), then a greedy evaluation; returns its metrics and ``model_dir``."""
        cfg: Any = self.load_config(config, overrides)
        if not cfg.sft.steps:
            raise ConfigError("sft.steps is 0: nothing to train (set sft.steps=N)")
        out_dir = pathlib.Path(out)
        if out_dir.exists() and any(out_dir.iterdir()):
            raise FileExistsError(f"output directory {out_dir} is not empty")
        torch.set_num_threads(resolve_torch_threads(cfg.runner, cfg.cluster))
        data = self.prepare(cfg)
        model = prepare_initial_model(
            cfg.model, cfg.sft, out_dir, lambda: self.sft_examples(cfg, data), sft_dir=self.sft_dir
        )
        n = cfg.runner.eval_prompts
        metrics = self.greedy_eval(cfg, data, model, data.test[:n] if n else data.test)
        return {**metrics, "model_dir": str(model)}

    def command(self, args: argparse.Namespace) -> None:
        """Run a parsed ``train`` / ``eval`` / ``sft`` command (see
        :func:`rlinf.core.app_parser`) and print its result."""
        if args.command == "train":
            print(train_or_resume(args, self.train, self.resume).summary(self.summary))
        elif args.command == "plan":
            self._plan_command(args)
        elif args.command == "eval":
            print(json.dumps(self.evaluate(args.checkpoint, args.num_prompts), indent=1))
        else:
            print(json.dumps(self.sft(args.config, args.out, args.overrides), indent=1))

    def _plan_command(self, args: argparse.Namespace) -> None:
        from ..planning import (
            describe,
            parse_profile_devices,
            reference_iterations,
            write_plan_files,
        )

        if args.top < 1:
            raise ConfigError(f"--top must be >= 1, got {args.top}")
        reference_iterations(args.iterations)
        cfg: Any = self.load_config(args.config, args.overrides)
        counts = parse_profile_devices(args.profile_devices, cfg.cluster.topology().num_devices)
        result = self.plan(cfg, args.iterations, counts)
        print("\n".join(describe(result, args.top)))
        if args.out is None:
            print(result.block_yaml(), end="")
            return
        out, prof = write_plan_files(result, pathlib.Path(args.out))
        print(f"wrote {out} (chosen block) and {prof} (profile)")

    def _run(
        self, cfg: Any, run_dir: pathlib.Path, data: D, state: dict[str, Any] | None
    ) -> LLMTrainResult:
        r = cfg.runner
        start = time.perf_counter()
        torch.set_num_threads(resolve_torch_threads(r, cfg.cluster))
        torch.manual_seed(r.seed)
        res = run_rl_loop(
            r,
            run_dir,
            state,
            initial_model=lambda: prepare_initial_model(
                cfg.model, cfg.sft, run_dir, lambda: self.sft_examples(cfg, data)
            ),
            make_flow=lambda model, ref: self.make_flow(cfg, data, model, ref),
            prompts=self.prompts(cfg, data),
            eval_rows=data.test,
            postfix=self.postfix,
            max_refill_rounds=cfg.algo.max_refill_rounds,
        )
        plot_run_panels(run_dir, self.panels, title=self.plot_title(cfg), figsize=self.figsize)
        wall = time.perf_counter() - start
        return self.result_type(
            run_dir, res.steps, res.first_eval, res.last_eval, wall, res.placement_mode
        )
