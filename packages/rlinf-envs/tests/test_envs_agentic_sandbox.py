"""The sandbox contains untrusted code: limits, denials, no leftovers, no leaks."""

from __future__ import annotations

import os
import socket
import tempfile
import uuid

import pytest

from rlinf.envs.agentic import CodeTool, SandboxConfig, ToolCall, ToolSet, run_python

FAST = SandboxConfig(cpu_time_s=1, wall_time_s=2.0, memory_mb=256, max_output_bytes=4096)


def sandbox_processes() -> list[int]:
    """Pids of live processes started by a sandbox (their command line names its dir)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if b"rlinf-sandbox-" in f.read():
                    pids.append(int(entry))
        except OSError:
            continue  # it ended while we looked
    return pids


def test_runs_code_and_feeds_stdin() -> None:
    result = run_python("print(input()[::-1], sum(range(10)))", FAST, stdin="abc\n")
    assert result.status == "ok" and result.exit_code == 0
    assert result.stdout == "cba 45\n"


def test_exception_is_an_error_with_a_traceback() -> None:
    result = run_python("raise ValueError('bad value')", FAST)
    assert result.status == "error" and result.exit_code == 1
    assert result.stderr.rstrip().endswith("ValueError: bad value")


def test_files_inside_the_working_directory_are_allowed() -> None:
    code = "open('a.txt', 'w').write('hi')\nimport os\nprint(open('a.txt').read(), os.getcwd())"
    result = run_python(code, FAST)
    assert result.status == "ok", result.stderr
    text, cwd = result.stdout.split()
    assert text == "hi" and os.path.basename(cwd).startswith("rlinf-sandbox-")
    assert not os.path.exists(cwd)  # the private directory is removed afterwards


@pytest.mark.parametrize(
    "code",
    [
        "import os\nwhile True:\n    os.fork()",
        "import subprocess\nsubprocess.run(['sleep', '30'])",
        "import os\nos.system('sleep 30 &')",
        "import os\nos.posix_spawn('/bin/sleep', ['sleep', '30'], {})",
    ],
    ids=["fork_bomb", "subprocess", "system", "posix_spawn"],
)
def test_process_creation_is_denied_and_nothing_survives(code: str) -> None:
    result = run_python(code, FAST)
    assert result.status == "error"
    assert "PermissionError: sandbox:" in result.stderr
    assert sandbox_processes() == []


def test_infinite_loop_times_out_and_is_killed() -> None:
    result = run_python("while True:\n    pass", FAST)
    assert result.status == "timeout"
    assert sandbox_processes() == []


def test_sleeping_code_hits_the_wall_limit() -> None:
    result = run_python("import time\ntime.sleep(60)", FAST)
    assert result.status == "timeout" and result.exit_code < 0
    assert sandbox_processes() == []


def test_huge_output_is_cut_at_the_cap() -> None:
    result = run_python("while True:\n    print('x' * 1000)", FAST)
    assert result.status == "output_limit"
    assert 0 < len(result.stdout.encode()) <= FAST.max_output_bytes
    assert set(result.stdout) <= {"x", "\n"}
    assert sandbox_processes() == []


def test_memory_bomb_reports_memory() -> None:
    result = run_python("chunks = []\nwhile True:\n    chunks.append(' ' * 10**7)", FAST)
    assert result.status == "memory"
    assert "MemoryError" in result.stderr


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "traversal"])
def test_writing_outside_the_directory_is_denied(relative: bool) -> None:
    name = f"rlinf-a1-{uuid.uuid4().hex}"
    target = os.path.join(tempfile.gettempdir(), name)
    path = f"../{name}" if relative else target
    result = run_python(f"open({path!r}, 'w').write('owned')", FAST)
    assert result.status == "error"
    assert "PermissionError" in result.stderr
    assert not os.path.exists(target)


def test_parent_environment_does_not_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    monkeypatch.setenv("RLINF_SECRET", secret)
    code = (
        "import os\n"
        "print(sorted(os.environ))\n"
        "print(os.environ.get('RLINF_SECRET'))\n"
        "print(open(f'/proc/{os.getppid()}/environ').read())\n"
    )
    result = run_python(code, FAST)
    assert secret not in result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == "['HOME', 'LANG', 'PATH', 'TMPDIR']"
    assert result.stdout.splitlines()[1] == "None"
    assert result.status == "error" and "PermissionError" in result.stderr


def test_network_connections_are_denied() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)"
        result = run_python(code, FAST)
        assert result.status == "error" and "PermissionError" in result.stderr
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody connected


def test_ctypes_is_denied() -> None:
    result = run_python("import ctypes\nctypes.CDLL(None).system(b'true')", FAST)
    assert result.status == "error"
    assert "importing ctypes is not allowed" in result.stderr


def test_limits_cannot_be_raised() -> None:
    code = "import resource\nresource.setrlimit(resource.RLIMIT_CPU, (100, 100))"
    result = run_python(code, FAST)
    assert result.status == "error" and "PermissionError" in result.stderr


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cpu_time_s", 0, "cpu_time_s must be an int >= 1"),
        ("memory_mb", 8, "memory_mb must be an int >= 64"),
        ("wall_time_s", 0.0, "wall_time_s must be > 0"),
        ("max_output_bytes", 1.5, "max_output_bytes must be an int"),
    ],
)
def test_config_is_validated(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SandboxConfig(**{field: value})


def test_code_tool_reports_output_errors_and_limits() -> None:
    tool = CodeTool(FAST, max_chars=120)
    tools = ToolSet([tool])
    ok = tools.run(ToolCall("code", "```python\nprint(6 * 7)\n```"))
    assert (ok.status, ok.text) == ("ok", "42")
    err = tool.run("print('before')\n1 / 0")
    assert err.status == "error"
    assert err.text.startswith("before\n") and err.text.endswith(
        "ZeroDivisionError: division by zero"
    )
    loud = tool.run("print('y' * 10000)")
    assert loud.status == "output_limit" and len(loud.text) <= 120
    slow = tool.run("while True:\n    pass")
    assert slow.status == "timeout" and "ran out of time" in slow.text
    empty = tool.run("   ")
    assert (empty.status, empty.text) == ("error", "error: no code to run")
    assert tool.run("pass").text == "(no output)"


def test_a_child_that_cannot_install_its_filter_refuses_to_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A real child whose setup fails the way the prelude reports a refused seccomp filter.
    from rlinf.envs.agentic import _sandbox

    program = (
        "import os, sys\n"
        f"sys.stderr.write({_sandbox._SETUP_MARKER!r} + ' the seccomp filter: EINVAL\\n')\n"
        f"sys.stderr.flush()\nos._exit({_sandbox.SETUP_EXIT_CODE})\n"
    )
    monkeypatch.setattr(_sandbox, "prelude_source", lambda: program)
    with pytest.raises(RuntimeError, match=r"refused to run the code: .*seccomp filter: EINVAL"):
        run_python("print('never runs')", FAST)
    tool = CodeTool(FAST).run("print('never runs')")
    assert tool.status == "error" and "the sandbox failed to start" in tool.text


def test_user_code_exiting_with_the_setup_code_is_just_an_error() -> None:
    result = run_python(f"import os\nos._exit({87})", FAST)
    assert (result.status, result.exit_code) == ("error", 87)
