"""The coding task: generated problems, reference solutions, and sandboxed scoring."""

from __future__ import annotations

import os
import uuid

import pytest

from rlinf.envs.agentic import (
    CodingConfig,
    CodingScorer,
    SandboxConfig,
    extract_code,
    generate_coding_tasks,
    reference_solution,
)

SCORER = CodingScorer(SandboxConfig(cpu_time_s=1, wall_time_s=2.0, memory_mb=256), max_workers=2)
TESTS = "assert repr(f(2)) == '7'\nassert repr(f(-1)) == '-2'\n"  # f(x) = 3x + 1


def answer(code: str) -> str:
    return f"Let me think.\n<answer>\n```python\n{code}\n```\n</answer>"


def test_generation_is_deterministic_distinct_and_disjoint() -> None:
    config = CodingConfig(seed=3, num_train=120, num_test=30)
    train, test = generate_coding_tasks(config)
    assert (len(train), len(test)) == (120, 30)
    assert generate_coding_tasks(config) == (train, test)
    keys = [t.key for t in train + test]
    assert len(set(keys)) == len(keys)
    assert not {t.key for t in train} & {t.key for t in test}
    assert {t.key.split(":")[0] for t in train} == {"int", "str", "list"}
    for task in train:
        assert task.answer == task.tests and task.tests.count("assert ") == config.num_tests
        assert task.prompt.endswith("Put the complete function inside <answer></answer>.")


def test_impossible_sizes_and_bad_configs_raise() -> None:
    with pytest.raises(ValueError, match="distinct train problems"):
        generate_coding_tasks(CodingConfig(groups=("int",), num_train=5000, num_test=0))
    with pytest.raises(ValueError, match="groups must be a non-empty subset"):
        CodingConfig(groups=("graphs",))
    with pytest.raises(ValueError, match="must contain"):
        CodingConfig(template="no placeholder")


def test_reference_solutions_pass_and_wrong_ones_fail() -> None:
    train, test = generate_coding_tasks(CodingConfig(seed=1, num_train=10, num_test=4))
    tasks = train + test
    good = SCORER.score([answer(reference_solution(t)) for t in tasks], [t.answer for t in tasks])
    assert [(r.score, r.status) for r in good] == [(1.0, "passed")] * len(tasks)
    wrong = "def f(*args):\n    return None"
    bad = SCORER.score([answer(wrong)] * len(tasks), [t.answer for t in tasks])
    assert [(r.score, r.status) for r in bad] == [(0.0, "failed")] * len(tasks)


@pytest.mark.parametrize(
    ("response", "status"),
    [
        (answer("def f(x):\n    return 3 * x + 1"), "passed"),
        (answer("def f(x):\n    return 3 * x"), "failed"),
        ("def f(x):\n    return 3 * x + 1", "no_code"),
        ("<answer>\n\n</answer>", "no_code"),
        (answer("def f(x) return 1"), "error"),
        (answer("import os\nos._exit(0)"), "error"),
        (answer("import sys\nsys.exit(0)"), "error"),
        (answer("class Any:\n    def __eq__(self, other):\n        return True\n\n"
                "def f(x):\n    return Any()"), "failed"),
        (answer("def f(x):\n    while True:\n        pass"), "timeout"),
        (answer("def f(x):\n    return ' ' * 10**10"), "memory"),
        (answer("while True:\n    print('spam' * 100)"), "output_limit"),
        (answer("import os\nwhile True:\n    os.fork()"), "error"),
    ],
    ids=["correct", "wrong", "no_block", "empty", "syntax", "os_exit", "sys_exit",
         "always_equal", "loop", "memory", "output", "fork_bomb"],
)  # fmt: skip
def test_statuses(response: str, status: str) -> None:
    (result,) = SCORER.score([response], [TESTS])
    assert result.status == status, result.detail
    assert result.score == (1.0 if status == "passed" else 0.0)


def test_fork_bomb_leaves_no_process() -> None:
    SCORER.score([answer("import os\nwhile True:\n    os.fork()")], [TESTS])
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                assert b"rlinf-sandbox-" not in f.read()
        except OSError:
            continue


def test_code_needing_the_parent_environment_scores_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    monkeypatch.setenv("RLINF_SECRET", secret)
    tests = f"assert f() == {secret!r}\n"
    by_environ = answer("import os\ndef f():\n    return os.environ.get('RLINF_SECRET')")
    by_proc = answer(
        "import os\ndef f():\n    raw = open(f'/proc/{os.getppid()}/environ', 'rb').read()\n"
        "    return dict(v.split(b'=', 1) for v in raw.split(b'\\0') if v)"
        "[b'RLINF_SECRET'].decode()"
    )
    results = SCORER.score([by_environ, by_proc], [tests, tests])
    assert [(r.score, r.status) for r in results] == [(0.0, "failed"), (0.0, "error")]
    assert all(secret not in (r.detail or "") for r in results)


def test_extract_code_uses_the_last_answer_outside_results() -> None:
    text = (
        "<answer>def f(x): return 1</answer> then <code>print(1)</code>"
        "<result><answer>def f(x): return 2</answer></result>"
        "<answer>\n```py\ndef f(x): return 3\n```\n</answer><answer>unclosed"
    )
    assert extract_code(text) == "def f(x): return 3"
    assert extract_code("<result>x</result> nothing") is None


def test_score_checks_lengths() -> None:
    with pytest.raises(ValueError, match="2 responses but 1 answers"):
        SCORER.score(["a", "b"], [TESTS])
    assert SCORER.score([], []) == []
