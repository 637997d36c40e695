"""The sandbox's file-system rules, in both modes (namespaces, and the audit-hook fallback):
what a normal program does inside its directory works; what reaches outside, device nodes
and FIFOs are refused."""

from __future__ import annotations

import functools
import os
import stat
import uuid
from pathlib import Path

import pytest

from rlinf.envs.agentic import SandboxConfig, run_python

MODES = {
    "namespaces": SandboxConfig(cpu_time_s=2, wall_time_s=5.0, memory_mb=256),
    "fallback": SandboxConfig(cpu_time_s=2, wall_time_s=5.0, memory_mb=256, namespaces=False),
}


@functools.cache
def namespaced(mode: str) -> bool:
    """Whether ``mode`` really ran in namespaces: there /proc is an empty tmpfs."""
    result = run_python("import os\nprint(len(os.listdir('/proc')))", MODES[mode])
    assert result.status == "ok", result.stderr
    return result.stdout.strip() == "0"


@pytest.fixture(params=sorted(MODES))
def config(request: pytest.FixtureRequest) -> SandboxConfig:
    if request.param == "namespaces" and not namespaced("namespaces"):
        pytest.skip("this kernel refuses user namespaces: only the fallback can run here")
    return MODES[request.param]


def test_the_fallback_is_forced_and_filters_system_calls() -> None:
    # (With namespaces /proc is hidden; there the FIFO test below shows the filter: a user
    # namespace alone lets its root make FIFOs.)
    assert not namespaced("fallback")
    result = run_python("print(open('/proc/self/status').read())", MODES["fallback"])
    assert result.status == "ok", result.stderr
    assert "Seccomp:\t2" in result.stdout  # mode 2: a filter is installed
    assert "NoNewPrivs:\t1" in result.stdout


NORMAL_PROGRAM = """
import os, shutil, tempfile
os.mkdir("d")
os.makedirs("d/e/f")
with open("d/e/f/x.txt", "w") as f:
    f.write("hello")
os.rename("d/e/f/x.txt", "d/y.txt")
os.replace("d/y.txt", "z.txt")
os.chmod("z.txt", 0o600)
os.symlink("z.txt", "link")
os.symlink(os.path.abspath("d"), "dirlink")
print(open("link").read(), oct(os.stat("z.txt").st_mode & 0o777))
with open("dirlink/w.txt", "w") as f:
    f.write("via a link")
os.remove("link")
fd = os.open("d", os.O_RDONLY)
os.mkdir("g", dir_fd=fd)
os.rename("g", "h", src_dir_fd=fd, dst_dir_fd=fd)
print(sorted(os.listdir("d")))
os.close(fd)
shutil.rmtree("d")
tmp = tempfile.gettempdir()
with tempfile.TemporaryDirectory() as t:
    os.makedirs(os.path.join(t, "a", "b"))
    open(os.path.join(t, "a", "b", "c"), "w").write("x")
with tempfile.NamedTemporaryFile("w") as f:
    f.write("x")
fd, name = tempfile.mkstemp()
os.close(fd)
os.unlink(name)
print(tmp == os.getcwd(), sorted(os.listdir(".")))
"""


def test_normal_file_operations_inside_the_directory_work(config: SandboxConfig) -> None:
    result = run_python(NORMAL_PROGRAM, config)
    assert result.status == "ok", result.stderr
    assert result.stdout.splitlines() == [
        "hello 0o600",
        "['e', 'h', 'w.txt']",
        "True ['dirlink', 'main.py', 'z.txt']",
    ]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("os.mkfifo('fifo')", "Operation not permitted"),
        ("os.mknod('null', 0o666 | stat.S_IFCHR, os.makedev(1, 3))", "Operation not permitted"),
        ("os.mknod('blk', 0o666 | stat.S_IFBLK, os.makedev(7, 0))", "Operation not permitted"),
        ("os.mknod('plain', 0o600 | stat.S_IFREG)", "Operation not permitted"),
    ],
    ids=["fifo", "char_device", "block_device", "regular"],
)
def test_no_node_can_be_made_inside(config: SandboxConfig, code: str, message: str) -> None:
    program = f"import os, stat\ntry:\n    {code}\nfinally:\n    print(sorted(os.listdir('.')))\n"
    result = run_python(program, config)
    assert result.status == "error"
    assert result.stderr.rstrip().endswith(f"PermissionError: [Errno 1] {message}")
    assert result.stdout == "['main.py']\n"  # nothing was created


def test_a_device_node_cannot_be_opened_by_the_fallback_as_root() -> None:
    # The case of issue 15: root without namespaces made /dev/null's twin and opened it.
    code = (
        "import os, stat\n"
        "os.mknod('mem', 0o666 | stat.S_IFCHR, os.makedev(1, 3))\n"
        "print(open('mem', 'rb').read(1))\n"
    )
    result = run_python(code, MODES["fallback"])
    assert result.status == "error" and result.stdout == ""
    assert "PermissionError: [Errno 1] Operation not permitted" in result.stderr


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside the sandbox with a file ``f`` (mode 0o644) and a folder ``sub``."""
    (tmp_path / "f").write_text("outside")
    (tmp_path / "f").chmod(0o644)
    (tmp_path / "sub").mkdir()
    return tmp_path


ESCAPES = {
    "fifo": "os.mkfifo({o!r} + '/fifo')",
    "char_device": "os.mknod({o!r} + '/null', 0o666 | stat.S_IFCHR, os.makedev(1, 3))",
    "mkdir": "os.mkdir({o!r} + '/new')",
    "remove": "os.remove({o!r} + '/f')",
    "rename_out": "open('mine', 'w').close()\nos.rename('mine', {o!r} + '/mine')",
    "rename_in": "os.rename({o!r} + '/f', 'f')",
    "chmod": "os.chmod({o!r} + '/f', 0o777)",
    "chmod_fd": "os.chmod(os.open({o!r} + '/f', os.O_RDONLY), 0o777)",
    "rmtree": "shutil.rmtree({o!r} + '/sub')",
    "rmdir_traversal": "os.rmdir('../' * 40 + {o!r}[1:] + '/sub')",
    "link_out": "os.symlink({o!r} + '/f', 'ln')\nopen('ln', 'w').write('owned')",
    "link_dotdot": "os.symlink('../' * 40 + {o!r}[1:] + '/f', 'ln')\nopen('ln', 'w').write('x')",
    # A link that points inside where it was made but out once its folder moved up.
    "link_moved": (
        "os.makedirs('a/b')\nos.symlink('../../x', 'a/b/ln')\n"
        "os.rename('a/b', 'b')\nopen('b/ln', 'w').write('owned')"
    ),
    "open_dir": "fd = os.open({o!r}, os.O_RDONLY)\nos.mkdir('new', dir_fd=fd)",
    "dotdot_dir_fd": (
        "os.mkdir('a')\nos.chdir('a')\nbox = os.open(os.path.dirname(os.getcwd()), os.O_RDONLY)\n"
        "up = os.open('..', os.O_RDONLY, dir_fd=box)\n"
        "os.close(os.open('pwn', os.O_WRONLY | os.O_CREAT, dir_fd=up))"
    ),
    "hard_link": "os.link({o!r} + '/f', 'f')\nopen('f', 'w').write('owned')",
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_escapes_are_denied(config: SandboxConfig, outside: Path, name: str) -> None:
    before = sorted(p.name for p in outside.iterdir())
    code = "import os, shutil, stat\n" + ESCAPES[name].format(o=str(outside))
    result = run_python(code, config)
    assert result.status == "error", result.stdout
    assert "PermissionError" in result.stderr, result.stderr
    assert sorted(p.name for p in outside.iterdir()) == before
    assert (outside / "f").read_text() == "outside"
    assert stat.S_IMODE((outside / "f").stat().st_mode) == 0o644
    assert not os.path.exists(outside.parent / "pwn") and not os.path.exists("/x")


def test_the_fallback_names_the_denied_operation(outside: Path) -> None:
    target = outside / f"victim-{uuid.uuid4().hex}"
    result = run_python(f"import os\nos.mkdir({str(target)!r})", MODES["fallback"])
    assert result.status == "error"
    assert result.stderr.rstrip().endswith(
        f"PermissionError: sandbox: os.mkdir on {str(target)!r} outside the working "
        "directory is not allowed"
    )
    link = run_python("import os\nos.symlink('/etc', 'etc')", MODES["fallback"])
    assert link.stderr.rstrip().endswith(
        "PermissionError: sandbox: a symbolic link to '/etc' outside the working "
        "directory is not allowed"
    )


def test_landlock_alone_confines_writes_to_the_directory(
    tmp_path_factory: pytest.TempPathFactory, outside: Path
) -> None:
    # The kernel layer on its own, without the audit hook in front of it: a plain child runs
    # _restrict_writes, then tries what the hook would otherwise have refused first.
    import inspect
    import subprocess
    import sys
    import textwrap

    from rlinf.envs.agentic._sandbox_filter import _restrict_writes

    box = tmp_path_factory.mktemp("box")
    probe = f"""
import os, shutil
if not _restrict_writes({str(box)!r}):
    print("unsupported")
    raise SystemExit(0)
os.makedirs("a/b")
open("a/b/x", "w").write("in")
os.rename("a/b/x", "y")
os.symlink({str(outside / "f")!r}, "out")
shutil.rmtree("a")
for attempt in (
    lambda: open("out", "w"),
    lambda: open({str(outside / "new")!r}, "w"),
    lambda: os.mkdir({str(outside / "d")!r}),
    lambda: os.remove({str(outside / "f")!r}),
    lambda: os.rename("y", {str(outside / "y")!r}),
    lambda: os.mkfifo("fifo"),
):
    try:
        attempt()
        print("allowed")
    except PermissionError:
        print("denied")
print(sorted(os.listdir(".")))
"""
    source = textwrap.dedent(inspect.getsource(_restrict_writes)) + probe
    result = subprocess.run(
        [sys.executable, "-I", "-c", source], cwd=box, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    if result.stdout == "unsupported\n":
        pytest.skip("this kernel has no Landlock ABI >= 2")
    assert result.stdout.splitlines() == ["denied"] * 6 + ["['out', 'y']"]
    assert sorted(p.name for p in outside.iterdir()) == ["f", "sub"]
    assert (outside / "f").read_text() == "outside"
