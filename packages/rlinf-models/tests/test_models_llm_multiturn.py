"""multi_turn_generate on a tiny char model with a calculator tool: turn layout, limits,
rollout log-probs equal the trainer's, zero gradient on observations, async tools, errors.
Turns end on any vowel or digit, so the near-uniform tiny model's turns stay short."""

from __future__ import annotations

import concurrent.futures
import re
import threading

import pytest
import torch

from rlinf.models.llm import (
    AgentEnv,
    GenerationConfig,
    HFGenerationBackend,
    LLMUpdater,
    LLMUpdaterConfig,
    MultiTurnConfig,
    ToolSession,
    build_tiny_causal_lm,
    load_causal_lm,
    multi_turn_generate,
    response_logprobs,
)
from rlinf.models.llm import _updater as updater_module

STOP = tuple("aeiouAEIOU0123456789")


def calculate(turn_text: str) -> str:
    """The calculator tool: evaluates the last ``a+b`` / ``a-b`` / ``a*b`` in the turn."""
    found = re.findall(r"(\d+)\s*([-+*])\s*(\d+)", turn_text)
    if not found:
        return "<r>no expression</r>"
    a, op, b = found[-1]
    value = {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op]
    return f"<r>{value}</r>"


class CalculatorSession:
    """Answers the first ``calls`` turns of a trajectory with the calculator (run on the
    env's thread pool), then says done. ``gate``: an Event the tool waits on (bounded) before
    answering, to make one trajectory's tool slow relative to the others."""

    def __init__(self, env: CalculatorEnv, task: dict) -> None:
        self.env, self.id, self.left = env, task["id"], task["calls"]
        self.gate: threading.Event | None = task.get("gate")
        self.fail = task.get("fail")

    def submit(self, turn_text: str) -> concurrent.futures.Future[str] | None:
        if self.fail == "submit":
            raise ValueError("calculator offline")
        if self.fail == "hang":
            # A lost tool call: a future nobody will ever complete.
            future: concurrent.futures.Future[str] = concurrent.futures.Future()
            self.env.hung.append(future)
            return future
        if self.left == 0:
            self.env.record("done", self.id)
            return None
        self.left -= 1
        self.env.record("submit", self.id)
        if self.env.inline:
            # Answer before returning: every row is ready again on the next loop pass, so the
            # batching of turns (hence the sampled tokens) does not depend on thread timing.
            future: concurrent.futures.Future[str] = concurrent.futures.Future()
            future.set_result(self._run(turn_text))
            return future
        return self.env.pool.submit(self._run, turn_text)

    def _run(self, turn_text: str) -> str:
        if self.fail == "future":
            raise ZeroDivisionError("division by zero in the calculator")
        if self.gate is not None:
            self.env.record("gate_open" if self.gate.wait(timeout=30) else "gate_timeout", self.id)
        self.env.record("result", self.id)
        return calculate(turn_text)


class CalculatorEnv:
    """An AgentEnv: turns end on vowels and digits; tools run on a small thread pool (or, with
    ``inline``, inside ``submit``). When ``watch`` rows have all said done, ``all_done`` is
    set."""

    def __init__(self, watch: tuple[int, ...] = (), inline: bool = False) -> None:
        self.inline = inline
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=4)
        self.events: list[tuple[str, int]] = []
        self.hung: list[concurrent.futures.Future[str]] = []
        self.lock = threading.Lock()
        self.watch = set(watch)
        self.all_done = threading.Event()

    @property
    def stop(self) -> tuple[str, ...]:
        return STOP

    def session(self, task: dict) -> ToolSession:
        return CalculatorSession(self, task)

    def record(self, kind: str, row: int) -> None:
        with self.lock:
            self.events.append((kind, row))
            done = {r for k, r in self.events if k == "done"}
            if self.watch and self.watch <= done:
                self.all_done.set()


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    torch.set_num_threads(1)
    path = build_tiny_causal_lm(tmp_path_factory.mktemp("tiny"))
    model, tok = load_causal_lm(path)
    return model, tok, path


@pytest.fixture
def env():
    env = CalculatorEnv()
    yield env
    env.pool.shutdown(wait=True, cancel_futures=True)


def _segments(batch, row):
    """``[(is_model, token ids)]`` runs of the row's real response tokens."""
    p = batch.prompt_length
    n = int(batch.response_lengths[row])
    ids = batch.input_ids[row, p : p + n].tolist()
    mask = batch.response_mask[row, :n].tolist()
    out: list[tuple[bool, list[int]]] = []
    for t, m in zip(ids, mask, strict=True):
        if out and out[-1][0] == bool(m):
            out[-1][1].append(t)
        else:
            out.append((bool(m), [t]))
    return out


def check_trajectories(result, prompts, n, tok, config: MultiTurnConfig, gen: GenerationConfig):
    """Every structural promise of MultiTurnResult, checked row by row from the tokens."""
    batch = result.batch
    p = batch.prompt_length
    assert batch.batch_size == len(prompts) * n
    assert p == max(map(len, prompts))
    assert batch.prompt_index.tolist() == [i for i in range(len(prompts)) for _ in range(n)]
    assert batch.response_length == int(batch.response_lengths.max())
    for row in range(batch.batch_size):
        q = prompts[row // n]
        assert batch.input_ids[row, p - len(q) : p].tolist() == q
        assert batch.attention_mask[row, : p - len(q)].sum() == 0
        length = int(batch.response_lengths[row])
        assert batch.attention_mask[row, p : p + length].all()
        assert length <= config.max_response_tokens
        assert (batch.response_mask[row, length:] == 0).all()
        real = batch.input_ids[row, p : p + length].tolist()
        assert result.transcripts[row] == tok.decode(real, skip_special_tokens=True)
        segs = _segments(batch, row)
        model_segs = [ids for is_model, ids in segs if is_model]
        obs_segs = [ids for is_model, ids in segs if not is_model]
        assert segs[0][0], "a trajectory starts with a model turn"
        assert int(result.turns[row]) == len(model_segs) <= config.max_turns
        assert int(result.tool_calls[row]) == len(obs_segs)
        for i, ids in enumerate(obs_segs):
            # Each observation is the calculator's answer to the turn before it, cut.
            turn_text = tok.decode(model_segs[i], skip_special_tokens=True)
            full = tok(calculate(turn_text), add_special_tokens=False)["input_ids"]
            assert ids == full[: len(ids)]
            cut_by_budget = i == len(obs_segs) - 1 and length == config.max_response_tokens
            assert len(ids) == min(len(full), config.max_observation_tokens) or cut_by_budget
        for ids in model_segs[:-1] if segs[-1][0] else model_segs:
            # A turn followed by an observation ended on a stop character.
            assert tok.decode(ids)[-1] in STOP
            assert len(ids) <= gen.max_new_tokens
        m = batch.response_mask[row].bool()
        assert (batch.rollout_logprobs[row][m] < 0).all()
        assert (batch.rollout_logprobs[row][~m] == 0).all()


def test_config_validation_and_protocols(env):
    assert isinstance(env, AgentEnv)
    assert isinstance(env.session({"id": 0, "calls": 0}), ToolSession)
    with pytest.raises(ValueError, match="max_turns must be >= 1"):
        MultiTurnConfig(max_turns=0)
    with pytest.raises(ValueError, match="max_response_tokens must be >= 1"):
        MultiTurnConfig(max_response_tokens=0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="tool_timeout_s must be > 0 and finite"):
            MultiTurnConfig(tool_timeout_s=bad)
    assert MultiTurnConfig().tool_timeout_s == 120.0
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="batch_window_s must be >= 0 and finite"):
            MultiTurnConfig(batch_window_s=bad)
    assert calculate("xx12+30yy 4*5") == "<r>20</r>" and calculate("ab") == "<r>no expression</r>"


def test_mixed_lengths_batch_correctly(lm, env):
    model, tok, _ = lm
    env.inline = True
    backend = HFGenerationBackend(model, tok)
    prompts = [tok.encode(t) for t in ("3+4=", "Compute 12*3 then add 5:", "hi", "9-2?")]
    # Row 0 ends after one turn, rows 1-2 after three, row 3 never stops asking: budget.
    tasks = [{"id": i, "calls": c} for i, c in enumerate((0, 2, 2, 100))]
    gen = GenerationConfig(max_new_tokens=40, seed=0, stop_on_eos=False)
    config = MultiTurnConfig(max_turns=10, max_response_tokens=48, max_observation_tokens=8)
    result = multi_turn_generate(backend, tok, prompts, tasks, env, gen, config)
    check_trajectories(result, prompts, 1, tok, config, gen)
    assert result.turns.tolist()[:3] == [1, 3, 3]
    assert result.tool_calls.tolist()[:3] == [0, 2, 2]
    assert result.turns[3] >= 2 and result.tool_calls[3] >= 1
    assert result.batch.truncated.tolist() == [False, False, False, True]
    assert int(result.batch.response_lengths[3]) == config.max_response_tokens
    assert result.batch.version == backend.version == -1
    # "<r>no expression</r>" (20 chars) is cut to 8 tokens.
    assert "<r>no ex" in result.transcripts[1]
    assert "<r>no exp" not in result.transcripts[1]


def test_turn_limit_and_session_done_at_the_limit(lm, env):
    model, tok, _ = lm
    backend = HFGenerationBackend(model, tok)
    prompts = [tok.encode("1+1="), tok.encode("2*3=")]
    # Both reach the limit of 2 turns; the first still asks for a tool there (truncated),
    # the second's session says done on its second turn (complete).
    tasks = [{"id": 0, "calls": 5}, {"id": 1, "calls": 1}]
    gen = GenerationConfig(max_new_tokens=40, n=3, seed=1, stop_on_eos=False)
    config = MultiTurnConfig(max_turns=2, max_response_tokens=200, max_observation_tokens=64)
    result = multi_turn_generate(backend, tok, prompts, tasks, env, gen, config)
    check_trajectories(result, prompts, 3, tok, config, gen)
    assert result.turns.tolist() == [2] * 6
    assert result.tool_calls.tolist() == [1] * 6
    assert result.batch.truncated.tolist() == [True] * 3 + [False] * 3


def test_rollout_logprobs_equal_trainer_logprobs_on_full_sequence(lm, env):
    model, tok, _ = lm
    backend = HFGenerationBackend(model, tok)
    # Prompts of different lengths (left padding) and several turns per row.
    prompts = [tok.encode(t) for t in ("7+8=", "A longer prompt: what is 40+2?", "x")]
    tasks = [{"id": i, "calls": 3} for i in range(3)]
    gen = GenerationConfig(max_new_tokens=30, temperature=0.7, n=2, seed=5, stop_on_eos=False)
    config = MultiTurnConfig(max_turns=4, max_response_tokens=120)
    result = multi_turn_generate(backend, tok, prompts, tasks, env, gen, config)
    batch = result.batch
    assert (result.turns >= 3).all()
    with torch.no_grad():
        logp, _ = response_logprobs(
            model, batch.input_ids, batch.attention_mask, batch.prompt_length, temperature=0.7
        )
    mask = batch.response_mask.bool()
    assert ((logp - batch.rollout_logprobs)[mask]).abs().max() < 1e-4


def test_updater_gradient_is_zero_on_observation_tokens(lm, env, monkeypatch):
    model, tok, path = lm
    backend = HFGenerationBackend(model, tok)
    prompts = [tok.encode("5+5="), tok.encode("Add 3+9 please:")]
    tasks = [{"id": i, "calls": 2} for i in range(2)]
    gen = GenerationConfig(max_new_tokens=30, n=4, seed=2, stop_on_eos=False)
    result = multi_turn_generate(
        backend, tok, prompts, tasks, env, gen, MultiTurnConfig(max_response_tokens=80)
    )
    batch = result.batch
    assert (result.tool_calls >= 1).all()
    # Spy on the updater's own log-prob call (the real function runs) to read the gradient
    # that reaches each token's log-prob and entropy.
    captured = []
    real = updater_module._response_logprobs

    def spy(*args):
        logp, entropy = real(*args)
        if logp.requires_grad:
            logp.retain_grad()
            entropy.retain_grad()
            captured.append((logp, entropy))
        return logp, entropy

    monkeypatch.setattr(updater_module, "_response_logprobs", spy)
    train_model, _ = load_causal_lm(path)
    ref_model, _ = load_causal_lm(path)
    cfg = LLMUpdaterConfig(lr=1e-3, kl_coef=0.1, entropy_coef=0.01)
    updater = LLMUpdater(train_model, cfg, ref_model=ref_model)
    # Rewards distinct within each group of 4: every row gets a nonzero advantage.
    rewards = torch.tensor([0.0, 1.0, 3.0, 7.0, 2.0, 0.0, 5.0, 0.5])
    metrics = updater.update(batch, rewards)
    assert len(captured) == 1
    logp, entropy = captured[0]
    r = logp.shape[1]
    model_tokens = batch.response_mask[:, :r].bool()
    observation = batch.attention_mask[:, batch.prompt_length :][:, :r].bool() & ~model_tokens
    assert observation.sum() > 0 and model_tokens.sum() > 0
    assert (logp.grad[observation] == 0).all()
    assert (entropy.grad[observation] == 0).all()
    assert (logp.grad[model_tokens] != 0).all()
    assert metrics["train/logprob_mismatch"] < 1e-4


class CountingBackend(HFGenerationBackend):
    """The HF backend, recording the batch size of every generate call."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.batch_sizes: list[int] = []

    def generate(self, prompts, config):
        self.batch_sizes.append(len(prompts))
        return super().generate(prompts, config)


def test_batch_window_regroups_rows_whose_tools_finish_soon(lm, env):
    model, tok, _ = lm
    backend = CountingBackend(model, tok)
    prompts = [tok.encode(t) for t in ("1+2=", "3+4=", "5+6=", "7+8=", "9+1=", "2*3=")]
    tasks = [{"id": i, "calls": 2} for i in range(len(prompts))]
    gen = GenerationConfig(max_new_tokens=40, seed=0, stop_on_eos=False)
    # Tools answer in milliseconds on the pool; a generous window lets every row of a turn
    # rejoin before the next generate, whatever order the threads finish in.
    config = MultiTurnConfig(max_turns=4, max_response_tokens=300, batch_window_s=10.0)
    result = multi_turn_generate(backend, tok, prompts, tasks, env, gen, config)
    check_trajectories(result, prompts, 1, tok, config, gen)
    assert result.turns.tolist() == [3] * 6
    assert backend.batch_sizes == [6, 6, 6]


def test_slow_tool_does_not_block_ready_rows(lm):
    model, tok, _ = lm
    backend = HFGenerationBackend(model, tok)
    env = CalculatorEnv(watch=(1, 2, 3))
    gate = env.all_done
    prompts = [tok.encode(t) for t in ("1+2=", "3+4=", "5+6=", "7+8=")]
    # Row 0's tool answers only once rows 1-3 have finished all their turns.
    tasks = [{"id": 0, "calls": 1, "gate": gate}] + [{"id": i, "calls": 2} for i in (1, 2, 3)]
    gen = GenerationConfig(max_new_tokens=40, seed=0, stop_on_eos=False)
    config = MultiTurnConfig(max_turns=4, max_response_tokens=200)
    try:
        result = multi_turn_generate(backend, tok, prompts, tasks, env, gen, config)
    finally:
        env.pool.shutdown(wait=True, cancel_futures=True)
    check_trajectories(result, prompts, 1, tok, config, gen)
    assert ("gate_open", 0) in env.events and ("gate_timeout", 0) not in env.events
    assert result.turns.tolist() == [2, 3, 3, 3]
    assert result.tool_calls.tolist() == [1, 2, 2, 2]
    assert not result.batch.truncated.any()
    # The others' last turns (all "done") happened before row 0's tool answered, and row 0
    # then took its second turn.
    order = env.events
    slow_result = order.index(("result", 0))
    assert all(order.index(("done", i)) < slow_result for i in (1, 2, 3))
    assert order.index(("done", 0)) > slow_result
    assert result.tool_wait_s >= 0.0


@pytest.mark.parametrize(
    ("fail", "exc", "match"),
    [
        ("future", RuntimeError, r"tool call of row 2 \(prompt 1\) failed: ZeroDivisionError"),
        ("submit", RuntimeError, r"row 2 \(prompt 1\) raised in submit: ValueError"),
    ],
)
def test_failing_session_names_the_row(lm, env, fail, exc, match):
    model, tok, _ = lm
    backend = HFGenerationBackend(model, tok)
    tasks = [{"id": 0, "calls": 1}, {"id": 1, "calls": 1, "fail": fail}]
    gen = GenerationConfig(max_new_tokens=40, n=2, seed=0, stop_on_eos=False)
    prompts = [tok.encode("1+1="), tok.encode("2+2=")]
    with pytest.raises(exc, match=match):
        multi_turn_generate(backend, tok, prompts, tasks, env, gen, MultiTurnConfig())


def test_tool_that_never_answers_times_out(lm, env):
    model, tok, _ = lm
    backend = HFGenerationBackend(model, tok)
    # Prompt 0's rows say done after one turn; prompt 1's rows (2 and 3) submit futures that
    # never complete, so the loop waits on them only until row 2's deadline.
    tasks = [{"id": 0, "calls": 0}, {"id": 1, "calls": 1, "fail": "hang"}]
    gen = GenerationConfig(max_new_tokens=40, n=2, seed=0, stop_on_eos=False)
    prompts = [tok.encode("1+1="), tok.encode("2+2=")]
    config = MultiTurnConfig(tool_timeout_s=0.2)
    match = (
        r"tool call of row 2 \(prompt 1\) gave no observation within tool_timeout_s=0.2 s; "
        r"cancelling the 1 other pending tool call\(s\)"
    )
    with pytest.raises(TimeoutError, match=match):
        multi_turn_generate(backend, tok, prompts, tasks, env, gen, config)
    assert len(env.hung) == 2 and all(f.cancelled() for f in env.hung)
    assert sorted(r for k, r in env.events if k == "done") == [0, 0]


def test_bad_arguments(lm, env):
    model, tok, _ = lm
    backend = HFGenerationBackend(model, tok)
    gen = GenerationConfig(max_new_tokens=4)
    with pytest.raises(ValueError, match="got 1 tasks for 2 prompts"):
        multi_turn_generate(backend, tok, [[5], [6]], [{}], env, gen, MultiTurnConfig())
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        multi_turn_generate(backend, tok, [[5], []], [{}, {}], env, gen, MultiTurnConfig())
    with pytest.raises(TypeError, match="config must be a MultiTurnConfig"):
        multi_turn_generate(backend, tok, [[5]], [{}], env, gen, {"max_turns": 2})
